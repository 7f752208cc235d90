"""Statements run on the database driver itself, inside a SQLAlchemy connection's transaction.

For the few statements on the hot path (a task stored as it is leased, deleted as it settles, a ledger
moved, a farm's heartbeat) and for reads of tens of thousands of rows, SQLAlchemy's per-statement and per-row
work costs more than the database's: an executemany of eight task rows spends about four times as long in
compiling, processing binds and events as SQLite spends inserting them. Here the statement is the driver's own
text and each row a tuple of values the driver takes as they are. The driver's errors are raised as
SQLAlchemy's, which the store (``database.py``) translates as any other: a duplicate key is still InvalidRecord,
a full disk StoreUnavailable.

Only SQLite and PostgreSQL run here (``supported``); the store's other statements stay portable.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from xtreaming.errors import InvalidRecord
from xtreaming.sql_chunks import chunks, values_sql

#: The dialects whose drivers this module speaks to (qmark: sqlite3; format: psycopg).
_PARAMSTYLES: Final = {"sqlite": "?", "postgresql": "%s"}
#: Rows of the largest many-row statement on SQLite (``sql_chunks``). Not on PostgreSQL, whose driver parses a
#: statement of more than 50 parameters again in Python at every execution: there each row is a step.
SQLITE_ROWS_PER_STATEMENT: Final = 64


def supported(conn: Connection) -> bool:
    """Whether ``conn``'s database runs driver statements (else the caller keeps to SQLAlchemy)."""
    return conn.dialect.name in _PARAMSTYLES


def placeholders(conn: Connection, count: int) -> str:
    """``count`` parameter markers in the driver's style, comma-separated."""
    return ", ".join([_PARAMSTYLES[conn.dialect.name]] * count)


@contextmanager
def cursor(conn: Connection, statement: str) -> Iterator[Any]:
    """A driver cursor on ``conn``'s connection, in its transaction, closed after the block; the driver's
    errors raised as SQLAlchemy's (``statement`` named in them)."""
    dbapi = conn.dialect.loaded_dbapi
    driver_cursor = conn.connection.cursor()
    try:
        yield driver_cursor
    except dbapi.Error as exc:
        raise DBAPIError.instance(statement, None, exc, dbapi.Error, dialect=conn.dialect) from exc
    finally:
        driver_cursor.close()


def execute_many(conn: Connection, statement: str, rows: Sequence[tuple[Any, ...]]) -> None:
    """Run ``statement`` (the driver's text, its markers from ``placeholders``) once per row."""
    if len(rows) == 1:  # the usual settlement's one ledger row; psycopg would set up a pipeline for many
        execute(conn, statement, rows[0])
    elif rows:
        with cursor(conn, statement) as driver_cursor:
            driver_cursor.executemany(statement, rows)


def execute(conn: Connection, statement: str, row: tuple[Any, ...]) -> int:
    """Run ``statement`` (the driver's text, its markers from ``placeholders``) with ``row``; the rows it changed."""
    with cursor(conn, statement) as driver_cursor:
        driver_cursor.execute(statement, row)
        return int(driver_cursor.rowcount)


def insert_rows(conn: Connection, head: str, rows: Sequence[tuple[Any, ...]]) -> None:
    """``head`` (``INSERT INTO t (a, b)``) for each of ``rows`` (tuples as wide as its columns): on SQLite many to
    a statement (``sql_chunks``)."""
    if not rows:
        return
    width = len(rows[0])
    if conn.dialect.name != "sqlite":
        execute_many(conn, f"{head} VALUES ({placeholders(conn, width)})", rows)
        return
    _by_chunks(conn, rows, lambda count: _values_sql(head, width, count))


def delete_in(conn: Connection, head: str, ids: Sequence[Any]) -> None:
    """``head`` (``DELETE FROM t WHERE id``) for each of ``ids``: on SQLite many to a statement (``IN``)."""
    rows = [(i,) for i in ids]
    if conn.dialect.name != "sqlite":
        execute_many(conn, f"{head} = {placeholders(conn, 1)}", rows)
        return
    _by_chunks(conn, rows, lambda count: _in_sql(head, count))


def _by_chunks(conn: Connection, rows: Sequence[tuple[Any, ...]], sql: Callable[[int], str]) -> None:
    for count, values in chunks(rows, SQLITE_ROWS_PER_STATEMENT):
        statement = sql(count)
        with cursor(conn, statement) as driver_cursor:
            driver_cursor.execute(statement, values)


@functools.lru_cache(maxsize=64)
def _values_sql(head: str, width: int, rows: int) -> str:
    return values_sql(head, width, rows)


@functools.lru_cache(maxsize=64)
def _in_sql(head: str, count: int) -> str:
    return f"{head} IN ({', '.join(['?'] * count)})"


def fetch_all(conn: Connection, statement: str) -> list[Any]:
    """The rows of ``statement`` (its values written into it) as the driver's own tuples."""
    with cursor(conn, statement) as driver_cursor:
        driver_cursor.execute(statement)
        return list(driver_cursor.fetchall())


def timestamp(conn: Connection, value: datetime) -> Any:
    """``value`` as a ``UtcDateTime`` column (``schema.py``) stores it: on SQLite the UTC wall clock as SQLAlchemy
    writes it (microseconds always shown, so that stored values sort as text); elsewhere the aware value. Raises
    InvalidRecord for a naive one, as the column does."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidRecord(
            f"state store refused a value: datetime {value.isoformat()} is naive; it takes timezone-aware ones"
        )
    if conn.dialect.name != "sqlite":
        return value
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
