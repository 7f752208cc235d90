"""The operator screen's figures per queue and per base, computed from the coordinator's state."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

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


@dataclass(frozen=True, slots=True)
class QueueFigures:
    """One row of the queue table ("Fila, Tipo, Prioridade, Estado, Workers, Workers na base, …")."""

    topic: str
    base: str
    kind: str
    priority: int
    state: str  # no-worker | paused | base-paused | running | waiting | idle | done
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
    speed: float
    eta_s: float | None


def screen_figures(
    snapshot: Snapshot, queues: Iterable[QueueRuntime], tasks: Iterable[TaskRuntime], now: datetime
) -> tuple[list[QueueFigures], list[BaseFigures]]:
    """The operator screen's rows: every queue and every base, now (``tasks``: those running)."""
    bases = base_figures(snapshot, now)
    in_flight: dict[str, int] = {}
    for task in tasks:
        in_flight[task.record.topic] = in_flight.get(task.record.topic, 0) + len(task.record.messages)
    rows = [queue_figures(q, bases[q.record.base], in_flight.get(q.topic, 0), now) for q in queues]
    return rows, list(bases.values())


def base_figures(snapshot: Snapshot, now: datetime) -> dict[str, BaseFigures]:
    figures = {}
    for base in snapshot.bases.values():
        limit = limit_in_force(base.max_workers, base.windows, now, snapshot.time_zone)
        figures[base.name] = BaseFigures(
            name=base.name,
            in_use=snapshot.base_running(base.name),
            limit=limit.max_workers,
            window=None if limit.window is None else limit.window.label,
            default_max_workers=base.max_workers,
            min_workers=base.min_workers,
            paused=base.paused,
        )
    return figures


def queue_figures(queue: QueueRuntime, base: BaseFigures, in_flight: int, now: datetime) -> QueueFigures:
    """``in_flight``: messages of the queue in running tasks."""
    consumed = queue.consumed
    pending = max(0, queue.end - consumed)
    speed = queue.speed.rate(now)
    workers = len(queue.running)
    return QueueFigures(
        topic=queue.topic,
        base=queue.record.base,
        kind=queue.record.kind,
        priority=queue.record.settings.priority,
        state=_state(queue, base, pending, workers),
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
        eta_s=round(pending / speed, 1) if speed > 0 and pending else None,
    )


def _state(queue: QueueRuntime, base: BaseFigures, pending: int, workers: int) -> str:
    settings = queue.record.settings
    if not (settings.command or settings.handler):
        return "no-worker"  # never scheduled: said first, whatever else holds
    if queue.record.paused:
        return "paused"
    if base.paused:
        return "base-paused"
    if workers:
        return "running"
    if pending:
        return "waiting"
    return "done" if queue.end else "idle"
