"""The ``message_history`` table: settled attempts written in batches, looked up by key or message, trimmed by age.

Writing is the hot trick of this module: plain tuples in the driver's own SQL, ``ROWS_PER_STATEMENT``
rows per statement, the settlement time converted once per batch, instead of SQLAlchemy's per-row
processing (tested against the plain Core reading in ``tests/coordinator/history``). Reading is plain Core.

PostgreSQL. The table is partitioned by day of ``at`` (UTC), one partition ``message_history_YYYYMMDD``
per day, created before rows of that day are written (``ensure_days``); retention drops every
partition whose day ended before the cutoff, then deletes the older rows of the day it falls in.
SQLite. A plain table; retention deletes the oldest rows (by rowid), ``DELETE_CHUNK_ROWS`` rows per
transaction, so the history's writer holds the write lock for milliseconds at a time. Rows are
written in the order settlements were told (sorted by key within one flush), so a row outlives the
retention by at most a flush's span, or until the next pass when a younger row of its flush precedes it.

Each flush is sorted by key before it is inserted: the key index is updated in order, page after
page, instead of at random (measured: a third cheaper).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import chain
from operator import itemgetter
from typing import Any, Final

from sqlalchemy import ColumnElement, Connection, bindparam, delete, select, text, tuple_

from xtreaming.coordinator.outcomes import Outcome
from xtreaming.coordinator.schema import MESSAGE_HISTORY, UtcDateTime
from xtreaming.coordinator.store.database import Database
from xtreaming.errors import XtreamingError

#: Rows a SQLite retention delete removes per transaction: milliseconds of the write lock.
DELETE_CHUNK_ROWS: Final = 5_000
#: Rows per INSERT statement (12 parameters each: within SQLite's 32,766 and PostgreSQL's 65,535). One
#: statement of many rows rather than ``executemany``: Python's sqlite3 lets go of the GIL and takes it back
#: around every statement it steps, and doing so per row made the coordinator's own threads wait for it.
ROWS_PER_STATEMENT: Final = 500
#: The most attempts one page of a lookup returns.
MAX_PAGE_ROWS: Final = 1_000
_PARTITION_PREFIX: Final = f"{MESSAGE_HISTORY.name}_"
_KEY_COLUMN: Final = list(MESSAGE_HISTORY.columns).index(MESSAGE_HISTORY.c.key)
_KEY_OF_ROW: Final = itemgetter(_KEY_COLUMN)
#: How SQLAlchemy's SQLite ``DateTime`` stores a timestamp (``UtcDateTime`` stores UTC, without a zone).
_SQLITE_TIME: Final = "%Y-%m-%d %H:%M:%S.%f"
#: One bounded retention delete on SQLite: of the oldest rows (rowid order, which is the order they were told
#: in but within one flush), those settled before the cutoff. No index on ``at`` needed.
_SQLITE_CHUNK: Final = text(
    f"DELETE FROM {MESSAGE_HISTORY.name} WHERE rowid IN (SELECT rowid FROM "
    f"(SELECT rowid, at FROM {MESSAGE_HISTORY.name} ORDER BY rowid LIMIT :rows) WHERE at < :cutoff)"
).bindparams(bindparam("cutoff", type_=UtcDateTime))


class MessageHistoryNotFound(XtreamingError, LookupError):
    """No attempt of a message is in the history (never settled, or older than the retention)."""


@dataclass(frozen=True, slots=True)
class Attempt:
    """One settled attempt of a message, as the history keeps it."""

    at: datetime
    result: str
    topic: str
    partition: int
    offset: int
    key: bytes | None
    attempt: int
    farm: str
    slot: int
    task_id: str
    duration_s: float
    detail: str | None

    @property
    def position(self) -> Position:
        return Position(self.at, self.topic, self.partition, self.offset, self.attempt)


@dataclass(frozen=True, slots=True)
class Position:
    """Where an attempt sorts in a lookup (newest first): the page after it starts below it."""

    at: datetime
    topic: str
    partition: int
    offset: int
    attempt: int


_ORDER: Final = (
    MESSAGE_HISTORY.c.at,
    MESSAGE_HISTORY.c.topic,
    MESSAGE_HISTORY.c.partition,
    MESSAGE_HISTORY.c.offset,
    MESSAGE_HISTORY.c.attempt,
)


class HistoryTable:
    """The ``message_history`` table of one database (the state store's, or one of its own)."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._days: set[date] = set()  # partitions known to exist (PostgreSQL)

    def close(self) -> None:
        self._database.close()

    def create(self) -> None:
        """Create the table and its indexes where they are missing (a history database of its own; in the
        state store the migrations create it)."""
        with self._database.write() as conn:
            MESSAGE_HISTORY.create(conn, checkfirst=True)

    def write(self, batches: Sequence[tuple[datetime, Sequence[Outcome]]]) -> int:
        """Store each batch's outcomes as settled at its time, in one transaction; the rows written."""
        with self._database.write() as conn:
            dialect = conn.dialect.name
            if dialect == "postgresql":
                self._ensure_days(conn, {at.astimezone(UTC).date() for at, _ in batches})
            rows = [(at, *outcome) for at, outcomes in _driver_times(dialect, batches) for outcome in outcomes]
            _sort_by_key(rows)
            for start in range(0, len(rows), ROWS_PER_STATEMENT):
                chunk = rows[start : start + ROWS_PER_STATEMENT]
                conn.exec_driver_sql(
                    _insert_sql(conn.dialect.paramstyle, len(chunk)), tuple(chain.from_iterable(chunk))
                )
        return len(rows)

    def ensure_days(self, days: Iterable[date]) -> None:
        """Create the partitions of ``days`` ahead of their rows (PostgreSQL; nothing to do on SQLite)."""
        with self._database.write() as conn:
            if conn.dialect.name == "postgresql":
                self._ensure_days(conn, set(days))

    def remove_older_than(self, cutoff: datetime, chunk_rows: int = DELETE_CHUNK_ROWS) -> int:
        """Remove every attempt settled before ``cutoff`` and nothing else; the rows removed (PostgreSQL
        counts only the rows deleted, not those of the partitions dropped whole). On SQLite, ``chunk_rows``
        at a time, each chunk its own transaction."""
        with self._database.read() as conn:
            dialect = conn.dialect.name
        if dialect == "postgresql":
            return self._drop_days_before(cutoff)
        removed = 0
        while True:
            with self._database.write() as conn:
                count = conn.execute(_SQLITE_CHUNK, {"cutoff": cutoff, "rows": chunk_rows}).rowcount
            removed += count
            if count == 0:  # the oldest rows are all younger than the cutoff
                return removed

    def by_key(
        self,
        key: bytes,
        since: datetime,
        until: datetime,
        limit: int,
        topic: str | None = None,
        before: Position | None = None,
    ) -> list[Attempt]:
        """The attempts of messages with ``key`` settled in ``[since, until)``, newest first, at most ``limit``;
        only of ``topic`` when given; only those after ``before`` (the last of the previous page)."""
        where = [MESSAGE_HISTORY.c.key == key, MESSAGE_HISTORY.c.at >= since, MESSAGE_HISTORY.c.at < until]
        if topic is not None:
            where.append(MESSAGE_HISTORY.c.topic == topic)
        if before is not None:
            where.append(_before(before))
        query = select(MESSAGE_HISTORY).where(*where).order_by(*(c.desc() for c in _ORDER)).limit(_page(limit))
        with self._database.read() as conn:
            return [Attempt(*row) for row in conn.execute(query)]

    def by_message(self, topic: str, partition: int, offset: int) -> list[Attempt]:
        """Every attempt of one message kept, oldest first (at most ``MAX_PAGE_ROWS``).

        Raises MessageHistoryNotFound when there is none."""
        c = MESSAGE_HISTORY.c
        query = (
            select(MESSAGE_HISTORY)
            .where(c.topic == topic, c.partition == partition, c.offset == offset)
            .order_by(c.at, c.attempt)
            .limit(MAX_PAGE_ROWS)
        )
        with self._database.read() as conn:
            attempts = [Attempt(*row) for row in conn.execute(query)]
        if not attempts:
            raise MessageHistoryNotFound(
                f"message {topic}/{partition}/{offset} has no history: never settled, or settled before the retention"
            )
        return attempts

    def _ensure_days(self, conn: Connection, days: set[date]) -> None:
        for day in sorted(days - self._days):
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            conn.exec_driver_sql(
                f"CREATE TABLE IF NOT EXISTS {_partition_name(day)} PARTITION OF {MESSAGE_HISTORY.name} "
                f"FOR VALUES FROM ('{start.isoformat()}') TO ('{(start + timedelta(days=1)).isoformat()}')"
            )
        self._days |= days

    def _drop_days_before(self, cutoff: datetime) -> int:
        cutoff_day = cutoff.astimezone(UTC).date()  # the first day not wholly before the cutoff
        with self._database.write() as conn:
            names = conn.execute(
                text("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                     "WHERE i.inhparent = CAST(:table AS regclass)"),
                {"table": MESSAGE_HISTORY.name},
            ).scalars().all()  # fmt: skip
            for name in names:
                day = _day_of(name)
                if day is not None and day < cutoff_day:
                    conn.exec_driver_sql(f"DROP TABLE {name}")
                    self._days.discard(day)
            # The cutoff's own day keeps its partition: its rows older than the cutoff go one by one.
            return conn.execute(delete(MESSAGE_HISTORY).where(MESSAGE_HISTORY.c.at < cutoff)).rowcount


def _sort_by_key(rows: list[tuple[Any, ...]]) -> None:
    """Sort rows by key: at C speed (``itemgetter``) unless some key is None, which bytes do not compare with."""
    try:
        rows.sort(key=_KEY_OF_ROW)
    except TypeError:
        rows.sort(key=lambda row: row[_KEY_COLUMN] or b"")


def _before(position: Position) -> ColumnElement[bool]:
    values = (position.at, position.topic, position.partition, position.offset, position.attempt)
    return tuple_(*_ORDER) < tuple_(*values, types=[c.type for c in _ORDER])


def _page(limit: int) -> int:
    # One more than a page: the API asks for it to know whether another page follows.
    if not 1 <= limit <= MAX_PAGE_ROWS + 1:
        raise ValueError(f"history page of {limit} rows: expected 1 to {MAX_PAGE_ROWS + 1}")
    return limit


def _partition_name(day: date) -> str:
    return f"{_PARTITION_PREFIX}{day:%Y%m%d}"


def _day_of(name: str) -> date | None:
    """The day a partition holds, from its name; None for a table this module did not name."""
    digits = name.removeprefix(_PARTITION_PREFIX)
    if len(digits) != 8 or not digits.isdigit():
        return None
    return date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))


def _driver_times(
    dialect: str, batches: Sequence[tuple[datetime, Sequence[Outcome]]]
) -> Iterable[tuple[Any, Sequence[Outcome]]]:
    """Each batch with its time as the driver takes it: what ``UtcDateTime`` would bind, once per batch."""
    for at, outcomes in batches:
        utc = at.astimezone(UTC)
        yield (utc.replace(tzinfo=None).strftime(_SQLITE_TIME) if dialect == "sqlite" else utc), outcomes


@functools.lru_cache(maxsize=16)  # the full statement, and the last chunk's of recent flushes
def _insert_sql(paramstyle: str, rows: int) -> str:
    names = ", ".join(f'"{c.name}"' for c in MESSAGE_HISTORY.columns)
    marker = "?" if paramstyle == "qmark" else "%s"
    row = f"({', '.join([marker] * len(MESSAGE_HISTORY.columns))})"
    return f"INSERT INTO {MESSAGE_HISTORY.name} ({names}) VALUES {', '.join([row] * rows)}"
