"""The figure history in the store: one row per queue or base and minute (``coordinator/figure_history.py``)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Connection, Select, delete, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from xtreaming.coordinator.records import FigurePoint, minute_of, minute_start
from xtreaming.coordinator.schema import FIGURE_POINTS
from xtreaming.coordinator.store import driver
from xtreaming.coordinator.store.database import Database

_KEYS: Final = ("scope", "name", "minute")


class FigureTable:
    """The ``figure_points`` table; ``Store`` documents each method."""

    def __init__(self, database: Database) -> None:
        self._database = database

    def add_points(self, points: Sequence[FigurePoint]) -> None:
        if not points:
            return
        rows = [
            {
                "scope": p.scope, "name": p.name, "minute": minute_of(p.at), "done": p.done, "failed": p.failed,
                "workers": p.workers, "worker_limit": p.limit,
            }
            for p in points
        ]  # fmt: skip
        with self._database.write() as conn:
            conn.execute(_adding(conn.dialect.name), rows)

    def points(self, scope: str, name: str, since: datetime) -> list[FigurePoint]:
        t = FIGURE_POINTS.c
        query = (
            select(t.minute, t.done, t.failed, t.workers, t.worker_limit)
            .where(t.scope == scope, t.name == name, t.minute >= minute_of(since))
            .order_by(t.minute)
        )
        with self._database.read() as conn:
            rows = conn.execute(query).all()
        return [FigurePoint(scope, name, minute_start(m), d, f, w, lim) for m, d, f, w, lim in rows]

    def done_since(self, since: datetime) -> list[tuple[str, str, int, int]]:
        t = FIGURE_POINTS.c
        query = select(t.scope, t.name, t.minute, t.done).where(t.minute >= minute_of(since))
        with self._database.read() as conn:
            return _driver_rows(conn, query)

    def trim(self, before: datetime, limit: int) -> int:
        t = FIGURE_POINTS.c
        cut = minute_of(before)
        oldest = select(t.minute).where(t.minute < cut).order_by(t.minute).limit(1).offset(limit - 1)
        with self._database.write() as conn:
            # The ``limit``-th oldest point's minute bounds this transaction's deletes (whole minutes, by the index).
            bound = conn.execute(oldest).scalar_one_or_none()
            if bound is not None:
                cut = min(cut, bound)
            deleted = conn.execute(delete(FIGURE_POINTS).where(t.minute < cut)).rowcount
            if bound is not None and deleted == 0:  # one minute holds more than ``limit`` points: that minute
                deleted = conn.execute(delete(FIGURE_POINTS).where(t.minute <= bound)).rowcount
            return int(deleted)


def _driver_rows(conn: Connection, query: Select[Any]) -> list[Any]:
    """``query``'s rows as the driver's own tuples. Every sparkline of a site is tens of thousands of rows, and
    SQLAlchemy's rows cost about as much again as the driver's (bench/status.py: 2,000 queues, 30 minutes). The
    query's bound values are integers of ours, written into the statement."""
    return driver.fetch_all(conn, str(query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})))


@functools.cache
def _adding(dialect: str) -> Any:
    """An insert that, where the point exists (a coordinator restarted within the minute), adds to it."""
    build = sqlite_insert if dialect == "sqlite" else postgresql_insert
    statement = build(FIGURE_POINTS)
    added = statement.excluded
    t = FIGURE_POINTS.c
    return statement.on_conflict_do_update(
        index_elements=list(_KEYS),
        set_={
            "done": t.done + added.done,
            "failed": t.failed + added.failed,
            "workers": added.workers,
            "worker_limit": added.worker_limit,
        },
    )
