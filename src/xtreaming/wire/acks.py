"""A message's final outcome as whoever published it sees it: from the coordinator's settlement hook (the API's
publish-and-wait) or read back from its ``<topic>.ACK`` record (the ``Producer``'s wait), in one shape."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from xtreaming.wire.message_id import message_id

#: The statuses an ACK record carries; RETRY is never final, so never one of them.
FinalStatus = Literal["ok", "dead", "duplicate"]
FINAL_STATUSES: tuple[FinalStatus, ...] = ("ok", "dead", "duplicate")


@dataclass(frozen=True, slots=True)
class MessageOutcome:
    """One published message's final outcome: ``id`` is ``topic/partition/offset`` (``wire.message_id``);
    ``attempts`` counts the attempts made (0 for a duplicate, which never ran); ``detail`` is the worker's or
    the coordinator's word on it (the last error of a dead message, the message holding a duplicate's key)."""

    id: str
    key: str | None
    status: FinalStatus
    attempts: int
    detail: str | None


@dataclass(frozen=True, slots=True)
class AckedMessage:
    """An ``.ACK`` record read back: where its message is, and its outcome."""

    topic: str
    partition: int
    offset: int
    outcome: MessageOutcome


def parse_ack(value: bytes) -> AckedMessage | None:
    """The ``.ACK`` record ``value`` (JSON written by ``coordinator.results.ack_records``, perhaps cut to fit the
    broker: a cut key or detail is still text), or None when it is not one (another writer's record)."""
    try:
        fields: Any = json.loads(value)
        topic, partition, offset = fields["topic"], fields["partition"], fields["offset"]
        status, attempts, key, detail = fields["status"], fields["attempts"], fields.get("key"), fields.get("detail")
    except (ValueError, TypeError, KeyError):
        return None
    if not (
        isinstance(topic, str)
        and _is_count(partition)
        and _is_count(offset)
        and status in FINAL_STATUSES
        and _is_count(attempts)
        and (key is None or isinstance(key, str))
        and (detail is None or isinstance(detail, str))
    ):
        return None
    outcome = MessageOutcome(message_id(topic, partition, offset), key, status, attempts, detail)
    return AckedMessage(topic, partition, offset, outcome)


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
