"""The history table on SQLite and PostgreSQL: written in batches, looked up by key and by message, trimmed by age."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from tests.coordinator.history.builders import CPF, NOW, OTHER_TOPIC, TOPIC, history_table, outcome
from tests.services import fresh_postgres_schema
from xtreaming.coordinator.outcomes import Outcome, Result
from xtreaming.coordinator.schema import HISTORY_GROUPS, MESSAGE_HISTORY
from xtreaming.coordinator.store.database import Database
from xtreaming.coordinator.store.history import ROWS_PER_STATEMENT, Attempt, HistoryTable, MessageHistoryNotFound
from xtreaming.errors import StoreUnavailable

DAY = timedelta(days=1)


@pytest.fixture
def table(store_url: str) -> Iterator[HistoryTable]:
    with history_table(store_url) as table:
        yield table


def attempt_of(at_offset: timedelta, o: Outcome) -> Attempt:
    return Attempt(NOW + at_offset, str(o.result), *o[1:])


def test_the_tables_columns_are_a_groups_shared_fields_and_a_messages_own() -> None:
    # HistoryTable.write builds a group's row as (id, at, *shared) and a message's as (group id, *own), the
    # fields picked from Outcome by position: the column orders are what it relies on.
    shared = ["result", "topic", "farm", "slot", "task_id", "duration_s", "detail"]
    own = ["partition", "offset", "key", "attempt"]
    assert [c.name for c in HISTORY_GROUPS.columns] == ["id", "at", *shared]
    assert [c.name for c in MESSAGE_HISTORY.columns] == ["group_id", *own]
    assert sorted(shared + own) == sorted(Outcome._fields)
    assert [Outcome._fields.index(name) for name in own] == [2, 3, 4, 5]


def test_written_attempts_read_back_through_core_as_they_were_told(table: HistoryTable, store_url: str) -> None:
    told = [
        outcome(7, Result.RETRY, attempt=1, detail="timeout após 30 s"),
        outcome(8, key=None),
        outcome(9, key=bytes(range(256))),
        outcome(2**40, Result.DEAD, attempt=5, detail=None),
    ]

    assert table.write([(NOW, told[:2]), (NOW + timedelta(seconds=1), told[2:])]) == 4

    database = Database(store_url)
    with database.read() as conn:  # plain Core with UtcDateTime: what the driver-level insert must agree with
        m, g = MESSAGE_HISTORY.c, HISTORY_GROUPS.c
        columns = [g.at, g.result, g.topic, m.partition, m.offset, m.key, m.attempt, g.farm, g.slot, g.task_id]
        query = select(*columns, g.duration_s, g.detail).join_from(MESSAGE_HISTORY, HISTORY_GROUPS, g.id == m.group_id)
        rows: list[Any] = list(conn.execute(query.order_by(m.offset)))
        stored = [Attempt(*row) for row in rows]
    database.close()
    assert stored == [
        attempt_of(timedelta(0), told[0]),
        attempt_of(timedelta(0), told[1]),
        attempt_of(timedelta(seconds=1), told[2]),
        attempt_of(timedelta(seconds=1), told[3]),
    ]


def test_a_key_shows_every_attempt_across_topics_newest_first(table: HistoryTable) -> None:
    table.write([(NOW - 2 * DAY, [outcome(1, Result.RETRY, detail="falhou")])])
    table.write([(NOW - DAY, [outcome(1, attempt=2), outcome(5, key=b"98765432100")])])
    table.write([(NOW, [outcome(3, topic=OTHER_TOPIC)])])

    found = table.by_key(CPF, NOW - 30 * DAY, NOW + DAY, limit=100)

    assert [(a.topic, a.offset, a.attempt, a.result) for a in found] == [
        (OTHER_TOPIC, 3, 1, "ok"),
        (TOPIC, 1, 2, "ok"),
        (TOPIC, 1, 1, "retry"),
    ]
    assert found[-1].detail == "falhou"
    assert [a.offset for a in table.by_key(CPF, NOW - 30 * DAY, NOW + DAY, 100, topic=TOPIC)] == [1, 1]
    assert [a.attempt for a in table.by_key(CPF, NOW - 2 * DAY, NOW - DAY, 100)] == [1]  # until excluded
    assert table.by_key(b"00000000000", NOW - 30 * DAY, NOW + DAY, 100) == []


def test_pages_follow_each_other_without_gaps_or_repeats(table: HistoryTable) -> None:
    # Attempts settled at the same instant (one settlement) still page one by one.
    table.write([(NOW, [outcome(i) for i in range(7)]), (NOW - DAY, [outcome(i, attempt=2) for i in range(3)])])
    everything = table.by_key(CPF, NOW - 30 * DAY, NOW + DAY, 1000)

    pages, before = [], None
    while page := table.by_key(CPF, NOW - 30 * DAY, NOW + DAY, 3, before=before):
        pages.append(page)
        before = page[-1].position

    assert [len(p) for p in pages] == [3, 3, 3, 1]
    assert [a for p in pages for a in p] == everything
    assert len(set(everything)) == 10


def test_a_message_shows_each_attempt_oldest_first(table: HistoryTable) -> None:
    table.write([(NOW - DAY, [outcome(4, Result.RETRY, detail="erro 1"), outcome(5)])])
    table.write([(NOW, [outcome(4, Result.DEAD, attempt=2, detail="erro 2")])])

    attempts = table.by_message(TOPIC, 0, 4, CPF)

    assert [(a.attempt, a.result, a.detail) for a in attempts] == [(1, "retry", "erro 1"), (2, "dead", "erro 2")]
    with pytest.raises(MessageHistoryNotFound, match=f"message {TOPIC}/2/5 has no history"):
        table.by_message(TOPIC, 2, 5, CPF)  # offset 5 is in partition 1
    with pytest.raises(MessageHistoryNotFound, match=f"message {TOPIC}/0/4 has no history"):
        table.by_message(TOPIC, 0, 4, b"another key")  # the log says which key the message has


def test_a_message_without_a_key_is_found_among_those_without_one(table: HistoryTable) -> None:
    table.write([(NOW, [outcome(4, key=None), outcome(8, key=None, detail="sem chave"), outcome(12)])])

    [attempt] = table.by_message(TOPIC, 0, 8, None)

    assert (attempt.offset, attempt.key, attempt.detail) == (8, None, "sem chave")
    with pytest.raises(MessageHistoryNotFound):
        table.by_message(TOPIC, 0, 12, None)


def test_a_history_file_of_an_earlier_version_loses_its_offset_index(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/old.history.db"
    with sqlite3.connect(tmp_path / "old.history.db") as conn:  # as 0006 made it
        columns = 'group_id BIGINT, partition INT, "offset" BIGINT, key BLOB, attempt INT'
        conn.execute(f"CREATE TABLE message_history ({columns})")
        conn.execute('CREATE INDEX ix_message_history_offset ON message_history ("offset", partition)')
    table = HistoryTable(Database(url))
    table.create()
    table.close()

    with sqlite3.connect(tmp_path / "old.history.db") as conn:
        indexes = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "ix_message_history_offset" not in indexes


def test_a_page_size_out_of_bounds_is_refused(table: HistoryTable) -> None:
    with pytest.raises(ValueError, match="history page of 1002 rows: expected 1 to 1001"):
        table.by_key(CPF, NOW - DAY, NOW, 1002)


def test_retention_removes_what_is_older_than_the_cutoff_and_nothing_else(table: HistoryTable) -> None:
    cutoff = NOW - 30 * DAY
    ages = {
        "40 days": NOW - 40 * DAY,
        "31 days": NOW - 31 * DAY,
        "just before the cutoff": cutoff - timedelta(microseconds=1),
        "at the cutoff": cutoff,
        "just after the cutoff": cutoff + timedelta(seconds=1),
        "now": NOW,
    }
    for offset, at in enumerate(ages.values()):
        table.write([(at, [outcome(offset)])])

    table.remove_older_than(cutoff)

    kept = {a.at for a in table.by_key(CPF, NOW - 400 * DAY, NOW + DAY, 100)}
    assert {name for name, at in ages.items() if at in kept} == {"at the cutoff", "just after the cutoff", "now"}


def test_sqlite_retention_deletes_in_bounded_chunks(tmp_path: Path) -> None:
    with history_table(f"sqlite:///{tmp_path}/state.db") as table:
        table.write([(NOW - 40 * DAY, [outcome(i) for i in range(350)]), (NOW, [outcome(i) for i in range(50)])])

        # Transactions of 100, 100, 100 and 50 rows, then one finding none left.
        assert table.remove_older_than(NOW - 30 * DAY, chunk_rows=100) == 350

        assert len(table.by_key(CPF, NOW - 400 * DAY, NOW + DAY, 1000)) == 50


@pytest.mark.postgres
def test_postgresql_partitions_by_day_and_drops_old_days_whole() -> None:
    with fresh_postgres_schema() as store_url, history_table(store_url) as table:
        for days_ago in (40, 31, 30, 0):
            table.write([(NOW - days_ago * DAY, [outcome(days_ago)])])
        table.ensure_days([(NOW + DAY).date()])  # created ahead, before any row of that day
        assert partitions(store_url) == ["20261027", "20261105", "20261106", "20261206", "20261207"]

        table.remove_older_than(NOW - 30 * DAY)

        # Days wholly before the cutoff are gone; the cutoff's own day keeps its partition (its older rows go).
        assert partitions(store_url) == ["20261106", "20261206", "20261207"]
        assert [a.offset for a in table.by_key(CPF, NOW - 400 * DAY, NOW + DAY, 100)] == [0, 30]
        # An attempt told late (after younger ones) takes the next id: kept among today's, with its own time.
        late = NOW - 40 * DAY + timedelta(hours=1)
        table.write([(late, [outcome(1)])])
        assert partitions(store_url) == ["20261106", "20261206", "20261207"]
        assert [a.at for a in table.by_key(CPF, NOW - 400 * DAY, NOW + DAY, 100)][-1] == late


@pytest.mark.postgres
def test_a_copy_that_fails_on_postgresql_writes_nothing_and_says_the_store_is_unavailable() -> None:
    # Rows go by COPY there: a failure midway (here the day's message partition dropped behind the writer's back,
    # after its groups were copied) leaves no group without its messages.
    with fresh_postgres_schema() as store_url, history_table(store_url) as table:
        table.write([(NOW, [outcome(1)])])
        database = Database(store_url)
        with database.write() as conn:
            conn.exec_driver_sql(f"DROP TABLE {MESSAGE_HISTORY.name}_{NOW:%Y%m%d}")
            groups_before = conn.exec_driver_sql(f"SELECT count(*) FROM {HISTORY_GROUPS.name}").scalar()

        with pytest.raises(StoreUnavailable, match="history: writing message_history failed"):
            table.write([(NOW, [outcome(2), outcome(3)])])

        with database.read() as conn:
            assert conn.exec_driver_sql(f"SELECT count(*) FROM {HISTORY_GROUPS.name}").scalar() == groups_before
        database.close()


def partitions(url: str) -> list[str]:
    """The days partitioned on PostgreSQL: the same for both of the history's tables."""
    database = Database(url)
    days = []
    with database.read() as conn:
        for table in (HISTORY_GROUPS, MESSAGE_HISTORY):
            names = conn.execute(
                text("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                     "WHERE i.inhparent = CAST(:table AS regclass) ORDER BY c.relname"),
                {"table": table.name},
            ).scalars().all()  # fmt: skip
            days.append([name.removeprefix(f"{table.name}_") for name in names])
    database.close()
    assert days[0] == days[1]
    return days[0]


def test_a_flush_of_several_statements_lands_whole(table: HistoryTable, store_url: str) -> None:
    told = [outcome(i, key=f"{i % 7:011d}".encode()) for i in range(2 * ROWS_PER_STATEMENT + 3)]

    assert table.write([(NOW, told[:10]), (NOW + timedelta(seconds=1), told[10:])]) == len(told)

    database = Database(store_url)
    with database.read() as conn:
        offsets = sorted(conn.execute(select(MESSAGE_HISTORY.c.offset)).scalars())
    database.close()
    assert offsets == list(range(len(told)))
