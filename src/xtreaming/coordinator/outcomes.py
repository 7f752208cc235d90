"""The settlement hook: each message's outcome, told to listeners once the store has it.

History, metrics and whatever comes later listen here rather than being written into the settlement
path. A listener gets the outcomes of one settlement (a farm's request, an expiry pass) in one call,
after the store transaction that settled them committed: an outcome it sees is never undone by a
restart. It is called outside the coordinator's lock, on the thread that settled, so it should be
quick (hand slow work to a thread of its own); one that raises is logged and the others still run.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Sequence
from typing import NamedTuple, Protocol

log = logging.getLogger("xtreaming.coordinator")


class Result(enum.StrEnum):
    """What became of a message's attempt."""

    OK = "ok"
    #: Failed, and pending again for another attempt (after its back-off).
    RETRY = "retry"
    #: Failed for good: on ``<topic>.DLQ``.
    DEAD = "dead"
    #: Finished without running: read while another message with its key was pending or running
    #: (``key_scout.py``); ``detail`` names that message.
    DUPLICATE = "duplicate"


class Outcome(NamedTuple):
    """One message's settled attempt. A named tuple rather than a frozen dataclass: one is built per message
    settled while anybody listens, and a frozen dataclass costs several times more to build.

    A duplicate ran nowhere: its ``attempt`` is 0, ``farm`` and ``task_id`` are empty, ``slot`` is -1 and
    ``duration_s`` 0."""

    result: Result
    topic: str
    partition: int
    offset: int
    key: bytes | None
    #: The attempt that ended (1 for the first).
    attempt: int
    farm: str
    slot: int
    task_id: str
    #: From the task's lease to its settlement.
    duration_s: float
    detail: str | None


class SettlementListener(Protocol):
    """Told the outcomes of each settlement once they are durable (see the module docstring)."""

    def __call__(self, outcomes: Sequence[Outcome], /) -> None: ...


def tell(listeners: Sequence[SettlementListener], outcomes: Sequence[Outcome]) -> None:
    """Give ``outcomes`` to every listener; a listener that raises is logged and never stops the others."""
    for listener in listeners:
        try:
            listener(outcomes)
        except Exception:  # a listener's fault must never break settlement
            log.exception("settlement listener %r failed on %d outcome(s); settlement went on", listener, len(outcomes))
