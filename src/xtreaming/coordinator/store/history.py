"""The history's tables: settled attempts written in batches, looked up by key or message, trimmed by age.

The stored form is compact, because writing it is on every settled message's way. Settlement tells
outcomes task by task, and the messages of one task mostly end alike: a ``history_groups`` row holds
what a run of consecutive outcomes shares (time, result, topic, farm, slot, task, duration, detail),
and ``message_history`` only what differs per message (partition, offset, key, attempt) with its
group's id: five values a message instead of twelve, half the cost of a flush (measured).

A group's id says when it was settled, at the latest: the first id of its microsecond since the
epoch (times ``IDS_PER_MICROSECOND``), or the id after the previous group's when that is more (groups
of the same microsecond; a batch told late; a clock stepped back). Ids thus only grow, and a group
settled at or after a time has an id from that time's first on. A lookup's time range is answered by
the key index (key, group id) from the first id of its start, then the groups' own ``at``; retention
removes the ids before the cutoff's first, which are all of groups settled before it (one settled
out of order goes a pass later).

On an embedded log (SQLite) with a history file of its own, the log is attached to the history's
connections, and a group's messages of one partition that are one range of its offsets at one attempt, at
least ``LOG_RUN_FROM`` of them (a batch's, mostly), are written by one ``INSERT … SELECT`` that reads the
keys from the log's records: SQLite copies and sorts them without Python in between, so the coordinator's
interpreter lock is not held for them. The statement checks the keys at both ends of the range against the
outcomes' and must insert every message; otherwise (a topic made again, records gone) those messages are
written from their outcomes.

Writing plain tuples, the settlement time converted once per batch, instead of SQLAlchemy's per-row
processing (tested against the plain Core reading in ``tests/coordinator/history``): on SQLite in the
driver's own SQL, ``ROWS_PER_STATEMENT`` rows per statement; on PostgreSQL by ``COPY``. Each flush's
messages are sorted by key before they are inserted: the key index is updated in order, page after page,
instead of at random (measured: a third cheaper). Reading is plain Core.

PostgreSQL. Both tables are partitioned by the ids of each day (UTC), ``<table>_YYYYMMDD``, created
before rows of that day are written (``ensure_days``); retention drops every day that ended before the
cutoff, then deletes the older rows of the day it falls in.
SQLite. Plain tables; retention deletes the oldest message rows (by rowid) and groups (by id),
``DELETE_CHUNK_ROWS`` rows per transaction, so the history's writer holds the write lock for milliseconds
at a time. Rows are written in the order settlements were told (sorted by key within one flush), so a
message outlives the retention by at most a flush's span, or until the next pass.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import chain, compress, groupby
from operator import itemgetter
from pathlib import Path
from typing import Any, Final

from sqlalchemy import ColumnElement, Connection, Select, Table, TextClause, delete, func, select, text, tuple_
from sqlalchemy.exc import OperationalError

from xtreaming.broker import keys_in_range_query
from xtreaming.coordinator.outcomes import Outcome
from xtreaming.coordinator.schema import HISTORY_GROUPS, MESSAGE_HISTORY, METADATA
from xtreaming.coordinator.store.database import Database
from xtreaming.errors import StoreUnavailable, XtreamingError
from xtreaming.sql_chunks import values_sql

log = logging.getLogger("xtreaming.coordinator")

#: Rows a SQLite retention delete removes per transaction: milliseconds of the write lock.
DELETE_CHUNK_ROWS: Final = 5_000
#: Message rows per INSERT statement (5 parameters each: within SQLite's 32,766 and PostgreSQL's 65,535). One
#: statement of many rows rather than ``executemany``: Python's sqlite3 lets go of the GIL and takes it back
#: around every statement it steps, and doing so per row made the coordinator's own threads wait for it.
ROWS_PER_STATEMENT: Final = 1_000
#: Group rows per INSERT statement (9 parameters each).
GROUPS_PER_STATEMENT: Final = 500
#: A group of this many messages or more, one range of the log, is written from the log's own records (see the
#: module docstring); a smaller one costs less bound than as a statement of its own.
LOG_RUN_FROM: Final = 64
#: The schema name of the embedded log attached to the history's connections.
_LOG_SCHEMA: Final = "log"
_RUN_INSERT: Final = (
    f'INSERT INTO {MESSAGE_HISTORY.name} (group_id, partition, "offset", key, attempt) '
    f'SELECT :group_id, :partition, r."offset", r.key, :attempt FROM ({keys_in_range_query(_LOG_SCHEMA)}) AS r '
    "ORDER BY r.key"
)
_OFFSET_OF: Final = itemgetter(3)
_PARTITION_OF: Final = itemgetter(2)
_ATTEMPT_OF: Final = itemgetter(5)
#: The most attempts one page of a lookup returns.
MAX_PAGE_ROWS: Final = 1_000
#: Group ids a microsecond before they run into the next one's: within a signed 64-bit integer until the year 2255.
IDS_PER_MICROSECOND: Final = 1_024
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)
#: Both tables, in the order lookups lock them (``message_history`` joined to its groups): partitions are
#: created and dropped in this order too, or a lookup and the writer wait for each other (a deadlock).
_TABLES: Final = (MESSAGE_HISTORY, HISTORY_GROUPS)
#: What the outcomes of one group share, in ``history_groups``' column order after (id, at).
_GROUP_OF: Final = itemgetter(0, 1, 6, 7, 8, 9, 10)
#: A message row's key (group id, partition, offset, key, attempt).
_KEY_OF_ROW: Final = itemgetter(3)
#: How SQLAlchemy's SQLite ``DateTime`` stores a timestamp (``UtcDateTime`` stores UTC, without a zone).
_SQLITE_TIME: Final = "%Y-%m-%d %H:%M:%S.%f"
#: Bounded retention deletes on SQLite: of the oldest message rows (rowid order, which is the order they were
#: told in but within one flush), those of groups before the cutoff; then the groups themselves, by id.
_SQLITE_CHUNKS: Final = (
    text(
        f"DELETE FROM {MESSAGE_HISTORY.name} WHERE rowid IN (SELECT rowid FROM "
        f"(SELECT rowid, group_id FROM {MESSAGE_HISTORY.name} ORDER BY rowid LIMIT :rows) WHERE group_id < :cutoff)"
    ),
    text(
        f"DELETE FROM {HISTORY_GROUPS.name} WHERE id IN "
        f"(SELECT id FROM {HISTORY_GROUPS.name} WHERE id < :cutoff ORDER BY id LIMIT :rows)"
    ),
)
#: The index on (offset, partition) that earlier versions made: a history file of its own made then still has it.
_DROPPED_INDEX: Final = "ix_message_history_offset"
_M = MESSAGE_HISTORY.c
_G = HISTORY_GROUPS.c
#: An attempt as a lookup reads it: its group's columns and its own, in ``Attempt``'s order.
_ATTEMPT: Final = (
    *(_G.at, _G.result, _G.topic, _M.partition, _M.offset, _M.key, _M.attempt),
    *(_G.farm, _G.slot, _G.task_id, _G.duration_s, _G.detail),
)
_JOINED: Final = MESSAGE_HISTORY.join(HISTORY_GROUPS, _G.id == _M.group_id)


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


_ORDER: Final = (_G.at, _G.topic, _M.partition, _M.offset, _M.attempt)


def first_id_at(at: datetime) -> int:
    """The first group id of the microsecond ``at``: groups settled at or after ``at`` have ids from here on."""
    return (at - _EPOCH) // _MICROSECOND * IDS_PER_MICROSECOND


def day_of_id(group_id: int) -> date:
    """The day (UTC) whose ids ``group_id`` is among: its PostgreSQL partitions."""
    return (_EPOCH + group_id // IDS_PER_MICROSECOND * _MICROSECOND).date()


class HistoryTable:
    """The history's tables in one database (the state store's, or one of their own)."""

    def __init__(self, database: Database, log: Path | None = None) -> None:
        """``log``: the embedded log's file, attached to the connections of a SQLite history (module docstring)."""
        self._database = database
        self._days: set[date] = set()  # partitions known to exist (PostgreSQL)
        self._last_id: int | None = None  # the newest group id written (read from the table once)
        self._log_attached = False
        self._log_unreadable = False  # said once
        if log is not None and database.dialect == "sqlite":
            database.attach_on_connect(_LOG_SCHEMA, log)
            self._log_attached = True

    def close(self) -> None:
        self._database.close()

    def create(self) -> None:
        """Create the tables and their indexes where they are missing (a history database of its own; in the
        state store the migrations create them)."""
        with self._database.write() as conn:
            METADATA.create_all(conn, tables=list(_TABLES), checkfirst=True)
            conn.exec_driver_sql(f"DROP INDEX IF EXISTS {_DROPPED_INDEX}")  # a file made by an earlier version

    def write(self, batches: Sequence[tuple[datetime, Sequence[Outcome]]]) -> int:
        """Store each batch's outcomes as settled at its time, in one transaction; the messages written."""
        with self._database.write() as conn:
            dialect = conn.dialect.name
            if self._last_id is None:
                self._last_id = conn.execute(select(func.max(_G.id))).scalar() or 0
            groups, messages, runs = self._rows(dialect, batches)
            if dialect == "postgresql" and groups:  # ids grow: the days from the first's to the last's
                first, last = day_of_id(groups[0][0]), day_of_id(groups[-1][0])
                self._ensure_days(conn, {first + timedelta(days=n) for n in range((last - first).days + 1)})
            _insert(conn, HISTORY_GROUPS, groups, GROUPS_PER_STATEMENT)
            written = 0
            for run, members in runs:
                if self._insert_run(conn, run) == len(members):
                    written += len(members)
                else:  # not the records the outcomes were read from: these messages from their outcomes
                    ran = (_M.group_id == run["group_id"]) & (_M.partition == run["partition"])
                    conn.execute(delete(MESSAGE_HISTORY).where(ran))
                    messages += _message_rows(run["group_id"], members)
            _sort_by_key(messages)
            _insert(conn, MESSAGE_HISTORY, messages, ROWS_PER_STATEMENT)
        return written + len(messages)

    def _rows(
        self, dialect: str, batches: Sequence[tuple[datetime, Sequence[Outcome]]]
    ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[dict[str, Any], list[Outcome]]]]:
        """The group rows and message rows of ``batches``, with new group ids, and the groups written from the log
        instead: each with its ``_RUN_INSERT`` parameters and its outcomes."""
        last_id = self._last_id or 0
        groups: list[tuple[Any, ...]] = []
        messages: list[tuple[Any, ...]] = []
        runs: list[tuple[dict[str, Any], list[Outcome]]] = []
        for at, outcomes in batches:
            first_id, stored_at = first_id_at(at), _driver_time(dialect, at)
            for shared, grouped in groupby(outcomes, _GROUP_OF):
                last_id = max(last_id + 1, first_id)
                groups.append((last_id, stored_at, *shared))
                members = list(grouped)
                if self._log_attached and len(members) >= LOG_RUN_FROM:
                    members = _take_runs(last_id, members, runs)
                messages += _message_rows(last_id, members)
        self._last_id = last_id  # ids of a transaction that fails are not reused: harmless gaps
        return groups, messages, runs

    def _insert_run(self, conn: Connection, run: dict[str, Any]) -> int:
        """Write a group from the log's records; the messages written, or -1 when the log could not be read (a
        file that is not the log, or is no more; said once): SQLite undoes just the failed statement."""
        try:
            return conn.exec_driver_sql(_RUN_INSERT, run).rowcount
        except OperationalError as exc:
            if not self._log_unreadable:
                self._log_unreadable = True
                log.warning("history: batches' keys cannot be read from the log, written from outcomes: %s", exc.orig)
            return -1

    def ensure_days(self, days: Iterable[date]) -> None:
        """Create the partitions of ``days`` ahead of their rows (PostgreSQL; nothing to do on SQLite)."""
        with self._database.write() as conn:
            if conn.dialect.name == "postgresql":
                self._ensure_days(conn, set(days))

    def remove_older_than(self, cutoff: datetime, chunk_rows: int = DELETE_CHUNK_ROWS) -> int:
        """Remove every attempt settled before ``cutoff`` and nothing else (one told after younger ones goes
        once the cutoff passes the time its group's id says); the attempts removed (PostgreSQL counts only the
        rows deleted, not those of the partitions dropped whole). On SQLite, ``chunk_rows`` at a time, each
        chunk its own transaction."""
        with self._database.read() as conn:
            dialect = conn.dialect.name
        if dialect == "postgresql":
            return self._drop_days_before(cutoff)
        values = {"cutoff": first_id_at(cutoff), "rows": chunk_rows}
        messages, groups = _SQLITE_CHUNKS
        removed = self._delete_in_chunks(messages, values)  # messages first: none outlives its group
        self._delete_in_chunks(groups, values)
        return removed

    def _delete_in_chunks(self, chunk: TextClause, values: dict[str, int]) -> int:
        removed = 0
        while True:
            with self._database.write() as conn:
                count = conn.execute(chunk, values).rowcount
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
        where = [_M.key == key, _M.group_id >= first_id_at(since), _G.at >= since, _G.at < until]
        if topic is not None:
            where.append(_G.topic == topic)
        if before is not None:
            where.append(_before(before))
        query = _select().where(*where).order_by(*(c.desc() for c in _ORDER)).limit(_page(limit))
        with self._database.read() as conn:
            return [Attempt(*row) for row in conn.execute(query)]

    def by_message(self, topic: str, partition: int, offset: int, key: bytes | None) -> list[Attempt]:
        """Every attempt of one message kept, oldest first (at most ``MAX_PAGE_ROWS``), found by its ``key`` (the
        log's: the only index is the key's; a message without a key is found among all of those).

        Raises MessageHistoryNotFound when there is none."""
        query = (
            _select()
            .where(_M.key.is_(None) if key is None else _M.key == key)
            .where(_M.offset == offset, _M.partition == partition, _G.topic == topic)
            .order_by(_G.at, _M.attempt)
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
            first, end = first_id_at(start), first_id_at(start + timedelta(days=1))
            for table in _TABLES:
                conn.exec_driver_sql(
                    f"CREATE TABLE IF NOT EXISTS {_partition_name(table, day)} PARTITION OF {table.name} "
                    f"FOR VALUES FROM ({first}) TO ({end})"
                )
        self._days |= days

    def _drop_days_before(self, cutoff: datetime) -> int:
        cutoff_day = cutoff.astimezone(UTC).date()  # the first day not wholly before the cutoff
        with self._database.write() as conn:
            for table in _TABLES:
                names = conn.execute(
                    text("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                         "WHERE i.inhparent = CAST(:table AS regclass)"),
                    {"table": table.name},
                ).scalars().all()  # fmt: skip
                for name in names:
                    day = _day_of(table, name)
                    if day is not None and day < cutoff_day:
                        conn.exec_driver_sql(f"DROP TABLE {name}")
                        self._days.discard(day)
            # The cutoff's own day keeps its partitions: its rows older than the cutoff go one by one.
            first = first_id_at(cutoff)
            removed = conn.execute(delete(MESSAGE_HISTORY).where(_M.group_id < first)).rowcount
            conn.execute(delete(HISTORY_GROUPS).where(_G.id < first))
            return removed


def _message_rows(group_id: int, members: Iterable[Outcome]) -> list[tuple[Any, ...]]:
    return [(group_id, o[2], o[3], o[4], o[5]) for o in members]


def _take_runs(
    group_id: int, members: list[Outcome], runs: list[tuple[dict[str, Any], list[Outcome]]]
) -> list[Outcome]:
    """Add to ``runs`` each partition's messages of a group that are one range of its offsets at one attempt, of
    ``LOG_RUN_FROM`` messages or more; the group's other messages. Split and looked at with C-level passes only
    (``map``, ``compress``, ``min``, ``set``): no Python per message."""
    partitions = list(map(_PARTITION_OF, members))
    distinct = set(partitions)
    rest: list[Outcome] = []
    for partition in distinct:
        part = members if len(distinct) == 1 else list(compress(members, map(partition.__eq__, partitions)))
        run = _run_of(group_id, part) if len(part) >= LOG_RUN_FROM else None
        if run is None:
            rest += part
        else:
            runs.append((run, part))
    return rest


def _run_of(group_id: int, members: list[Outcome]) -> dict[str, Any] | None:
    """``_RUN_INSERT``'s parameters for one partition's messages of a group when they are one range of its offsets
    at one attempt, else None."""
    offsets = list(map(_OFFSET_OF, members))
    first, last = min(offsets), max(offsets)
    attempts = set(map(_ATTEMPT_OF, members))
    if last - first + 1 != len(members) or len(attempts) != 1:  # offsets are distinct: so the range is whole
        return None
    return {
        "group_id": group_id,
        "topic": members[0][1],
        "partition": members[0][2],
        "attempt": attempts.pop(),
        "first": first,
        "last": last,
        "first_key": members[offsets.index(first)][4],
        "last_key": members[offsets.index(last)][4],
    }


def _sort_by_key(rows: list[tuple[Any, ...]]) -> None:
    """Sort rows by key: at C speed (``itemgetter``) unless some key is None, which bytes do not compare with."""
    try:
        rows.sort(key=_KEY_OF_ROW)
    except TypeError:
        rows.sort(key=lambda row: row[3] or b"")


def _select() -> Select[Any]:
    return select(*_ATTEMPT).select_from(_JOINED)


def _insert(conn: Connection, table: Table, rows: list[tuple[Any, ...]], per_statement: int) -> None:
    if conn.dialect.name == "postgresql":
        _copy(conn, table, rows)
        return
    for start in range(0, len(rows), per_statement):
        chunk = rows[start : start + per_statement]
        conn.exec_driver_sql(_insert_sql(table.name, len(chunk)), tuple(chain.from_iterable(chunk)))


def _copy(conn: Connection, table: Table, rows: list[tuple[Any, ...]]) -> None:
    """PostgreSQL: ``rows`` by ``COPY``, in ``conn``'s transaction. An INSERT of many rows would cost 15 times the
    CPU (measured): psycopg parses a statement of more than 50 parameters again on every execution, in Python.
    Raises StoreUnavailable (the transaction is then rolled back whole)."""
    import psycopg  # the PostgreSQL driver: present wherever a PostgreSQL history is

    columns = ", ".join(f'"{c.name}"' for c in table.columns)
    try:
        with (
            conn.connection.driver_connection.cursor() as cursor,  # type: ignore[union-attr]
            cursor.copy(f"COPY {table.name} ({columns}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)
    except psycopg.Error as exc:
        raise StoreUnavailable(f"history: writing {table.name} failed: {exc}") from exc


def _before(position: Position) -> ColumnElement[bool]:
    values = (position.at, position.topic, position.partition, position.offset, position.attempt)
    return tuple_(*_ORDER) < tuple_(*values, types=[c.type for c in _ORDER])


def _page(limit: int) -> int:
    # One more than a page: the API asks for it to know whether another page follows.
    if not 1 <= limit <= MAX_PAGE_ROWS + 1:
        raise ValueError(f"history page of {limit} rows: expected 1 to {MAX_PAGE_ROWS + 1}")
    return limit


def _partition_name(table: Table, day: date) -> str:
    return f"{table.name}_{day:%Y%m%d}"


def _day_of(table: Table, name: str) -> date | None:
    """The day a partition holds, from its name; None for a table this module did not name."""
    digits = name.removeprefix(f"{table.name}_")
    if len(digits) != 8 or not digits.isdigit():
        return None
    return date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))


def _driver_time(dialect: str, at: datetime) -> Any:
    """``at`` as the driver takes it: what ``UtcDateTime`` would bind, once per batch."""
    utc = at.astimezone(UTC)
    return utc.replace(tzinfo=None).strftime(_SQLITE_TIME) if dialect == "sqlite" else utc


@functools.lru_cache(maxsize=16)  # the full statements, and the last chunks' of recent flushes
def _insert_sql(name: str, rows: int) -> str:
    """SQLite's INSERT of ``rows`` rows."""
    columns = HISTORY_GROUPS.columns if name == HISTORY_GROUPS.name else MESSAGE_HISTORY.columns
    names = ", ".join(f'"{c.name}"' for c in columns)
    return values_sql(f"INSERT INTO {name} ({names})", len(columns), rows)
