"""Scheduled publishing: schedules listed (viewer), added and removed (admin), and each one's recent ticks.

A schedule that could not run (an invalid cron expression, a topic name, a CSV file missing on the coordinator's
machine, a callable that does not import) is refused with 422 and a sentence saying why; nothing is stored.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, FastAPI, Path, Query, Request, status

from xtreaming.broker import Broker
from xtreaming.config import Settings
from xtreaming.coordinator.api.auth import Admin, Viewer
from xtreaming.coordinator.api.schedule_schemas import ScheduleIn, ScheduleOut, TickOut, tick_out
from xtreaming.coordinator.api.schemas import INT64_MAX
from xtreaming.coordinator.api.serving import Serving
from xtreaming.coordinator.options import CoordinatorOptions
from xtreaming.coordinator.schedule_records import Schedule, source_to_json
from xtreaming.coordinator.schedules import Schedules, ScheduleView
from xtreaming.coordinator.service import Coordinator
from xtreaming.coordinator.store import Store

router = APIRouter(prefix="/api/schedules", tags=["schedules"])
ScheduleId = Annotated[int, Path(ge=1, le=INT64_MAX)]


@router.get("", response_model=list[ScheduleOut])
def list_schedules(request: Request, _: Viewer) -> list[ScheduleOut]:
    """Every schedule with its newest tick (its outcome) and when the next tick comes."""
    return [_out(view) for view in _schedules(request).listing()]


@router.post("", response_model=ScheduleOut, status_code=status.HTTP_201_CREATED)
def add_schedule(body: ScheduleIn, request: Request, who: Admin) -> ScheduleOut:
    """Publish to ``topic`` at each tick of ``cron`` (the site's time zone), run by the leading coordinator, each
    tick at most once; the first tick is the first one after now."""
    schedules = _schedules(request)
    schedule = schedules.add(body.topic, body.cron, body.source(), body.misfire, who.name)
    view = next((v for v in schedules.listing() if v.schedule.id == schedule.id), None)
    return _out(view) if view is not None else _new(schedule)


@router.delete("/{schedule_id}", status_code=status.HTTP_204_NO_CONTENT)
def remove_schedule(schedule_id: ScheduleId, request: Request, who: Admin) -> None:
    """Remove a schedule and its ticks; a tick being published stops at its next batch."""
    _schedules(request).remove(schedule_id, who.name)


@router.get("/{schedule_id}/ticks", response_model=list[TickOut])
def schedule_ticks(
    schedule_id: ScheduleId, request: Request, _: Viewer, limit: Annotated[int, Query(ge=1, le=1000)] = 20
) -> list[TickOut]:
    """A schedule's ticks, newest first, with their outcomes."""
    return [tick_out(t) for t in _schedules(request).ticks(schedule_id, limit)]


def _schedules(request: Request) -> Schedules:
    schedules: Schedules = request.app.state.schedules
    return schedules


def _out(view: ScheduleView) -> ScheduleOut:
    out = _new(view.schedule)
    out.last = None if view.last is None else tick_out(view.last)
    out.next_at = view.next_at
    return out


def _new(schedule: Schedule) -> ScheduleOut:
    return ScheduleOut(
        id=schedule.id,
        topic=schedule.topic,
        cron=schedule.cron,
        misfire=schedule.misfire,
        source=source_to_json(schedule.source),
        created_at=schedule.created_at,
        created_by=schedule.created_by,
        last=None,
        next_at=None,
    )


def serve_schedules(app: FastAPI, settings: Settings, store: Store, serving: Serving) -> Schedules:
    """The app's schedules (``app.state.schedules``): run with the broker of the coordinator serving now, only
    while this process serves (the leader, among coordinators sharing the store). Started by the app's lifespan."""

    def broker() -> Broker | None:
        coordinator: Coordinator | None = app.state.coordinator
        return None if coordinator is None else coordinator.broker

    options = CoordinatorOptions.from_settings(settings)
    schedules = app.state.schedules = Schedules(
        store,
        broker,
        zone=options.zone,
        partitions=settings.default_partitions,
        is_leader=serving.is_serving,
        takeover_s=settings.schedule_takeover_s,
    )
    return schedules
