"""The records the coordinator writes for finished messages: one per message on ``<topic>.ACK``,
and the original message plus its error history on ``<topic>.DLQ``."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from json.encoder import encode_basestring

from xtreaming.broker import Record
from xtreaming.coordinator.core.pending import PendingMessage
from xtreaming.wire.message_id import message_id

#: Keys JSON takes between quotes as they are: printable ASCII but the quote and the backslash.
_PLAIN = re.compile(rb"[ !#-\[\]-~]*")


class Status(StrEnum):
    """A message's final outcome."""

    OK = "ok"
    DEAD = "dead"


@dataclass(frozen=True, slots=True)
class Finished:
    """Messages of one task that reached the same final outcome (``status`` and ``detail``)."""

    topic: str
    task_id: str
    farm: str
    slot: int
    finished_at: datetime
    status: Status
    detail: str | None
    #: For dead messages, ``errors`` holds every failed attempt, this one included.
    messages: Sequence[PendingMessage]


def ack_records(done: Finished) -> list[Record]:
    """The ``.ACK`` record of each finished message: JSON, keyed like the source message.

    The same JSON as ``json.dumps({"key": …, "topic": …, "partition": …, "offset": …, "status": …,
    "attempts": …, "task_id": …, "farm": …, "worker": …, "finished_at": …, "detail": …},
    ensure_ascii=False, separators=(",", ":"))``, written by hand: one is made per message, and
    what the messages of a task share (topic, outcome, task, farm, time) is encoded once. Keys
    that JSON takes as they are (the usual client ids) go in without being decoded.
    """
    topic = f'"topic":{encode_basestring(done.topic)},'
    status = f'"status":"{done.status.value}","attempts":'
    detail = "null" if done.detail is None else encode_basestring(done.detail)
    tail = (
        f',"task_id":{encode_basestring(done.task_id)},"farm":{encode_basestring(done.farm)},"worker":{done.slot},'
        f'"finished_at":{encode_basestring(done.finished_at.isoformat())},"detail":{detail}}}'
    )
    keys = [m.key for m in done.messages]
    if None not in keys and _PLAIN.fullmatch(b"".join(keys)):  # type: ignore[arg-type]
        topic, tail = topic.replace("%", "%%"), tail.replace("%", "%%")  # literal text in a %-template
        template = f'{{"key":"%b",{topic}"partition":%d,"offset":%d,{status}%d{tail}'.encode()
        return [
            Record(key, template % (key, m.partition, m.offset, m.attempt))
            for key, m in zip(keys, done.messages, strict=True)
        ]
    return [
        Record(
            m.key,
            (
                f'{{"key":{"null" if m.key is None else encode_basestring(m.key.decode("utf-8", "replace"))},'
                f'{topic}"partition":{m.partition},"offset":{m.offset},{status}{m.attempt}{tail}'
            ).encode(),
        )
        for m in done.messages
    ]


def dlq_records(done: Finished) -> list[Record]:
    """The ``.DLQ`` record of each message: the original key, value and headers untouched, plus
    ``xtreaming-*`` headers with the source position, the attempts and the error history (JSON list)."""
    return [
        Record(
            m.key,
            m.value,
            (
                *m.headers,
                ("xtreaming-source", message_id(done.topic, m.partition, m.offset).encode()),
                ("xtreaming-attempts", str(m.attempt).encode()),
                ("xtreaming-errors", json.dumps(list(m.errors), ensure_ascii=False).encode()),
                ("xtreaming-task", done.task_id.encode()),
            ),
        )
        for m in done.messages
    ]
