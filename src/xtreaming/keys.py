"""What a message key may be: one rule for ``xtreaming publish``, the publish API and the Python ``Producer``.

A key is the client id (a CPF): it picks the partition and holds back a second message of the same client
while one runs, so an empty key would make every keyless row one client, and a huge one is a value in the
wrong column. No key at all (``None``) is allowed where a caller may give one: those records are spread.
"""

from __future__ import annotations

from typing import Final

#: The longest key, in UTF-8 bytes: a CPF is 11, a composite id a few dozen; far below any broker's limit.
MAX_KEY_BYTES: Final = 1024


def key_problem(key: bytes) -> str | None:
    """Why ``key`` cannot key a message, as words that follow its name ("is empty"), or None when it can."""
    if not key:
        return "is empty"
    if len(key) > MAX_KEY_BYTES:
        return f"is {len(key):,} bytes long; a key is at most {MAX_KEY_BYTES:,} bytes"
    return None
