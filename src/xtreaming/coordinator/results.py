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
from xtreaming.broker.port import RECORD_OVERHEAD_BYTES
from xtreaming.coordinator.core.pending import PendingMessage
from xtreaming.coordinator.fitting import fit_ack, fit_dlq
from xtreaming.wire.message_id import message_id

#: Keys JSON takes between quotes as they are: printable ASCII but the quote and the backslash.
_PLAIN = re.compile(rb"[ !#-\[\]-~]*")
#: The most an ACK's three numbers (partition, offset, attempts) add to its template: 20 digits each.
_NUMBER_DIGITS = 60


class Status(StrEnum):
    """A message's final outcome."""

    OK = "ok"
    DEAD = "dead"
    #: Read while another message with its key was pending or running (``key_scout.py``): never ran.
    DUPLICATE = "duplicate"


@dataclass(frozen=True, slots=True)
class Finished:
    """Messages of one task that reached the same final outcome (``status`` and ``detail``); duplicates ran in
    no task (``task_id``, ``farm`` and ``slot`` None, ``null`` in their ACK records)."""

    topic: str
    task_id: str | None
    farm: str | None
    slot: int | None
    finished_at: datetime
    status: Status
    detail: str | None
    #: For dead messages, ``errors`` holds every failed attempt, this one included.
    messages: Sequence[PendingMessage]


def ack_records(done: Finished, max_record_bytes: int | None = None) -> list[Record]:
    """The ``.ACK`` record of each finished message: JSON, keyed like the source message.

    The same JSON as ``json.dumps({"key": …, "topic": …, "partition": …, "offset": …, "status": …,
    "attempts": …, "task_id": …, "farm": …, "worker": …, "finished_at": …, "detail": …},
    ensure_ascii=False, separators=(",", ":"))``, written by hand: one is made per message, and
    what the messages of a task share (topic, outcome, task, farm, time) is encoded once. Keys
    that JSON takes as they are (the usual client ids) go in without being decoded.

    A record larger than ``max_record_bytes`` (None: no limit) is cut to fit (``fitting.fit_ack``); with
    the usual keys one bound for the whole task says none is.
    """
    topic = f'"topic":{encode_basestring(done.topic)},'
    status = f'"status":"{done.status.value}","attempts":'
    tail = (
        f',"task_id":{_text(done.task_id)},"farm":{_text(done.farm)},"worker":{_number(done.slot)},'
        f'"finished_at":{encode_basestring(done.finished_at.isoformat())},"detail":{_text(done.detail)}}}'
    )
    keys = [m.key for m in done.messages]
    if None not in keys and _PLAIN.fullmatch(b"".join(keys)):  # type: ignore[arg-type]
        topic, tail = topic.replace("%", "%%"), tail.replace("%", "%%")  # literal text in a %-template
        template = f'{{"key":"%b",{topic}"partition":%d,"offset":%d,{status}%d{tail}'.encode()
        records = [
            Record(key, template % (key, m.partition, m.offset, m.attempt))
            for key, m in zip(keys, done.messages, strict=True)
        ]
        if max_record_bytes is None or not keys:
            return records
        # The key twice (record key and JSON), the template and its numbers: the largest an ACK can be.
        longest = max(map(len, keys))  # type: ignore[arg-type]
        largest = RECORD_OVERHEAD_BYTES + 2 * longest + len(template) + _NUMBER_DIGITS
        return records if largest <= max_record_bytes else [fit_ack(r, max_record_bytes) for r in records]
    records = [
        Record(
            m.key,
            (
                f'{{"key":{"null" if m.key is None else encode_basestring(m.key.decode("utf-8", "replace"))},'
                f'{topic}"partition":{m.partition},"offset":{m.offset},{status}{m.attempt}{tail}'
            ).encode(),
        )
        for m in done.messages
    ]
    return records if max_record_bytes is None else [fit_ack(r, max_record_bytes) for r in records]


def _text(value: str | None) -> str:
    return "null" if value is None else encode_basestring(value)


def _number(value: int | None) -> str:
    return "null" if value is None else str(value)


def dlq_records(done: Finished, max_record_bytes: int | None = None) -> list[Record]:
    """The ``.DLQ`` record of each message: the original key, value and headers untouched, plus
    ``xtreaming-*`` headers with the source position, the attempts and the error history (JSON list).
    A record larger than ``max_record_bytes`` (None: no limit) is cut to fit (``fitting.fit_dlq``)."""
    records = [
        Record(
            m.key,
            m.value,
            (
                *m.headers,
                ("xtreaming-source", message_id(done.topic, m.partition, m.offset).encode()),
                ("xtreaming-attempts", str(m.attempt).encode()),
                ("xtreaming-errors", json.dumps(list(m.errors), ensure_ascii=False).encode()),
                ("xtreaming-task", (done.task_id or "").encode()),
            ),
        )
        for m in done.messages
    ]
    return records if max_record_bytes is None else [fit_dlq(r, max_record_bytes) for r in records]
