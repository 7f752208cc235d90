"""An attempt's error as the coordinator keeps it: ``attempt 3: worker exited with 2``, one entry of a message's error
history (its retry row in the store, a retried attempt's detail in the history, the ``xtreaming-errors`` header of
its DLQ record), stored and written as is.

Where a person reads it, the attempt number and the detail go apart (``split_attempt_error``): the detail is the
worker's (or the coordinator's) own text, and each view words the attempt in its language, or shows it in a column
of its own. Dead letters are grouped by the detail alone.
"""

from __future__ import annotations

import re
from typing import Final

#: The entry's prefix, as ``attempt_error`` writes it (and every stored entry has it).
_PREFIX: Final = re.compile(r"attempt (\d+): ")


def attempt_error(attempt: int, detail: str) -> str:
    """``(3, "worker exited with 2")`` → ``"attempt 3: worker exited with 2"``."""
    return f"attempt {attempt}: {detail}"


def split_attempt_error(text: str) -> tuple[int | None, str]:
    """``"attempt 3: worker exited with 2"`` → ``(3, "worker exited with 2")``; text without the prefix (written by
    hand, or by something else) → ``(None, text)``."""
    match = _PREFIX.match(text)
    if match is None:
        return None, text
    return int(match[1]), text[match.end() :]
