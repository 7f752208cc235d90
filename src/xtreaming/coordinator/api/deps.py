"""Reaching the coordinator from a request."""

from __future__ import annotations

from fastapi import Request

from xtreaming.coordinator.service import Coordinator


def coordinator_of(request: Request) -> Coordinator:
    coordinator: Coordinator = request.app.state.coordinator
    return coordinator
