"""The operator screen's figures per queue and per base, computed from the coordinator's state."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Final

from xtreaming.coordinator.core.base_eta import QueueWork, base_eta
from xtreaming.coordinator.core.snapshot import Snapshot
from xtreaming.coordinator.core.windows import limit_in_force
from xtreaming.coordinator.runtime import QueueRuntime, TaskRuntime


@dataclass(frozen=True, slots=True)
class BaseFigures:
    """A base now: workers in use, the limit in force and the window setting it."""

    name: str
    in_use: int
    limit: int
    window: str | None
    default_max_workers: int
    min_workers: int
    paused: bool
    #: Messages pending in its queues (in flight included).
    pending: int = 0
    #: When it is expected to have finished them (``core/base_eta.py``), and in how many seconds from now.
    eta_s: float | None = None
    eta_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class QueueFigures:
    """One row of the queue table ("Fila, Tipo, Prioridade, Estado, Workers, Workers na base, …")."""

    topic: str
    base: str
    kind: str
    priority: int
    state: str  # no-worker | paused | base-paused | failing | running | waiting | idle | done
    workers: int
    max_workers: int | None
    base_in_use: int
    base_limit: int
    base_window: str | None
    consumed: int
    pending: int
    in_flight: int
    failures: int
    dead: int
    #: Messages finished as duplicates of a pending or running one with their key, since the coordinator started.
    duplicates: int
    #: Messages finished per second over the last minute, the last ~10 s and the last hour.
    speed: float
    eta_s: float | None
    speed_10s: float = 0.0
    speed_1h: float = 0.0
    #: The latest failed attempt's error (at most 500 characters) as the worker or the coordinator gave it, and
    #: that attempt's number apart (a view words it in its own language); when a ``done`` queue finished.
    last_error: str | None = None
    finished_at: datetime | None = None
    last_error_attempt: int | None = None


def screen_figures(
    snapshot: Snapshot,
    queues: Sequence[QueueRuntime],
    tasks: Iterable[TaskRuntime],
    now: datetime,
    row: Callable[[QueueRuntime, BaseFigures, int, datetime], QueueFigures] | None = None,
) -> tuple[list[QueueFigures], list[BaseFigures]]:
    """The operator screen's rows: every queue (in the order of ``queues``) and every base with its pending work,
    now (``tasks``: those running); the bases' ETAs are left to ``with_etas``. ``row``: ``queue_figures`` or one
    that keeps rows between reads (``screen_rows.py``)."""
    row = row or queue_figures
    bases = base_figures(snapshot, now)
    in_flight: dict[str, int] = {}
    for task in tasks:
        in_flight[task.record.topic] = in_flight.get(task.record.topic, 0) + len(task.record.messages)
    rows = []
    pending: dict[str, int] = {}
    for queue in queues:
        figures = row(queue, bases[queue.record.base], in_flight.get(queue.topic, 0), now)
        rows.append(figures)
        if figures.pending:
            pending[figures.base] = pending.get(figures.base, 0) + figures.pending
    return rows, [replace(b, pending=pending.get(b.name, 0)) for b in bases.values()]


def eta_work(queues: Sequence[QueueRuntime], rows: Sequence[QueueFigures], now: datetime) -> dict[str, list[QueueWork]]:
    """Each base's queues as its ETA takes them (``with_etas``): those with pending work that move, from ``queues``
    and their ``rows`` (``screen_figures``, same order). Under the coordinator's lock: it reads their activity."""
    work: dict[str, list[QueueWork]] = {}
    for queue, row in zip(queues, rows, strict=True):
        if row.pending and row.state not in _STILL:
            settings = queue.record.settings
            work.setdefault(row.base, []).append(
                QueueWork(
                    row.topic, row.priority, row.pending, queue.activity.worker_speed(now),
                    settings.max_workers, settings.batch_size,
                )
            )  # fmt: skip
    return work


#: States in which a queue does not move: no ETA for it, and its base's ETA leaves it out.
_STILL: Final = frozenset({"no-worker", "paused", "base-paused", "done"})


def with_etas(
    bases: Iterable[BaseFigures],
    work: Mapping[str, Sequence[QueueWork]],
    snapshot: Snapshot,
    now: datetime,
    slots: int | None,
) -> list[BaseFigures]:
    """``bases`` with their ETAs (``core/base_eta.py``) from their queues' ``work`` and their limit schedules;
    ``slots``: the farms' slots, a cap on any base's workers."""
    figures = []
    for figure in bases:
        state = snapshot.bases.get(figure.name)
        queues = work.get(figure.name)
        eta = None
        if state is not None and queues and not state.paused:
            eta = base_eta(queues, state.max_workers, state.windows, snapshot.time_zone, now, slots=slots)
        if eta is None:
            figures.append(figure)
        else:
            figures.append(replace(figure, eta_at=eta, eta_s=round((eta - now).total_seconds(), 1)))
    return figures


def base_figures(snapshot: Snapshot, now: datetime) -> dict[str, BaseFigures]:
    return {name: one_base_figures(snapshot, name, now) for name in snapshot.bases}


def one_base_figures(snapshot: Snapshot, name: str, now: datetime) -> BaseFigures:
    """The base ``name`` now (its pending work and ETA left out: ``screen_figures``, ``with_etas``)."""
    base = snapshot.bases[name]
    limit = limit_in_force(base.max_workers, base.windows, now, snapshot.time_zone)
    return BaseFigures(
        name=base.name,
        in_use=snapshot.base_running(base.name),
        limit=limit.max_workers,
        window=None if limit.window is None else limit.window.label,
        default_max_workers=base.max_workers,
        min_workers=base.min_workers,
        paused=base.paused,
    )


def queue_figures(queue: QueueRuntime, base: BaseFigures, in_flight: int, now: datetime) -> QueueFigures:
    """``in_flight``: messages of the queue in running tasks. What it reads, ``screen_rows.py`` compares to keep a
    row between reads: an input added here is added there."""
    consumed, end = queue.progress()
    pending = max(0, end - consumed)
    activity = queue.activity
    if activity.seconds or activity.minutes:
        speed, speed_10s, speed_1h = activity.rate(now, 60), activity.rate(now, 10), activity.hourly_rate(now)
    else:  # most queues of a large site, most of the time: nothing to count
        speed = speed_10s = speed_1h = 0.0
    workers = len(queue.running)
    state = _state(queue, base, pending, workers, now)
    moving = state not in _STILL and state != "failing"
    return QueueFigures(
        topic=queue.topic,
        base=queue.record.base,
        kind=queue.record.kind,
        priority=queue.record.settings.priority,
        state=state,
        workers=workers,
        max_workers=queue.record.settings.max_workers,
        base_in_use=base.in_use,
        base_limit=base.limit,
        base_window=base.window,
        consumed=consumed,
        pending=pending,
        in_flight=in_flight,
        failures=queue.retrying,
        dead=queue.dead,
        duplicates=queue.duplicates,
        speed=round(speed, 1),
        eta_s=round(pending / speed, 1) if moving and speed > 0 and pending else None,
        speed_10s=round(speed_10s, 1),
        speed_1h=round(speed_1h, 1),
        last_error=activity.last_error,
        finished_at=activity.last_finished_at if state == "done" else None,
        last_error_attempt=activity.last_error_attempt,
    )


def _state(queue: QueueRuntime, base: BaseFigures, pending: int, workers: int, now: datetime) -> str:
    settings = queue.record.settings
    if not (settings.command or settings.handler):
        return "no-worker"  # never scheduled: said first, whatever else holds
    if queue.record.paused:
        return "paused"
    if base.paused:
        return "base-paused"
    activity = queue.activity
    if activity.last_failure_at is not None and (workers or pending) and activity.is_failing(now):
        return "failing"  # attempts only fail: not "running", whatever its workers
    if workers:
        return "running"
    if pending:
        return "waiting"
    return "done" if queue.end else "idle"
