"""``create_app(settings)``: the coordinator's HTTP API and its background loop."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from xtreaming.broker import open_broker
from xtreaming.config import Settings
from xtreaming.coordinator.api.auth import TokenTable
from xtreaming.coordinator.api.limits import BodyLimit
from xtreaming.coordinator.api.openapi import document_errors
from xtreaming.coordinator.api.problems import install_error_handlers
from xtreaming.coordinator.api.routes import (
    bases,
    dlq,
    docs,
    farms,
    messages,
    metrics,
    profiles,
    queues,
    screen,
    status,
)
from xtreaming.coordinator.history import HistoryCollector, MessageHistory
from xtreaming.coordinator.metrics import CoordinatorCollector, OutcomeCounts, RequestTimer
from xtreaming.coordinator.options import CoordinatorOptions
from xtreaming.coordinator.service import Coordinator
from xtreaming.coordinator.store import Store
from xtreaming.coordinator.waiters import Waiters
from xtreaming.errors import BrokerUnavailable

log = logging.getLogger("xtreaming.coordinator")


class BackgroundLoop:
    """Runs ``coordinator.run_once()`` every ``interval_s`` in a thread; a pass that fails on the broker marks it
    down, a whole pass marks it up (``coordinator.broker_health``). A second thread reads ahead the queues
    whose read-ahead leases brought to half (``Coordinator.top_up_wanted``), as soon as they do.

    A pass may wait on the broker for its whole timeout; it does so without the coordinator's lock
    (``Coordinator.run_once``), so the API answers meanwhile."""

    def __init__(self, coordinator: Coordinator, interval_s: float) -> None:
        self.coordinator = coordinator
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, name="xtreaming-coordinator-loop", daemon=True),
            threading.Thread(target=self._top_up, name="xtreaming-coordinator-reads", daemon=True),
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._guarded(self.coordinator.run_once, "coordinator loop"):
                self.coordinator.broker_health.answered()  # a whole pass: up again
            self._stop.wait(self.interval_s)

    def _top_up(self) -> None:
        while not self._stop.is_set():
            if not self._guarded(lambda: self.coordinator.top_up_wanted(self.interval_s), "read-ahead"):
                self._stop.wait(self.interval_s)  # the broker is away: as often as the loop tries it, no more

    def _guarded(self, work: Callable[[], object], what: str) -> bool:
        """Run ``work``; False when it failed (the broker shown down when it was the broker)."""
        try:
            work()
        except BrokerUnavailable as exc:
            self.coordinator.broker_health.failed(exc)
            return False
        except Exception:  # the loop must survive anything; the log says what happened
            log.exception("%s failed; continuing", what)
            return False
        return True


def build_coordinator(settings: Settings) -> Coordinator:
    """Open the store and the broker named by ``settings`` and load the coordinator's state."""
    options = CoordinatorOptions.from_settings(settings)
    return Coordinator(Store.open(settings.database_url), open_broker(settings.broker_url), options)


def create_app(settings: Settings, coordinator: Coordinator | None = None) -> FastAPI:
    """The API over ``coordinator`` (built from ``settings`` when not given)."""
    coordinator = coordinator or build_coordinator(settings)
    loop = BackgroundLoop(coordinator, settings.poll_interval_s)
    history = MessageHistory.open(settings.database_url, CoordinatorOptions.from_settings(settings))
    if history.writer is not None:
        coordinator.add_settlement_listener(history.writer)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        loop.start()
        coordinator.dead_letters.start()  # replays left running by the previous process resume
        history.start()
        try:
            yield
        finally:  # joining may wait for a pass stuck on the broker: not on the event loop
            await anyio.to_thread.run_sync(loop.stop)
            await anyio.to_thread.run_sync(coordinator.dead_letters.stop)
            await anyio.to_thread.run_sync(history.stop)  # after the loop: its last settlements are written

    # /docs is served from the package's own copy of Swagger UI (routes/docs.py); ReDoc would need a CDN.
    app = FastAPI(title="Xtreaming coordinator", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.coordinator = coordinator
    app.state.loop = loop
    app.state.history = history
    app.state.tokens = TokenTable(settings.tokens)
    for module in (farms, queues, profiles, bases, status, screen, metrics, docs, messages, dlq):
        app.include_router(module.router)
    app.mount("/static", screen.static_files(), name="static")
    app.mount(docs.ASSETS_PATH, docs.SwaggerAssets(), name="docs-assets")
    # One registry per app (tests run several): the figures read at scrape time, outcomes counted by the hook.
    registry = app.state.metrics = CollectorRegistry()
    outcomes = OutcomeCounts(registry)
    coordinator.add_settlement_listener(outcomes)
    registry.register(CoordinatorCollector(coordinator, outcomes))
    app.state.waiters = Waiters()  # publish-and-wait (routes/queues.py)
    coordinator.add_settlement_listener(app.state.waiters)
    if history.writer is not None:
        registry.register(HistoryCollector(history.writer))
    publish_path = "/api/topics/"

    def limit_for(path: str) -> int:
        return settings.max_publish_bytes if path.startswith(publish_path) else settings.max_body_bytes

    app.add_middleware(BodyLimit, limit_for=limit_for)
    app.add_middleware(RequestTimer, registry=registry)
    install_error_handlers(app)
    document_errors(app)
    return app
