"""Hours of figure history for a site-sized state, written straight into a coordinator's state store before it
starts: the history the screen's first render reads, shared by its benchmark (``bench/status.py``) and its browser
test (``test_large_site.py``)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from xtreaming.coordinator.records import minute_of
from xtreaming.coordinator.store import Store
from xtreaming.topics import TopicName

#: A base's worker limit in every point of its history.
BASE_LIMIT = 20
INSERT = (
    "INSERT INTO figure_points (scope, name, minute, done, failed, workers, worker_limit) VALUES (?, ?, ?, ?, ?, ?, ?)"
)


@dataclass(frozen=True, slots=True)
class FilledHistory:
    """What ``fill_history`` wrote: points (a queue's or base's minute each), over how many minutes, and the
    seconds it took."""

    points: int
    minutes: int
    took_s: float


def done_in(minute: int) -> int:
    """The messages every queue finished in ``minute`` (minutes since the epoch) of the filled history: 40 to 59,
    so that a sparkline of it rises and falls."""
    return 40 + minute % 20


def fill_history(state: Path, topics: Iterable[str], hours: int, now: datetime | None = None) -> FilledHistory:
    """``hours`` of figure history ending at ``now``'s minute in the SQLite state store at ``state`` (migrated first,
    as the coordinator would): a point per minute for every topic and for every base of them. Written with SQLite's
    own driver, the index on minutes built after, as a bulk load would; the coordinator's own write adds a minute at
    a time. Run before the coordinator starts: it reads the store as it finds it."""
    started = time.perf_counter()
    Store.open(f"sqlite:///{state}").close()
    last = minute_of(now or datetime.now(UTC))
    minutes = range(last - hours * 60 + 1, last + 1)
    queues = sorted(set(topics))
    bases = sorted({TopicName.parse(topic).base for topic in queues})
    names = [("base", name) for name in bases] + [("queue", name) for name in queues]
    with sqlite3.connect(state) as conn:
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("DROP INDEX ix_figure_points_minute")
        for scope, name in names:
            limit = BASE_LIMIT if scope == "base" else None
            rows = [(scope, name, minute, done_in(minute), minute % 3, 2, limit) for minute in minutes]
            conn.executemany(INSERT, rows)
        conn.execute("CREATE INDEX ix_figure_points_minute ON figure_points (minute, scope, name, done)")
    conn.close()
    return FilledHistory(points=len(names) * len(minutes), minutes=len(minutes), took_s=time.perf_counter() - started)
