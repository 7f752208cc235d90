"""Statements run on the database driver itself, inside a SQLAlchemy connection's transaction.

For the few statements on the hot path (a task stored as it is leased, deleted as it settles, a ledger
moved) and for reads of tens of thousands of rows, SQLAlchemy's per-statement and per-row work costs more
than the database's: an executemany of eight task rows spends about four times as long in compiling,
processing binds and events as SQLite spends inserting them. Here the statement is the driver's own text and
each row a tuple of values the driver takes as they are. The driver's errors are raised as SQLAlchemy's, which
the store (``database.py``) translates as any other: a duplicate key is still InvalidRecord, a full disk
StoreUnavailable.

Only SQLite and PostgreSQL run here (``supported``); the store's other statements stay portable.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from xtreaming.errors import InvalidRecord

#: The dialects whose drivers this module speaks to (qmark: sqlite3; format: psycopg).
_PARAMSTYLES: Final = {"sqlite": "?", "postgresql": "%s"}


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
    if not rows:
        return
    with cursor(conn, statement) as driver_cursor:
        if len(rows) == 1:  # the usual settlement's one ledger row; psycopg would set up a pipeline for many
            driver_cursor.execute(statement, rows[0])
        else:
            driver_cursor.executemany(statement, rows)


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
