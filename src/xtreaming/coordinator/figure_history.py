"""The figure history: each queue's and base's figures per minute, kept in the store for the screen's charts.

Once a minute the coordinator's background pass takes, under its lock, the minute just ended from every
queue's activity (``activity.py``: messages done, attempts failed, the most workers seen) and writes it
without the lock: one point per queue and per base that finished or failed something or ran a worker that
minute, none for idle ones. A base's point sums its queues' and carries the limit in force at the minute's
start. As the coordinator stops, the minute under way is written too; a coordinator started again within
that minute adds its own counts to the same point (``Store.add_figure_points``).

Retention: points older than ``retention`` are deleted a bounded number at a time, in short transactions
of their own after each minute's write, so trimming a long backlog never holds the store for long. A write
that fails (the store away) is kept and tried again next minute, up to ``MAX_UNWRITTEN`` points.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Final

from xtreaming.coordinator.core.snapshot import Snapshot
from xtreaming.coordinator.core.windows import limit_in_force
from xtreaming.coordinator.records import FigurePoint, minute_of, minute_start
from xtreaming.coordinator.runtime import QueueRuntime
from xtreaming.coordinator.store import Store
from xtreaming.errors import StoreUnavailable

log = logging.getLogger("xtreaming.coordinator")

QUEUE: Final = "queue"
BASE: Final = "base"
#: Points deleted per retention transaction, and transactions per minute at most (a backlog goes over minutes).
TRIM_BATCH: Final = 5_000
TRIM_BATCHES: Final = 20
#: Points kept in memory while the store cannot take them (about 10 minutes of a 2,000-queue site).
MAX_UNWRITTEN: Final = 50_000


@dataclass(slots=True)
class _BasePoint:
    done: int = 0
    failed: int = 0
    workers: int = 0


class FigureHistory:
    """Takes each minute's points from the queues and writes them (see the module docstring). ``take`` runs under
    the coordinator's lock, ``write`` without it, both on the background loop's thread."""

    def __init__(self, store: Store, retention: timedelta, now: datetime) -> None:
        self.store = store
        self.retention = retention
        #: The first minute not taken yet: the one the coordinator started in.
        self.next_minute = minute_of(now)
        self._unwritten: list[FigurePoint] = []

    def due(self, now: datetime) -> bool:
        """Whether a minute ended since the last take."""
        return minute_of(now) > self.next_minute

    def take(
        self, queues: Iterable[QueueRuntime], snapshot: Snapshot, now: datetime, *, partial: bool
    ) -> list[FigurePoint]:
        """The points to write: those a failed write left, and those of the minutes ended since the last take (and
        of the minute under way with ``partial``). Until written, ``unwritten`` no longer shows them."""
        last = minute_of(now) + (1 if partial else 0)
        minutes = range(self.next_minute, last)
        points, self._unwritten = [*self._unwritten, *points_of(queues, snapshot, minutes)], []
        self.next_minute = max(self.next_minute, last)
        return points

    def unwritten(self, queues: Iterable[QueueRuntime], snapshot: Snapshot, now: datetime) -> list[FigurePoint]:
        """The points of ``queues`` and their bases not in the store yet: those a failed write left, and the minutes
        since the last take (the current one included), as they stand now."""
        return [*self._unwritten, *points_of(queues, snapshot, range(self.next_minute, minute_of(now) + 1))]

    def write(self, points: list[FigurePoint], now: datetime) -> list[FigurePoint]:
        """Write ``points``, then trim what is past the retention; returns the points to take again (all of them when
        the store is away) for ``keep``."""
        try:
            self.store.add_figure_points(points)
        except StoreUnavailable as exc:
            log.warning("figure history: %d point(s) not written, tried again next minute: %s", len(points), exc)
            return points
        self._trim(now)
        return []

    def keep(self, points: list[FigurePoint]) -> None:
        """Take ``points`` again at the next minute (a write failed), the oldest dropped past ``MAX_UNWRITTEN``."""
        self._unwritten = [*points, *self._unwritten]
        if len(self._unwritten) > MAX_UNWRITTEN:
            dropped = len(self._unwritten) - MAX_UNWRITTEN
            del self._unwritten[:dropped]
            log.warning("figure history: the store is away; its %d oldest unwritten points dropped", dropped)

    def _trim(self, now: datetime) -> None:
        before = now - self.retention
        try:
            for _ in range(TRIM_BATCHES):
                if self.store.trim_figures(before, TRIM_BATCH) < TRIM_BATCH:
                    return
        except StoreUnavailable as exc:
            log.warning("figure history: old points not deleted, tried again next minute: %s", exc)


def points_of(queues: Iterable[QueueRuntime], snapshot: Snapshot, minutes: range) -> list[FigurePoint]:
    """Each queue's and base's point for each of ``minutes`` in which it did something or ran a worker."""
    points: list[FigurePoint] = []
    bases: dict[tuple[str, int], _BasePoint] = {}
    if not minutes:
        return points
    queues = list(queues)
    for minute in minutes:
        at = minute_start(minute)
        for queue in queues:
            bucket = queue.activity.minute(minute)
            ok, failed = (bucket.ok, bucket.failed) if bucket else (0, 0)
            # Running now: a task runs through the minutes it spans, though leased before them.
            workers = max(bucket.workers if bucket else 0, len(queue.running))
            if not (ok or failed or workers):
                continue
            points.append(FigurePoint(QUEUE, queue.topic, at, ok, failed, workers, queue.record.settings.max_workers))
            base = bases.setdefault((queue.record.base, minute), _BasePoint())
            base.done += ok
            base.failed += failed
            base.workers += workers
    for (name, minute), figures in bases.items():
        state = snapshot.bases.get(name)
        at = minute_start(minute)
        limit = None
        if state is not None:
            limit = limit_in_force(state.max_workers, state.windows, at, snapshot.time_zone).max_workers
        points.append(FigurePoint(BASE, name, at, figures.done, figures.failed, figures.workers, limit))
    return points


def summed(points: Iterable[FigurePoint]) -> list[FigurePoint]:
    """``points`` of one queue or base by minute, oldest first, those of the same minute added (a minute stored by a
    coordinator that stopped within it, and the rest of it not written yet)."""
    by_minute: dict[datetime, FigurePoint] = {}
    for p in points:
        seen = by_minute.get(p.at)
        by_minute[p.at] = p if seen is None else replace(p, done=seen.done + p.done, failed=seen.failed + p.failed)
    return [by_minute[at] for at in sorted(by_minute)]
