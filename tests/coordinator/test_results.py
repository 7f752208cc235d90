"""ACK and DLQ records of finished messages."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from xtreaming.coordinator.core.pending import PendingMessage
from xtreaming.coordinator.results import Finished, Status, ack_records, dlq_records

AT = datetime(2026, 3, 3, 13, 0, 5, 123456, tzinfo=UTC)
TOPIC = "MULTCOB03.1189.IMPORTACAO.X"


def finished(keys: list[bytes | None], detail: str | None, status: Status = Status.OK) -> Finished:
    messages = [
        PendingMessage(2, 41 + i, key, 3, None, b"<cliente/>", (("h", b"1"),), ("attempt 1: boom",))
        for i, key in enumerate(keys)
    ]
    return Finished(TOPIC, "task-1", 'farm "poa"', 7, AT, status, detail, messages)


def test_ack_records_are_the_json_of_their_fields() -> None:
    cases = [
        finished([b"111", b"0" * 11], None),  # keys that go in as they are
        finished([b"111", b"222"], "100% d%one %s %b"),
        finished([b"111", b'a"b', b"c\\d"], None),
        finished([b"111", None], None),
        finished([None], 'CPF "inválido"\n\t\\ ok'),
        finished([b"\xff\xfe"], "x", Status.DEAD),
    ]

    for done in cases:
        records = ack_records(done)
        for m, record in zip(done.messages, records, strict=True):
            expected = {
                "key": None if m.key is None else m.key.decode("utf-8", "replace"),
                "topic": TOPIC,
                "partition": 2,
                "offset": m.offset,
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
    [record] = dlq_records(finished([b"111"], "boom", Status.DEAD))

    headers = dict(record.headers)
    assert (record.key, record.value, headers["h"]) == (b"111", b"<cliente/>", b"1")
    assert headers["xtreaming-source"] == b"MULTCOB03.1189.IMPORTACAO.X/2/41"
    assert json.loads(headers["xtreaming-errors"]) == ["attempt 1: boom"]


def test_a_duplicates_ack_names_no_task_farm_or_worker() -> None:
    copy = PendingMessage(2, 41, b"111", 0, None, b"<cliente/>")
    done = Finished(
        TOPIC, None, None, None, AT, Status.DUPLICATE, f"duplicate of {TOPIC}/2/7, pending or running", [copy]
    )

    [record] = ack_records(done)

    fields = json.loads(record.value)
    assert (fields["status"], fields["attempts"], fields["detail"]) == ("duplicate", 0, done.detail)
    assert (fields["task_id"], fields["farm"], fields["worker"]) == (None, None, None)
