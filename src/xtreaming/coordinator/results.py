"""The records the coordinator writes for finished messages: one per message on ``<topic>.ACK``,
and the original message plus its error history on ``<topic>.DLQ``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from xtreaming.broker import Message, Record


class Status(StrEnum):
    """A message's final outcome."""

    OK = "ok"
    DEAD = "dead"


class Verdict(StrEnum):
    """What a worker says of one message: ``retry`` is tried again after a back-off, up to the
    queue's ``max_attempts``; ``error`` is final and goes to the DLQ at once."""

    OK = "ok"
    ERROR = "error"
    RETRY = "retry"


@dataclass(frozen=True, slots=True)
class Finished:
    """A message that reached its final outcome in a task."""

    message: Message
    status: Status
    attempts: int
    task_id: str
    farm: str
    slot: int
    finished_at: datetime
    detail: str | None
    errors: tuple[str, ...] = ()


def ack_record(done: Finished) -> Record:
    """The ``.ACK`` record of a finished message: JSON, keyed like the source message."""
    m = done.message
    body = {
        "key": None if m.key is None else m.key.decode("utf-8", "replace"),
        "topic": m.topic,
        "partition": m.partition,
        "offset": m.offset,
        "status": done.status.value,
        "attempts": done.attempts,
        "task_id": done.task_id,
        "farm": done.farm,
        "worker": done.slot,
        "finished_at": done.finished_at.isoformat(),
        "detail": done.detail,
    }
    return Record(m.key, json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode())


def dlq_record(done: Finished) -> Record:
    """The ``.DLQ`` record: the original key, value and headers untouched, plus ``xtreaming-*``
    headers with the source position, the attempts and the error history (JSON list)."""
    m = done.message
    headers = (
        *m.headers,
        ("xtreaming-source", f"{m.topic}/{m.partition}/{m.offset}".encode()),
        ("xtreaming-attempts", str(done.attempts).encode()),
        ("xtreaming-errors", json.dumps(list(done.errors), ensure_ascii=False).encode()),
        ("xtreaming-task", done.task_id.encode()),
    )
    return Record(m.key, m.value, headers)
