"""The lease answer as farms ask for it (``Accept: application/x-xtreaming-lease``): the JSON answer
with each task's message values taken out, a newline, then those values as they are.

Values are the bulk of a lease (thousands of JSON documents or XML files a task). As JSON strings
the coordinator would escape every one and the farm unescape it, and binary ones would travel as
base64. Framed, they travel untouched: a task's ``messages.value_sizes`` gives the length in bytes
of each of its values, in message order, and the values of the answer's tasks follow the head one
after another, in task order. The head is compact JSON, which never holds a raw newline.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Final

MEDIA_TYPE: Final = "application/x-xtreaming-lease"


def frame(head: str, values: Iterable[bytes]) -> bytes:
    """The framed answer: ``head`` (JSON text), a newline, then ``values`` one after another."""
    return b"%b\n%b" % (head.encode(), b"".join(values))


def unframe(body: bytes) -> tuple[Any, bytes]:
    """The head (parsed) and the bytes of the values; raises ValueError saying what is wrong."""
    head, newline, values = body.partition(b"\n")
    if not newline:
        raise ValueError("lease answer: no newline after its JSON head")
    return json.loads(head), values
