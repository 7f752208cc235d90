"""``GET /metrics``: the coordinator's figures in the Prometheus text format (``coordinator/metrics.py``)."""

from __future__ import annotations

from typing import Final

from fastapi import APIRouter, Request, Response
from prometheus_client import CollectorRegistry, generate_latest

from xtreaming.coordinator.api.auth import Viewer

router = APIRouter(tags=["status"])

#: The classic text format, which every Prometheus (2.x and 3.x) and Grafana Agent reads.
CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"


@router.get("/metrics", response_class=Response)
def metrics(request: Request, _: Viewer) -> Response:
    """For Prometheus to scrape: a viewer token when tokens are configured, like every other read."""
    registry: CollectorRegistry = request.app.state.metrics
    return Response(generate_latest(registry), media_type=CONTENT_TYPE)
