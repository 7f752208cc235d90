"""A SQLite history of its own beside an embedded log writes a batch's messages from the log's records: the same
rows as from the outcomes, and the outcomes whenever the log does not hold exactly those messages."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.coordinator.history.builders import NOW, TOPIC, history_of
from tests.e2e.coordinator_process import TOPIC as E2E_TOPIC
from tests.e2e.coordinator_process import CoordinatorProcess
from tests.waiting import wait_until
from xtreaming.broker import Record, log_file
from xtreaming.broker.sqlite import SqliteBroker
from xtreaming.coordinator.history import open_history
from xtreaming.coordinator.outcomes import Outcome, Result
from xtreaming.coordinator.store.history import LOG_RUN_FROM, HistoryTable
from xtreaming.errors import InvalidBrokerUrl

BATCH = 200
PARTITIONS = 1


def key_of(partition: int, offset: int) -> bytes:
    return f"{partition}{offset:010d}".encode()


def batch(
    partition: int, offsets: range, *, attempt: int = 1, topic: str = TOPIC, keys: dict[int, bytes] | None = None
) -> list[Outcome]:
    """A task's settled messages, as settlement tells them (``keys`` overrides the log's key of some offsets)."""
    keys = keys or {}
    return [
        Outcome(
            Result.OK, topic, partition, o, keys.get(o, key_of(partition, o)), attempt, "farm-1", 0, "t-1", 0.5, None
        )
        for o in offsets
    ]


@pytest.fixture
def log(tmp_path: Path) -> Iterator[SqliteBroker]:
    broker = SqliteBroker(tmp_path / "log.db")
    broker.create_topic("OTHER.TOPIC.FIRST", 3)  # the bench topic's partitions are not the first of the log
    broker.create_topic(TOPIC, PARTITIONS)
    broker.append(TOPIC, [Record(key_of(0, o), b"<cliente/>") for o in range(1000)])
    yield broker
    broker.close()


def tables(tmp_path: Path, log: SqliteBroker) -> tuple[HistoryTable, HistoryTable]:
    """A history of its own reading the log, and one that does not (the reference)."""
    state = f"sqlite:///{tmp_path}/state.db"
    reading = open_history(state, None, f"sqlite:///{log.path}")
    plain = open_history(f"sqlite:///{tmp_path}/plain.db", None)
    return reading, plain


def stored(table: HistoryTable, outcomes: list[Outcome]) -> list[tuple[object, ...]]:
    found: list[tuple[object, ...]] = []
    for o in outcomes:
        found += [
            (a.topic, a.partition, a.offset, a.key, a.attempt, a.result, a.farm, a.task_id, a.at)
            for a in table.by_message(o.topic, o.partition, o.offset, o.key)
        ]
    return found


def test_batches_written_from_the_log_are_the_rows_written_from_their_outcomes(
    tmp_path: Path, log: SqliteBroker
) -> None:
    reading, plain = tables(tmp_path, log)
    told = [
        (NOW, batch(0, range(300, 300 + BATCH)) + batch(0, range(0, BATCH), attempt=2)),
        (NOW, batch(0, range(500, 500 + LOG_RUN_FROM))),  # the smallest group read from the log
        (NOW, batch(0, range(800, 810))),  # too few: bound
    ]
    try:
        assert reading.write(told) == plain.write(told) == 2 * BATCH + LOG_RUN_FROM + 10
        every = [o for _, outcomes in told for o in outcomes]
        assert stored(reading, every) == stored(plain, every)
        assert len(stored(reading, every)) == len(every)
    finally:
        reading.close()
        plain.close()


def test_the_keys_come_from_the_log_when_its_records_are_those_of_the_batch(tmp_path: Path, log: SqliteBroker) -> None:
    # A batch whose outcomes say another key in the middle than the log: the history holds the log's, which
    # shows the batch was copied from the log (a message's key is the log's in every real settlement).
    reading, _ = tables(tmp_path, log)
    told = batch(0, range(0, BATCH), keys={50: b"not the log's"})
    try:
        assert reading.write([(NOW, told)]) == BATCH
        [attempt] = reading.by_message(TOPIC, 0, 50, key_of(0, 50))
        assert attempt.offset == 50
        assert reading.by_key(b"not the log's", NOW, NOW.replace(year=NOW.year + 1), 10) == []
    finally:
        reading.close()


@pytest.mark.parametrize(
    "case",
    [
        "first key differs",  # the topic was deleted and made again: other records at those offsets
        "last key differs",
        "records beyond the log's end",
        "a topic the log does not have",
        "a partition the topic does not have",
    ],
)
def test_a_batch_the_log_does_not_hold_exactly_is_written_from_its_outcomes(
    tmp_path: Path, log: SqliteBroker, case: str
) -> None:
    reading, _ = tables(tmp_path, log)
    told = {
        "first key differs": batch(0, range(0, BATCH), keys={0: b"re-made"}),
        "last key differs": batch(0, range(0, BATCH), keys={BATCH - 1: b"re-made"}),
        "records beyond the log's end": batch(0, range(900, 900 + BATCH)),
        "a topic the log does not have": batch(0, range(0, BATCH), topic="MULTCOB09.1.IMPORTACAO.NENHUM"),
        "a partition the topic does not have": batch(PARTITIONS, range(0, BATCH)),
    }[case]
    try:
        assert reading.write([(NOW, told)]) == BATCH
        assert len(stored(reading, told)) == BATCH  # every message under the key its outcome says
    finally:
        reading.close()


def test_messages_that_are_not_one_range_of_the_log_are_written_from_their_outcomes(
    tmp_path: Path, log: SqliteBroker
) -> None:
    reading, plain = tables(tmp_path, log)
    gaps = batch(0, range(0, 2 * BATCH, 2))
    mixed = batch(0, range(0, BATCH // 2), attempt=1) + batch(0, range(BATCH // 2, BATCH), attempt=2)
    across = batch(0, range(600, 700)) + batch(1, range(700, 800))  # partition 1: not in the log, its run fails
    told = [(NOW, outcomes) for outcomes in (gaps, mixed, across)]
    try:
        assert reading.write(told) == plain.write(told)
        every = gaps + mixed + across
        assert stored(reading, every) == stored(plain, every)
    finally:
        reading.close()
        plain.close()


def test_only_an_embedded_log_is_read_and_only_by_a_history_of_its_own(tmp_path: Path) -> None:
    assert log_file("sqlite:///data/log.db?synchronous=full") == Path("data/log.db")
    assert log_file("kafka://127.0.0.1:9092") is None
    with pytest.raises(InvalidBrokerUrl):
        log_file("sqlite://host/log.db")
    # In the state store's own database (history_database_url = the state's): never attached.
    state = f"sqlite:///{tmp_path}/state.db"
    shared = open_history(state, state, f"sqlite:///{tmp_path}/log.db")
    try:
        assert shared._log_attached is False
    finally:
        shared.close()
    assert not (tmp_path / "log.db").exists()


def test_the_log_keeps_taking_appends_while_a_flush_reads_it(tmp_path: Path, log: SqliteBroker) -> None:
    # A write transaction that began IMMEDIATE would hold the write lock of the attached log as well.
    reading, _ = tables(tmp_path, log)
    other = sqlite3.connect(log.path, timeout=0, isolation_level=None)
    try:
        with reading._database.write() as conn:
            conn.exec_driver_sql("SELECT count(*) FROM log.records").scalar()
            conn.exec_driver_sql("DELETE FROM message_history")  # the history's own write lock taken
            other.execute("BEGIN IMMEDIATE")  # raises "database is locked" if the flush held the log's
            other.execute("ROLLBACK")
    finally:
        other.close()
        reading.close()


@pytest.mark.slow
def test_a_coordinator_on_the_embedded_log_keeps_every_message_of_a_batch(tmp_path: Path) -> None:
    process = CoordinatorProcess(tmp_path, f"sqlite:///{tmp_path}/log.db", f"sqlite:///{tmp_path}/state.db").start()
    try:
        process.publish(E2E_TOPIC, BATCH)
        process.call("PATCH", f"/api/queues/{E2E_TOPIC}/settings", {"batch_size": BATCH})
        farm_id = process.register("farm-sp1", 1)
        [task] = wait_until(lambda: process.lease(farm_id, [0]), 10, "the batch")
        assert len(task["messages"]["offsets"]) == BATCH
        assert process.report(farm_id, task, 0).status_code == 200

        for offset in (0, 137, BATCH - 1):
            [attempt] = history_of(process, f"{offset:011d}", 1)
            assert (attempt["offset"], attempt["result"], attempt["farm"]) == (offset, "ok", "farm-sp1")
        with sqlite3.connect(tmp_path / "state.history.db") as conn:
            rows = conn.execute('SELECT "offset", key FROM message_history ORDER BY "offset"').fetchall()
        assert rows == [(o, f"{o:011d}".encode()) for o in range(BATCH)]
    finally:
        process.close()


def test_a_log_file_that_cannot_be_read_leaves_the_outcomes_to_write(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The coordinator opens the log before the history; were the file gone (or not a log), SQLite's ATTACH
    # makes an empty one: its batches are written from their outcomes, and said so.
    reading = open_history(f"sqlite:///{tmp_path}/state.db", None, f"sqlite:///{tmp_path}/missing/log.db")
    told = batch(0, range(0, BATCH))
    try:
        assert reading.write([(NOW, told)]) == BATCH
        assert len(stored(reading, told)) == BATCH
    finally:
        reading.close()
    assert "cannot be read from the log" in caplog.text
