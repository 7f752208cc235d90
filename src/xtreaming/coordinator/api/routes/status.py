"""The operator screen's one aggregated request, health, and the audit log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from xtreaming.coordinator.api.auth import Admin, Viewer
from xtreaming.coordinator.api.deps import coordinator_of
from xtreaming.coordinator.api.leader_gate import leader_json
from xtreaming.coordinator.api.routes.bases import rows_of_bases
from xtreaming.coordinator.api.routes.farms import rows_of_farms
from xtreaming.coordinator.api.routes.queues import in_screen_order
from xtreaming.coordinator.api.schemas import INT64_MAX, AuditRow, LeaderRow, Status
from xtreaming.coordinator.api.serving import Serving, State
from xtreaming.coordinator.api.status_json import StatusBody, StatusJson
from xtreaming.coordinator.leadership import Leader

router = APIRouter(tags=["status"])


@router.get("/api/status", response_model=Status)
def status(request: Request, _: Viewer) -> Response:
    """Queues, bases and farms in one answer: the screen polls this, not one request per row.

    From memory, whatever the broker does: while a farm's request holds the coordinator across a broker
    or store round trip, the figures last taken (``now`` says when they were)."""
    coordinator = coordinator_of(request)
    screen = coordinator.screen()
    broker_error = coordinator.broker_health.error
    body = StatusBody(
        now=screen.at,
        broker_ok=broker_error is None,
        broker_error=broker_error,
        queues=in_screen_order(screen.queues),
        bases=rows_of_bases(coordinator, screen.bases),
        farms=rows_of_farms(screen.farms),
        time_zone=coordinator.options.time_zone,
        leader=leader_row(request.app.state.serving.leader()),
    )
    status_json: StatusJson = request.app.state.status_json
    return Response(status_json.dump(body), media_type="application/json")


@router.get("/healthz")
async def health(request: Request) -> JSONResponse:
    """On the event loop itself, touching nothing that may block. 200 while this coordinator serves as the leader;
    503 for a standby, one elected and still loading its state (``starting``) or one that cannot reach the state
    store (``down``); the body says which, and who leads."""
    serving: Serving = request.app.state.serving
    state = serving.state()
    body = {"status": state.value, "leader": leader_json(serving.leader())}
    return JSONResponse(body, status_code=200 if state is State.LEADER else 503)


def leader_row(leader: Leader | None) -> LeaderRow | None:
    return None if leader is None else LeaderRow(url=leader.url, since=leader.since, epoch=leader.epoch)


@router.get("/api/audit", response_model=list[AuditRow])
def audit(
    request: Request,
    _: Admin,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before_id: Annotated[int | None, Query(ge=1, le=INT64_MAX)] = None,
) -> list[AuditRow]:
    """Operator actions, newest first; page with ``before_id`` = the last id seen."""
    entries = coordinator_of(request).controls.audit_log(limit, before_id)
    return [
        AuditRow(id=e.id, at=e.at, actor=e.actor, action=e.action, target=e.target, details=dict(e.details))
        for e in entries
    ]
