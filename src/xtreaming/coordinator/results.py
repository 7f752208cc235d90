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
    topics: dict[str, str] = {}
    tails: dict[tuple[object, ...], str] = {}
    for done in finished:
        m = done.message
        key = "null" if m.key is None else encode_basestring(m.key.decode("utf-8", "replace"))
        topic = topics.get(m.topic)
        if topic is None:
            topic = topics[m.topic] = f'"topic":{encode_basestring(m.topic)},'
        shared = (done.status, done.attempts, done.task_id, done.farm, done.slot, done.finished_at, done.detail)
        tail = tails.get(shared)
        if tail is None:  # the fields after the offset: usually the same for a whole task
            detail = "null" if done.detail is None else encode_basestring(done.detail)
            tail = tails[shared] = (
                f'"status":"{done.status.value}","attempts":{done.attempts},"task_id":{encode_basestring(done.task_id)},'
                f'"farm":{encode_basestring(done.farm)},"worker":{done.slot},'
                f'"finished_at":{encode_basestring(done.finished_at.isoformat())},"detail":{detail}}}'
            )
        body = f'{{"key":{key},{topic}"partition":{m.partition},"offset":{m.offset},{tail}'
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
