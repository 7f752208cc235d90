"""ACK and DLQ records of finished messages."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from xtreaming.broker import Message
from xtreaming.coordinator.results import Finished, Status, ack_records, dlq_record

AT = datetime(2026, 3, 3, 13, 0, 5, 123456, tzinfo=UTC)


def finished(key: bytes | None, detail: str | None, status: Status = Status.OK) -> Finished:
    message = Message("MULTCOB03.1189.IMPORTACAO.X", 2, 41, key, b"<cliente/>", (("h", b"1"),), 0)
    return Finished(message, status, 3, "task-1", 'farm "poa"', 7, AT, detail, ("attempt 1: boom",))


def test_ack_records_are_the_json_of_their_fields() -> None:
    cases = [finished(b"111", None), finished(None, 'CPF "inválido"\n\t\\ ok'), finished(b"\xff\xfe", "x", Status.DEAD)]

    records = ack_records(cases)

    for done, record in zip(cases, records, strict=True):
        m = done.message
        expected = {
            "key": None if m.key is None else m.key.decode("utf-8", "replace"),
            "topic": m.topic,
            "partition": 2,
            "offset": 41,
            "status": done.status.value,
            "attempts": 3,
            "task_id": "task-1",
            "farm": 'farm "poa"',
            "worker": 7,
            "finished_at": AT.isoformat(),
            "detail": done.detail,
        }
        assert record.key == m.key
        assert record.value == json.dumps(expected, ensure_ascii=False, separators=(",", ":")).encode()


def test_a_dlq_record_keeps_the_message_and_adds_its_history() -> None:
    record = dlq_record(finished(b"111", "boom", Status.DEAD))

    headers = dict(record.headers)
    assert (record.key, record.value, headers["h"]) == (b"111", b"<cliente/>", b"1")
    assert headers["xtreaming-source"] == b"MULTCOB03.1189.IMPORTACAO.X/2/41"
    assert json.loads(headers["xtreaming-errors"]) == ["attempt 1: boom"]
