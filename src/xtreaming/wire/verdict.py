"""A worker's word on one message, as farms report it and the coordinator settles it."""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class Verdict(StrEnum):
    """What a worker says of one message: ``retry`` is tried again after a back-off, up to the
    queue's ``max_attempts``; ``error`` is final and goes to the DLQ at once."""

    OK = "ok"
    ERROR = "error"
    RETRY = "retry"


#: The verdicts' wire spellings, for checking a worker's text before it becomes a ``Verdict``.
VERDICTS: Final = frozenset(v.value for v in Verdict)
