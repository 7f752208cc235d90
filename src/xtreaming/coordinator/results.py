"""The records the coordinator writes for finished messages: one per message on ``<topic>.ACK``,
and the original message plus its error history on ``<topic>.DLQ``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from json.encoder import encode_basestring

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


def ack_records(finished: Sequence[Finished]) -> list[Record]:
    """The ``.ACK`` record of each finished message: JSON, keyed like the source message.

    The same JSON as ``json.dumps({"key": …, "topic": …, "partition": …, "offset": …, "status": …,
    "attempts": …, "task_id": …, "farm": …, "worker": …, "finished_at": …, "detail": …},
    ensure_ascii=False, separators=(",", ":"))``, written by hand: one is made per message, and
    the strings a task's messages share (topic, task, farm, time) are encoded once.
    """
    records = []
    encoded: dict[object, str] = {}

    def text(value: str | None) -> str:
        if value is None:
            return "null"
        found = encoded.get(value)
        if found is None:
            found = encoded[value] = encode_basestring(value)
        return found

    for done in finished:
        m = done.message
        key = "null" if m.key is None else encode_basestring(m.key.decode("utf-8", "replace"))
        stamp = encoded.get(done.finished_at)
        if stamp is None:
            stamp = encoded[done.finished_at] = encode_basestring(done.finished_at.isoformat())
        body = (
            f'{{"key":{key},"topic":{text(m.topic)},"partition":{m.partition},"offset":{m.offset},'
            f'"status":"{done.status.value}","attempts":{done.attempts},"task_id":{text(done.task_id)},'
            f'"farm":{text(done.farm)},"worker":{done.slot},"finished_at":{stamp},"detail":{text(done.detail)}}}'
        )
        records.append(Record(m.key, body.encode()))
    return records


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
