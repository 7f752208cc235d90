"""The operator screen's one aggregated request, health, and the audit log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from xtreaming.coordinator.api.auth import Admin, Viewer
from xtreaming.coordinator.api.deps import coordinator_of
from xtreaming.coordinator.api.routes.bases import base_rows
from xtreaming.coordinator.api.routes.farms import farm_rows
from xtreaming.coordinator.api.routes.queues import queue_rows
from xtreaming.coordinator.api.schemas import AuditRow, Status

router = APIRouter(tags=["status"])


@router.get("/api/status", response_model=Status)
def status(request: Request, _: Viewer) -> Status:
    """Queues, bases and farms in one answer: the screen polls this, not one request per row."""
    loop = request.app.state.loop
    return Status(
        now=coordinator_of(request).now(),
        broker_ok=loop.broker_error is None,
        broker_error=loop.broker_error,
        queues=queue_rows(request),
        bases=base_rows(request),
        farms=farm_rows(request),
    )


@router.get("/healthz")
def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/api/audit", response_model=list[AuditRow])
def audit(
    request: Request,
    _: Admin,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before_id: Annotated[int | None, Query(ge=1)] = None,
) -> list[AuditRow]:
    """Operator actions, newest first; page with ``before_id`` = the last id seen."""
    entries = coordinator_of(request).store.list_audit(limit=limit, before_id=before_id)
    return [
        AuditRow(id=e.id, at=e.at, actor=e.actor, action=e.action, target=e.target, details=dict(e.details))
        for e in entries
    ]
