"""Row statements the store's tables share: the one matching row or an error, upserts on any database, new keys."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, CursorResult, Row, Table, and_, exists, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert


def one(conn: Connection, table: Table, where: Any, error: Callable[[str], LookupError], what: str) -> Row[Any]:
    """The row of ``table`` matching ``where``; raises ``error("<what> does not exist")`` when there is none."""
    row = conn.execute(select(table).where(where)).first()
    if row is None:
        raise error(f"{what} does not exist")
    return row


def lock_for_writes(conn: Connection, table: Table) -> None:
    """Make concurrent writers of ``table`` wait for this transaction (SQLite's ``BEGIN IMMEDIATE`` already does)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text(f"LOCK TABLE {table.name} IN SHARE ROW EXCLUSIVE MODE"))


@functools.cache
def _upsert_statement(dialect: str, table: Table, keys: tuple[str, ...], replace: bool) -> Any:
    build = sqlite_insert if dialect == "sqlite" else postgresql_insert
    statement = build(table)
    if not replace:
        return statement.on_conflict_do_nothing(index_elements=list(keys))
    updates = {c.name: statement.excluded[c.name] for c in table.columns if c.name not in keys}
    return statement.on_conflict_do_update(index_elements=list(keys), set_=updates)


def upsert(
    conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]], *, keys: tuple[str, ...], replace: bool = True
) -> None:
    """Insert ``rows``; where a row with the same ``keys`` exists, replace its other columns (or keep it)."""
    if not rows:
        return
    dialect = conn.dialect.name
    if dialect in ("sqlite", "postgresql"):
        conn.execute(_upsert_statement(dialect, table, keys, replace), list(rows))
        return
    for row in rows:  # any other database: portable, one row at a time
        where = and_(*(table.c[k] == row[k] for k in keys))
        if conn.execute(select(exists().where(where))).scalar_one():
            if replace:
                conn.execute(update(table).where(where).values({k: v for k, v in row.items() if k not in keys}))
        else:
            conn.execute(insert(table).values(row))


def new_id(result: CursorResult[Any]) -> int:
    """The integer key the database gave the row just inserted."""
    key = result.inserted_primary_key
    if key is None:  # only for an insert of several rows, which callers of this never do
        raise RuntimeError("the database returned no key for the inserted row")
    return int(key[0])
