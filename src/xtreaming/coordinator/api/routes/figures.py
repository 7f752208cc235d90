"""The figure history: a queue's or a base's minutes for its chart, and the sparklines of the screen's first render."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Final

from fastapi import APIRouter, Query, Request

from xtreaming.coordinator.api.auth import Viewer
from xtreaming.coordinator.api.deps import coordinator_of
from xtreaming.coordinator.api.schemas import FigurePointOut, FigureSeries, Sparklines
from xtreaming.coordinator.figure_history import BASE, QUEUE
from xtreaming.coordinator.records import FigurePoint, minute_of, minute_start

router = APIRouter(prefix="/api/figures", tags=["figures"])

#: The longest chart: 7 days of minutes (the history keeps them: ``CoordinatorOptions.figure_retention_hours``).
MAX_MINUTES: Final = 7 * 24 * 60
#: The longest sparklines: a day (one number per minute for every queue).
MAX_SPARKLINE_MINUTES: Final = 24 * 60

Minutes = Annotated[int, Query(ge=1, le=MAX_MINUTES, description="How many minutes back, the current one included.")]


@router.get("/queues/{topic}", response_model=FigureSeries)
def queue_history(topic: str, request: Request, _: Viewer, minutes: Minutes = 1440) -> FigureSeries:
    """The queue's minutes with activity or a running worker: done, failed, workers and its max workers. 404 for an
    unknown queue."""
    return _series(request, QUEUE, topic, minutes)


@router.get("/bases/{base}", response_model=FigureSeries)
def base_history(base: str, request: Request, _: Viewer, minutes: Minutes = 1440) -> FigureSeries:
    """The base's minutes with activity or a running worker: its queues' done, failed and workers summed, and its
    limit in force. 404 for an unknown base."""
    return _series(request, BASE, base, minutes)


@router.get("/sparklines", response_model=Sparklines)
def sparklines(
    request: Request,
    _: Viewer,
    minutes: Annotated[int, Query(ge=1, le=MAX_SPARKLINE_MINUTES)] = 30,
) -> Sparklines:
    """Each queue's and base's messages done per minute over the last ``minutes`` (the current one last)."""
    coordinator = coordinator_of(request)
    last = minute_of(coordinator.now())
    first = last - minutes + 1
    lines: dict[str, dict[str, list[int]]] = {QUEUE: {}, BASE: {}}
    for scope, name, minute, done in coordinator.recent_done(minute_start(first)):
        line = lines[scope].get(name)
        if line is None:
            line = lines[scope][name] = [0] * minutes
        index = minute - first
        if 0 <= index < minutes:
            line[index] += done
    return Sparklines(queues=lines[QUEUE], bases=lines[BASE])


def _series(request: Request, scope: str, name: str, minutes: int) -> FigureSeries:
    coordinator = coordinator_of(request)
    points = coordinator.figure_points(scope, name, _since(coordinator.now(), minutes))
    return FigureSeries(name=name, points=[_point_out(p) for p in points])


def _since(now: datetime, minutes: int) -> datetime:
    """The start of the first of the last ``minutes`` minutes, the current one included."""
    return minute_start(minute_of(now)) - timedelta(minutes=minutes - 1)


def _point_out(point: FigurePoint) -> FigurePointOut:
    return FigurePointOut(at=point.at, done=point.done, failed=point.failed, workers=point.workers, limit=point.limit)
