"""The dead-letter index: every .DLQ record indexed once, grouped by error, found by filter; on SQLite and
PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.coordinator.dead_letters.letters import DLQ, TOPIC, cpf, kill
from tests.waiting import wait_until
from xtreaming.broker import Broker, Record
from xtreaming.coordinator.dead_letter_index import HISTORY_CUT, MAX_RECORDS_PER_PASS
from xtreaming.coordinator.dead_letter_records import (
    FOREIGN_ERROR,
    ErrorGroup,
    InvalidLetterFilter,
    LetterFilter,
    LetterState,
    TopicLetters,
)
from xtreaming.coordinator.dead_letters import DeadLetters


def test_letters_are_grouped_by_their_last_error_with_samples(letters: DeadLetters, broker: Broker) -> None:
    kill(broker, [cpf(n) for n in range(5)], error="worker exited with 2", partitions=1)
    kill(broker, [cpf(n) for n in range(5, 7)], error="CPF inválido", partitions=1)

    indexed = letters.index()

    assert indexed == 7
    assert letters.summary() == [
        TopicLetters(
            TOPIC,
            open=7,
            replayed=0,
            skipped=0,
            errors=[
                ErrorGroup("worker exited with 2", 5, [(f"{DLQ}/0/{n}", cpf(n).encode()) for n in range(3)]),
                ErrorGroup("CPF inválido", 2, [(f"{DLQ}/0/5", cpf(5).encode()), (f"{DLQ}/0/6", cpf(6).encode())]),
            ],
        )
    ]


def test_each_record_is_indexed_once_across_passes(letters: DeadLetters, broker: Broker) -> None:
    kill(broker, [cpf(n) for n in range(10)])
    letters.index()
    kill(broker, [cpf(n) for n in range(10, 13)])

    assert letters.index() == 3
    assert letters.index() == 0
    page, total = letters.find(LetterFilter(TOPIC), limit=1000)
    assert total == 13
    assert sorted(letter.key or b"" for letter in page) == [cpf(n).encode() for n in range(13)]
    first = next(letter for letter in page if letter.key == cpf(0).encode())
    assert (first.source_partition, first.attempts, first.state) == (first.partition, 3, LetterState.DEAD)


def test_a_record_without_our_headers_is_indexed_as_foreign(letters: DeadLetters, broker: Broker) -> None:
    broker.create_topic(DLQ, 1)
    broker.append(DLQ, [Record(b"12345678909", b"<cliente/>", (("origem", b"crm"),)), Record(None, b"")])
    broker.append(DLQ, [Record(b"1", b"x", (("xtreaming-source", b"OTHER.1.IMPORTACAO.X/0/1"),))])

    assert letters.index() == 3

    page, _ = letters.find(LetterFilter(TOPIC))
    assert [(letter.key, letter.error, letter.source_offset) for letter in page] == [
        (b"12345678909", FOREIGN_ERROR, None),
        (None, FOREIGN_ERROR, None),
        (b"1", FOREIGN_ERROR, None),  # a source on another topic is not one of ours either
    ]


def test_a_record_whose_error_history_was_cut_is_indexed_saying_so(letters: DeadLetters, broker: Broker) -> None:
    kill(broker, [cpf(1)], error="x" * 5000, max_record_bytes=1000)

    letters.index()

    page, _ = letters.find(LetterFilter(TOPIC))
    assert [letter.error for letter in page] == [HISTORY_CUT]


def test_the_filter_selects_by_error_text_in_any_case(letters: DeadLetters, broker: Broker) -> None:
    kill(broker, [cpf(1), cpf(2)], error="Timeout after 600 s")
    kill(broker, [cpf(3)], error="100% of rows_x refused")
    letters.index()

    def keys(selected: LetterFilter) -> list[bytes]:
        return sorted(letter.key or b"" for letter in letters.find(selected)[0])

    assert keys(LetterFilter(TOPIC, error="TIMEOUT")) == [cpf(1).encode(), cpf(2).encode()]
    assert keys(LetterFilter(TOPIC, error="100%")) == [cpf(3).encode()]
    assert keys(LetterFilter(TOPIC, error="s_x")) == [cpf(3).encode()]  # LIKE's wildcards are plain text
    assert keys(LetterFilter(TOPIC, error="%")) == [cpf(3).encode()]
    assert keys(LetterFilter(TOPIC, error="_")) == [cpf(3).encode()]
    assert keys(LetterFilter(TOPIC, keys=(cpf(2).encode(), b"nobody"))) == [cpf(2).encode()]
    assert keys(LetterFilter("MULTCOB02.1186.IMPORTACAO.OUTRA")) == []


def test_the_filter_selects_by_when_letters_died(letters: DeadLetters, broker: Broker) -> None:
    kill(broker, [cpf(1), cpf(2)])
    letters.index()
    early = max(letter.dead_at for letter in letters.find(LetterFilter(TOPIC))[0])
    wait_until(lambda: datetime.now(UTC) > early + timedelta(milliseconds=2), 5, "the clock to move past the first")
    kill(broker, [cpf(3)])
    letters.index()
    late = next(letter.dead_at for letter in letters.find(LetterFilter(TOPIC, keys=(cpf(3).encode(),)))[0])

    def count(selected: LetterFilter) -> int:
        return letters.find(selected)[1]

    assert count(LetterFilter(TOPIC, since=late)) == 1
    assert count(LetterFilter(TOPIC, until=late)) == 2
    assert count(LetterFilter(TOPIC, since=early - timedelta(days=1), until=late)) == 2
    assert count(LetterFilter(TOPIC, since=late + timedelta(seconds=1))) == 0


def test_an_empty_time_range_is_refused() -> None:
    at = datetime(2026, 12, 6, 10, tzinfo=UTC)

    with pytest.raises(InvalidLetterFilter, match="is not before until"):
        LetterFilter(TOPIC, since=at, until=at)


def test_letters_come_in_pages(letters: DeadLetters, broker: Broker) -> None:
    kill(broker, [cpf(n) for n in range(25)], partitions=1)
    letters.index()

    first, total = letters.find(LetterFilter(TOPIC), limit=10)
    second, _ = letters.find(LetterFilter(TOPIC), after_id=first[-1].id, limit=10)
    last, _ = letters.find(LetterFilter(TOPIC), after_id=second[-1].id, limit=10)

    assert total == 25
    assert [letter.offset for letter in first + second + last] == list(range(25))


def test_a_pass_indexes_a_bounded_number_and_the_next_goes_on_from_there(letters: DeadLetters, broker: Broker) -> None:
    kill(broker, [cpf(n) for n in range(MAX_RECORDS_PER_PASS + 500)], partitions=1)

    passes = [letters.index(), letters.index(), letters.index()]

    assert passes == [MAX_RECORDS_PER_PASS, 500, 0]
    assert letters.find(LetterFilter(TOPIC))[1] == MAX_RECORDS_PER_PASS + 500
