"""``create_app(settings)``: the coordinator's HTTP API and its background loop."""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import anyio
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from starlette.types import Receive, Scope, Send

from xtreaming.broker import open_broker
from xtreaming.config import Settings
from xtreaming.coordinator.api.auth import TokenTable
from xtreaming.coordinator.api.farm_path import FarmPath
from xtreaming.coordinator.api.leader_gate import LeaderGate
from xtreaming.coordinator.api.limits import BodyLimit
from xtreaming.coordinator.api.openapi import document_errors
from xtreaming.coordinator.api.problems import install_error_handlers
from xtreaming.coordinator.api.routes import (
    bases,
    dlq,
    docs,
    farms,
    figures,
    messages,
    metrics,
    profiles,
    queues,
    schedules,
    screen,
    status,
)
from xtreaming.coordinator.api.serving import Serving
from xtreaming.coordinator.api.status_json import StatusJson
from xtreaming.coordinator.fenced_broker import FencedBroker
from xtreaming.coordinator.history import HistoryCollector, MessageHistory
from xtreaming.coordinator.leadership import Leadership, SoleLeadership
from xtreaming.coordinator.metrics import OutcomeCounts, RequestSeconds, RequestTimer
from xtreaming.coordinator.options import CoordinatorOptions
from xtreaming.coordinator.outcomes import SettlementListener
from xtreaming.coordinator.service import Coordinator
from xtreaming.coordinator.store import Store
from xtreaming.coordinator.waiters import Waiters

log = logging.getLogger("xtreaming.coordinator")


def build_coordinator(
    settings: Settings, store: Store | None = None, holds: Callable[[], bool] | None = None
) -> Coordinator:
    """Open the store (unless given) and the broker named by ``settings`` and load the coordinator's state; with
    ``holds``, the leader's check, its broker writes go through only while it is True (``fenced_broker.py``)."""
    options = CoordinatorOptions.from_settings(settings)
    broker = open_broker(settings.broker_url)
    if holds is not None:
        broker = FencedBroker(broker, holds)
    return Coordinator(store or Store.open(settings.database_url), broker, options)


def elect(settings: Settings, store: Store) -> Leadership:
    """The election among the coordinators sharing ``store``, its writes fenced by the lead from now on."""
    leadership = Leadership(store.leadership, settings.public_url, settings.leader_lease_s)
    store.fence_writes(leadership.fence, idle_transaction_s=settings.leader_lease_s)
    return leadership


class CoordinatorApp(FastAPI):
    """The API, whose farms' lease requests and heartbeats take the short path (``farm_path.py``) in front of all its
    layers."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._short_path = FarmPath(super().__call__, self)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._short_path(scope, receive, send)


def create_app(settings: Settings, coordinator: Coordinator | None = None) -> FastAPI:
    """The API over ``coordinator`` (built from ``settings`` when not given). On a store several coordinators
    may share (PostgreSQL) the coordinator is built only once this process is elected (``serving.py``)."""
    store = None if coordinator is not None else Store.open(settings.database_url)
    leadership: Leadership | SoleLeadership
    if store is not None and store.is_shared:
        leadership = elect(settings, store)
        holds: Callable[[], bool] | None = leadership.holds
    else:
        leadership, holds = SoleLeadership(settings.public_url, datetime.now(UTC)), None
        coordinator = coordinator or build_coordinator(settings, store)
    history = MessageHistory.open(
        settings.database_url, CoordinatorOptions.from_settings(settings), settings.broker_url
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        serving.start()
        history.start()
        scheduled.start()  # publishes only while this process serves (the leader)
        try:
            yield
        finally:  # joining may wait for a pass stuck on the broker: not on the event loop
            await anyio.to_thread.run_sync(scheduled.stop)  # a tick cut short is finished by the next leader
            await anyio.to_thread.run_sync(serving.stop)
            if isinstance(leadership, Leadership) and store is not None:
                await anyio.to_thread.run_sync(store.close)  # opened here for the coordinators built at each election
            await anyio.to_thread.run_sync(history.stop)  # after the loop: its last settlements are written

    # /docs is served from the package's own copy of Swagger UI (routes/docs.py); ReDoc would need a CDN.
    app = CoordinatorApp(
        title="Xtreaming coordinator", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None
    )
    app.state.coordinator = None  # set while serving (``serving.py``)
    app.state.history = history
    app.state.tokens = TokenTable(settings.tokens)
    for module in (farms, queues, profiles, bases, status, screen, metrics, docs, messages, dlq, figures, schedules):
        app.include_router(module.router)
    app.mount("/static", screen.static_files(), name="static")
    app.mount(docs.ASSETS_PATH, docs.SwaggerAssets(), name="docs-assets")
    # One registry per app (tests run several): the figures read at scrape time, outcomes counted by the hook.
    registry = app.state.metrics = CollectorRegistry()
    outcomes = OutcomeCounts(registry)
    app.state.waiters = Waiters()  # publish-and-wait (routes/queues.py)
    app.state.lease_groups = farms.lease_groups(lambda: app.state.coordinator)  # lease_groups.py
    app.state.status_json = StatusJson()  # the status answer's rows serialized once each (status_json.py)
    listeners: list[SettlementListener] = [history.writer] if history.writer is not None else []
    listeners += [outcomes, app.state.waiters]
    build = functools.partial(build_coordinator, settings, store, holds)
    serving = app.state.serving = Serving(
        app, leadership, build, listeners, registry, outcomes, settings.poll_interval_s
    )
    app.state.leadership = leadership
    scheduled = schedules.serve_schedules(app, settings, store or _store_of(coordinator), serving)
    if coordinator is not None:
        serving.attach(coordinator)
    if history.writer is not None:
        registry.register(HistoryCollector(history.writer))
    publish_path = "/api/topics/"

    def limit_for(path: str) -> int:
        return settings.max_publish_bytes if path.startswith(publish_path) else settings.max_body_bytes

    app.state.limit_for = limit_for  # the short path's too (``farm_path.py``), as is the timer
    app.state.request_seconds = RequestSeconds(registry)
    app.add_middleware(BodyLimit, limit_for=limit_for)
    app.add_middleware(RequestTimer, seconds=app.state.request_seconds)
    app.add_middleware(LeaderGate, serving=serving)
    install_error_handlers(app)
    document_errors(app)
    return app


def _store_of(coordinator: Coordinator | None) -> Store:
    """The store of the coordinator given to ``create_app`` (one is given whenever no store was opened)."""
    if coordinator is None:
        raise ValueError("create_app needs a coordinator or a store")
    return coordinator.store
