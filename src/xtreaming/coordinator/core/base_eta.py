"""When a base is expected to finish its pending work ("MULTCOB03 termina às 14:20").

A pure function of each queue's pending messages and speed per worker, and of the base's limit schedule
(its default ``max_workers`` and time windows, read in the site's zone): time is walked forward from
``now`` segment by segment, a segment ending when a queue finishes or a window may open or close. In each
segment the workers the limit allows go as the scheduler gives them: strictly by priority, shared evenly
among queues of equal priority, none beyond a queue's own ``max_workers`` nor beyond one per batch it has
left, so queues waiting behind higher priorities start once those finish. A limit of 0 (a window closing
the base for some hours) moves no work until the limit rises again.

It is an estimate: a queue's speed per worker is what its recent tasks showed (a queue none of whose tasks
settled lately goes at the mean speed of the base's others), the farms' slots are a cap on workers shared
with other bases, and fair shares are taken as fractions of a worker.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Final

from xtreaming.coordinator.core.windows import Window, limit_in_force

#: Past this, a base is not expected to finish (a limit of 0 for good, speeds near 0): no ETA.
HORIZON: Final = timedelta(days=14)
#: Work left below this many messages counts as done (fractions of a message from fractional workers).
_DONE: Final = 1e-6


@dataclass(frozen=True, slots=True)
class QueueWork:
    """A queue's part in its base's ETA: pending messages, messages one worker finishes per second (None:
    not known lately), and what caps its workers."""

    topic: str
    priority: int
    pending: int
    worker_speed: float | None
    max_workers: int | None = None
    batch_size: int | None = None


def base_eta(
    queues: Iterable[QueueWork],
    max_workers: int,
    windows: Sequence[Window],
    time_zone: tzinfo,
    now: datetime,
    *,
    slots: int | None = None,
) -> datetime | None:
    """When the base's ``queues`` are expected to have no pending message (see the module docstring); None when
    nothing is pending, no speed is known, or not within ``HORIZON``. ``slots``: the most workers the farms
    can give it at once (None: no cap but the base's limit)."""
    work = [q for q in queues if q.pending > 0]
    if not work:
        return None
    known = [q.worker_speed for q in work if q.worker_speed is not None and q.worker_speed > 0]
    if not known:
        return None
    mean = sum(known) / len(known)
    speeds = [q.worker_speed if q.worker_speed is not None and q.worker_speed > 0 else mean for q in work]
    left = [float(q.pending) for q in work]
    boundaries = _boundaries(windows)
    end = now + HORIZON
    at = now
    while at < end:
        capacity = limit_in_force(max_workers, windows, at, time_zone).max_workers
        if slots is not None:
            capacity = min(capacity, slots)
        change = _next_boundary(at, boundaries, time_zone)
        segment_end = min(change or end, end)
        workers = _share(work, left, capacity)
        rates = [w * s for w, s in zip(workers, speeds, strict=True)]
        finishing = [left[i] / r for i, r in enumerate(rates) if r > 0 and left[i] > _DONE]
        step_s = min([*finishing, (segment_end - at).total_seconds()])
        for i, rate in enumerate(rates):
            left[i] = max(0.0, left[i] - rate * step_s)
        at += timedelta(seconds=step_s)
        if finishing and step_s == min(finishing):
            left = [0.0 if x <= _DONE else x for x in left]
        if all(x <= _DONE for x in left):
            return at
    return None


def _share(work: Sequence[QueueWork], left: Sequence[float], capacity: float) -> list[float]:
    """Workers per queue: by priority, highest first, shared evenly among equals (water-filling), each capped."""
    workers = [0.0] * len(work)
    remaining = float(capacity)
    for priority in sorted({q.priority for q in work}, reverse=True):
        if remaining <= 0:
            break
        group = [i for i, q in enumerate(work) if q.priority == priority and left[i] > _DONE]
        caps = {i: _cap(work[i], left[i]) for i in group}
        while group and remaining > 1e-9:
            share = remaining / len(group)
            full = [i for i in group if caps[i] - workers[i] <= share]
            if not full:
                for i in group:
                    workers[i] += share
                remaining = 0.0
                break
            for i in full:
                remaining -= caps[i] - workers[i]
                workers[i] = caps[i]
            group = [i for i in group if i not in full]
    return workers


def _cap(queue: QueueWork, left: float) -> float:
    """The most workers a queue takes: its own max, and one per batch it has left."""
    cap = math.inf if queue.max_workers is None else float(queue.max_workers)
    if queue.batch_size:
        cap = min(cap, float(math.ceil(left / queue.batch_size)))
    return cap


def _boundaries(windows: Sequence[Window]) -> list[int]:
    """The minutes of the day at which a window opens or closes, sorted (24:00 as 0)."""
    return sorted({w.start_minute for w in windows} | {w.end_minute % 1440 for w in windows})


def _next_boundary(at: datetime, boundaries: Sequence[int], time_zone: tzinfo) -> datetime | None:
    """The first moment after ``at`` at which the site's clocks show one of ``boundaries`` (None: no windows)."""
    if not boundaries:
        return None
    local = at.astimezone(time_zone)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
    for day in range(3):  # a boundary comes within a day; the days around a clock change are covered
        for minute in boundaries:
            wall = midnight + timedelta(days=day, minutes=minute)
            candidate = wall.replace(tzinfo=time_zone)
            if candidate > at:
                return candidate
    return None
