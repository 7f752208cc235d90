"""Result records cut to the broker's record limit: what is cut, where, and what the record says of it."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from xtreaming.broker import Record
from xtreaming.broker.port import record_size
from xtreaming.coordinator.core.pending import PendingMessage
from xtreaming.coordinator.fitting import DROPPED_HEADERS, TRUNCATED, TRUNCATED_KEY, fit_ack, fit_dlq, prefix
from xtreaming.coordinator.results import Finished, Status, ack_records, dlq_records

AT = datetime(2026, 3, 3, 13, 0, 5, tzinfo=UTC)
TOPIC = "MULTCOB03.1189.IMPORTACAO.X"
#: librdkafka's default ``message.max.bytes``.
LIMIT = 1_000_000


def dead(key: bytes | None, value: bytes, headers: tuple[tuple[str, bytes], ...] = ()) -> Finished:
    message = PendingMessage(2, 41, key, 3, None, value, headers, ("attempt 1: boom", "attempt 2: boom"))
    return Finished(TOPIC, "task-1", "farm-poa", 0, AT, Status.DEAD, "CPF inválido", [message])


def headers_of(record: Record) -> dict[str, bytes]:
    return dict(record.headers)


# -- prefix: bytes and UTF-8 boundaries ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "size", "expected"),
    [
        ("ação", 2, "a"),  # "ç" is 2 bytes (1..3): not split
        ("ação", 3, "aç"),
        ("ação", 4, "aç"),  # "ã" is bytes 3..5
        ("a€b", 3, "a"),  # "€" is 3 bytes
        ("a€b", 4, "a€"),
        ("x😀y", 4, "x"),  # a 4-byte character: the cut moves back three bytes
        ("x😀y", 5, "x😀"),
        ("abc", 0, ""),
        ("abc", 9, "abc"),
    ],
)
def test_a_cut_never_splits_a_utf8_character(text: str, size: int, expected: str) -> None:
    cut = prefix(text.encode(), size)

    assert cut.decode() == expected
    assert len(cut) <= size


def test_a_cut_of_bytes_that_are_not_utf8_loses_at_most_three_more() -> None:
    data = b"\x80" * 10  # every byte looks like a continuation byte

    assert prefix(data, 6) == b"\x80" * 3
    assert prefix(b"\xff\x00" * 5, 7) == (b"\xff\x00" * 5)[:7]


# -- DLQ records ------------------------------------------------------------------------------------


def test_a_dlq_record_that_fits_is_not_touched() -> None:
    done = dead(b"111", b"<cliente/>" * 1000)

    assert dlq_records(done, LIMIT) == dlq_records(done)


def test_a_dlq_value_is_cut_to_what_fits_with_the_headers_counted() -> None:
    value = ("<cliente nome='João'/>" * 50_000).encode()[:1_040_000]  # 1,040,000 bytes, multi-byte characters
    source_headers = (("trace", b"t" * 5000),)
    [whole] = dlq_records(dead(b"12345678909", value, source_headers))

    [record] = dlq_records(dead(b"12345678909", value, source_headers), LIMIT)

    headers = headers_of(record)
    assert headers[TRUNCATED] == b"1040000"
    assert record.headers[: len(whole.headers)] == whole.headers  # every header kept, the mark last
    assert record.key == b"12345678909"
    assert value.startswith(record.value)
    assert record.value.decode()  # cut between characters
    assert LIMIT - 3 <= record_size(record) <= LIMIT  # all the room the headers leave, but a split character
    assert headers["xtreaming-source"] == f"{TOPIC}/2/41".encode()


def test_larger_headers_leave_less_of_the_value() -> None:
    value = b"v" * 1_040_000

    [plain] = dlq_records(dead(b"1", value), LIMIT)
    [with_headers] = dlq_records(dead(b"1", value, (("trace", b"t" * 100_000),)), LIMIT)

    assert record_size(plain) == record_size(with_headers) == LIMIT
    header_bytes = record_size(Record(None, b"", (("trace", b"t" * 100_000),))) - record_size(Record(None, b""))
    assert len(plain.value) - len(with_headers.value) == header_bytes


HUGE_HEADERS = (("trace", b"t" * 600_000), ("origem", b"o" * 600_000))


def test_headers_too_large_for_any_value_are_dropped_but_where_the_message_is() -> None:
    [record] = dlq_records(dead(b"12345678909", b"v" * 500_000, HUGE_HEADERS), LIMIT)

    headers = headers_of(record)
    assert set(headers) == {"xtreaming-source", "xtreaming-attempts", "xtreaming-task", DROPPED_HEADERS}
    assert headers[DROPPED_HEADERS] == b"3"  # the message's two and the error history
    assert (record.key, record.value) == (b"12345678909", b"v" * 500_000)  # whole once the headers went


def test_once_the_headers_are_dropped_the_value_takes_the_room_they_left() -> None:
    [record] = dlq_records(dead(b"12345678909", b"v" * 1_040_000, HUGE_HEADERS), LIMIT)

    headers = headers_of(record)
    assert (headers[TRUNCATED], headers[DROPPED_HEADERS]) == (b"1040000", b"3")
    assert record_size(record) == LIMIT


def test_a_key_too_large_for_the_record_is_cut_last() -> None:
    key = b"k" * 1_200_000

    [record] = dlq_records(dead(key, b"v" * 10), LIMIT)

    headers = headers_of(record)
    assert headers[TRUNCATED_KEY] == b"1200000"
    assert headers[TRUNCATED] == b"10"
    assert record.value == b""
    assert key.startswith(record.key or b"!")
    assert record_size(record) == LIMIT


def test_cutting_again_keeps_the_original_sizes() -> None:
    [once] = dlq_records(dead(b"k" * 5000, b"v" * 1_040_000, (("trace", b"t" * 2000),)), LIMIT)

    twice = fit_dlq(once, 1000)

    headers = headers_of(twice)
    assert (headers[TRUNCATED], headers[TRUNCATED_KEY]) == (b"1040000", b"5000")
    assert len([name for name, _ in twice.headers if name == TRUNCATED]) == 1
    assert headers["xtreaming-source"] == f"{TOPIC}/2/41".encode()
    assert record_size(twice) <= 1000


# -- ACK records ------------------------------------------------------------------------------------


def ack_fields(record: Record) -> dict[str, object]:
    fields: dict[str, object] = json.loads(record.value)
    return fields


@pytest.mark.parametrize("keys", [[b"12345678909", b"0" * 11], [b'a"b', None, b"\xff"]])
def test_acks_of_ordinary_keys_are_the_same_with_a_limit(keys: list[bytes | None]) -> None:
    messages = [PendingMessage(0, i, key, 1, None) for i, key in enumerate(keys)]
    done = Finished(TOPIC, "task-1", "farm-poa", 0, AT, Status.OK, None, messages)

    assert ack_records(done, LIMIT) == ack_records(done)


@pytest.mark.parametrize("key", [b"1" * 600_000, "ção".encode() * 100_000, b"\x01" * 300_000])
def test_an_ack_cuts_the_key_in_its_json_first_and_says_so(key: bytes) -> None:
    done = Finished(TOPIC, "task-1", "farm-poa", 0, AT, Status.OK, None, [PendingMessage(0, 7, key, 1, None)])

    [record] = ack_records(done, LIMIT)

    fields = ack_fields(record)
    assert record.key is key  # the record's key kept: it picks the partition
    assert fields["key_truncated"] == len(key)
    assert isinstance(fields["key"], str)
    assert key.decode("utf-8", "replace").startswith(fields["key"])
    assert (fields["offset"], fields["status"], fields["task_id"]) == (7, "ok", "task-1")
    assert LIMIT - 10 <= record_size(record) <= LIMIT  # the room left goes to the key


def test_an_ack_whose_key_alone_is_too_large_cuts_the_records_key_too() -> None:
    key = b"1" * 1_500_000
    done = Finished(TOPIC, "task-1", "farm-poa", 0, AT, Status.DEAD, "x", [PendingMessage(0, 7, key, 1, None)])

    [record] = ack_records(done, LIMIT)

    fields = ack_fields(record)
    assert record.key is not None
    assert key.startswith(record.key)
    assert fields["key"] == record.key.decode()
    assert fields["key_truncated"] == 1_500_000
    assert LIMIT - 10 <= record_size(record) <= LIMIT


def test_an_ack_cut_to_a_tiny_limit_cuts_the_detail_last() -> None:
    detail = "stderr: " + "erro " * 400
    message = PendingMessage(0, 7, b"k" * 900, 1, None)
    done = Finished(TOPIC, "task-1", "farm-poa", 0, AT, Status.DEAD, detail, [message])
    [whole] = ack_records(done)

    record = fit_ack(whole, 1000)

    fields = ack_fields(record)
    assert (fields["key"], fields["key_truncated"]) == ("", 900)
    assert isinstance(fields["detail"], str)
    assert detail.startswith(fields["detail"])
    assert fields["detail_truncated"] == len(detail.encode())
    assert 990 <= record_size(record) <= 1000
