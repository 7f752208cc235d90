"""The history writer: settlement only buffers, a thread writes in batches and trims by age, a database that is
down costs memory up to a bound and never a wait."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import inspect

from tests.coordinator.history.builders import CPF, NOW, history_table, outcome
from tests.waiting import wait_until
from xtreaming.config import Settings
from xtreaming.coordinator.history import HistoryWriter, history_url, open_history
from xtreaming.coordinator.outcomes import Result
from xtreaming.coordinator.store.database import Database
from xtreaming.coordinator.store.history import HistoryTable
from xtreaming.errors import StoreUnavailable
from xtreaming.localhost import free_port

DAY = timedelta(days=1)


@pytest.fixture
def table(store_url: str) -> Iterator[HistoryTable]:
    with history_table(store_url) as table:
        yield table


def everything(table: HistoryTable) -> list[tuple[int, int, str]]:
    return [(a.offset, a.attempt, a.result) for a in table.by_key(CPF, NOW - 400 * DAY, NOW + DAY, 1000)]


def test_settlements_are_buffered_then_written_in_one_pass_at_the_time_they_were_told(table: HistoryTable) -> None:
    writer = HistoryWriter(table, 30, clock=lambda: NOW)

    writer([outcome(1, Result.RETRY), outcome(2)])
    writer([outcome(1, attempt=2)])

    assert (writer.buffered, everything(table)) == (3, [])
    assert writer.run_once() == 3
    assert writer.buffered == 0
    assert sorted(everything(table)) == [(1, 1, "retry"), (1, 2, "ok"), (2, 1, "ok")]
    assert {a.at for a in table.by_key(CPF, NOW - DAY, NOW + DAY, 10)} == {NOW}


def test_stopping_writes_what_is_still_buffered(table: HistoryTable) -> None:
    writer = HistoryWriter(table, 30, clock=lambda: NOW, flush_interval_s=3600)
    writer.start()

    writer([outcome(i) for i in range(5)])
    writer.stop()

    assert len(everything(table)) == 5


def test_the_writers_pass_removes_what_is_past_the_retention(table: HistoryTable) -> None:
    table.write([(NOW - 31 * DAY, [outcome(1)]), (NOW - 29 * DAY, [outcome(2)])])
    writer = HistoryWriter(table, 30, clock=lambda: NOW)

    writer([outcome(3)])
    writer.run_once()

    assert sorted(everything(table)) == [(2, 1, "ok"), (3, 1, "ok")]


def test_while_the_database_is_down_the_oldest_attempts_are_dropped_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    nobody = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test"  # a port nothing listens on
    table = HistoryTable(Database(nobody))
    writer = HistoryWriter(table, 30, clock=lambda: NOW, max_buffered_rows=10)

    with caplog.at_level(logging.WARNING, logger="xtreaming.coordinator"):
        for first in range(0, 16, 4):
            writer([outcome(i) for i in range(first, first + 4)])
        with pytest.raises(StoreUnavailable):
            writer.run_once()
        writer([outcome(99)])

    assert (writer.buffered, writer.dropped) == (9, 8)  # the 1st and 2nd batches made room for the 3rd and 4th
    assert [r.getMessage() for r in caplog.records].count(
        "history: 10 attempts wait for the history's database; dropping the oldest from now on "
        "(the .ACK and .DLQ topics keep every outcome)"
    ) == 1
    table.close()


def test_a_retention_under_a_day_is_refused_in_a_sentence() -> None:
    with pytest.raises(ValueError, match="history_retention_days is 0: history is kept at least 1 day"):
        Settings(history_retention_days=0)
    assert Settings().history_retention_days == 30


@pytest.mark.parametrize(
    ("state", "configured", "history"),
    [
        ("sqlite:///data/state.db", None, "sqlite:///data/state.history.db"),
        ("sqlite:////srv/x/estado", None, "sqlite:////srv/x/estado.history.db"),
        ("sqlite:///data/state.db", "sqlite:///data/state.db", "sqlite:///data/state.db"),
        ("postgresql+psycopg://u@db/x", None, "postgresql+psycopg://u@db/x"),
        ("postgresql+psycopg://u@db/x", "postgresql+psycopg://u@db/h", "postgresql+psycopg://u@db/h"),
        ("sqlite://", None, "sqlite://"),
    ],
)
def test_the_history_lives_beside_a_sqlite_state_file_unless_configured(
    state: str, configured: str | None, history: str
) -> None:
    assert history_url(state, configured) == history


def test_a_history_database_of_its_own_gets_the_table(tmp_path: Path) -> None:
    table = open_history(f"sqlite:///{tmp_path}/state.db", None)
    table.write([(NOW, [outcome(1)])])
    table.close()

    database = Database(f"sqlite:///{tmp_path}/state.history.db")
    with database.read() as conn:
        assert inspect(conn).get_table_names() == ["history_groups", "message_history"]
    database.close()


def test_the_writers_thread_writes_on_its_own(table: HistoryTable) -> None:
    writer = HistoryWriter(table, 30, clock=lambda: NOW, flush_interval_s=0.05)
    writer.start()
    try:
        writer([outcome(1), outcome(2)])

        wait_until(lambda: len(everything(table)) == 2, 10, "the writer's thread to write both attempts")
    finally:
        writer.stop()
