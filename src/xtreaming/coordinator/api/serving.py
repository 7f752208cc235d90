"""What this process serves with: its coordinator and the threads beside it, while it leads.

A coordinator on its own store (SQLite) is built once, as the app is made, and always leads. Among
coordinators sharing a store (``leadership.py``) the process waits as a standby; each time it is
elected it builds its coordinator as a start does (the state loaded from the store and the broker,
replays left running resumed), and when deposed it stops serving at once and drops it. The election
runs in one thread, the building and dropping in another, so that a long load never delays a renewal.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from enum import StrEnum

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from xtreaming.coordinator.api.background import BackgroundLoop
from xtreaming.coordinator.leadership import Leader, Leadership, Role, SoleLeadership
from xtreaming.coordinator.metrics import CoordinatorCollector, OutcomeCounts
from xtreaming.coordinator.outcomes import SettlementListener
from xtreaming.coordinator.service import Coordinator

log = logging.getLogger("xtreaming.coordinator")


class State(StrEnum):
    """What ``/healthz`` says: ``leader`` serves (200); ``starting`` was elected and loads its state,
    ``standby`` waits, ``down`` cannot reach the state store (503 each)."""

    LEADER = "leader"
    STARTING = "starting"
    STANDBY = "standby"
    DOWN = "down"


class Serving:
    """The coordinator this process serves with, if any, and its background loop (see the module docstring)."""

    def __init__(
        self,
        app: FastAPI,
        leadership: Leadership | SoleLeadership,
        build: Callable[[], Coordinator],
        listeners: Sequence[SettlementListener],
        registry: CollectorRegistry,
        outcomes: OutcomeCounts,
        poll_interval_s: float,
    ) -> None:
        self.app = app
        self.leadership = leadership
        self._build = build
        self._listeners = listeners
        self._registry = registry
        self._outcomes = outcomes
        self._poll_interval_s = poll_interval_s
        self._lock = threading.Lock()
        self._coordinator: Coordinator | None = None
        self._loop: BackgroundLoop | None = None
        self._collector: CoordinatorCollector | None = None
        self._epoch: int | None = None  # the epoch the coordinator was built in
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # -- what the API asks --------------------------------------------------------------------

    def is_serving(self) -> bool:
        """Whether requests may be served: this process leads and its coordinator is built for its epoch."""
        leadership = self.leadership
        if isinstance(leadership, SoleLeadership):
            return True
        return self._coordinator is not None and leadership.holds() and self._epoch == leadership.epoch

    def state(self) -> State:
        if self.is_serving():
            return State.LEADER
        role = self.leadership.role()
        if role is Role.LEADER:
            return State.STARTING
        return State.STANDBY if role is Role.STANDBY else State.DOWN

    def leader(self) -> Leader | None:
        return self.leadership.leader()

    # -- building and dropping ------------------------------------------------------------------

    def attach(self, coordinator: Coordinator, epoch: int | None = None) -> None:
        """Serve with ``coordinator`` (its listeners, metrics and loop wired; started by ``start``)."""
        for listener in self._listeners:
            coordinator.add_settlement_listener(listener)
        collector = CoordinatorCollector(coordinator, self._outcomes)
        self._registry.register(collector)
        loop = BackgroundLoop(coordinator, self._poll_interval_s)
        with self._lock:
            self._coordinator, self._loop, self._collector, self._epoch = coordinator, loop, collector, epoch
        self.app.state.coordinator = coordinator
        self.app.state.loop = loop

    def start(self) -> None:
        """Start serving: the coordinator's threads at once (one store), or the election and what follows it."""
        leadership = self.leadership
        if isinstance(leadership, SoleLeadership):
            self._start_attached()
            return
        self._stop.clear()
        self._first_look(leadership)
        self._threads = [
            threading.Thread(target=leadership.run, args=(self._stop,), name="xtreaming-leadership", daemon=True),
            threading.Thread(target=self._follow, args=(leadership,), name="xtreaming-serving", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Stop serving and, among several coordinators, let go of the lead so that a standby takes over now."""
        self._stop.set()
        leadership = self.leadership
        if isinstance(leadership, Leadership):
            leadership.changed.set()
            for thread in self._threads:
                thread.join(timeout=10)
            self._drop(closing=False)
            leadership.release()
        else:
            self._drop(closing=False)

    def _start_attached(self) -> None:
        with self._lock:
            coordinator, loop = self._coordinator, self._loop
        if coordinator is None or loop is None:
            return
        loop.start()
        coordinator.dead_letters.start()  # replays left running by the previous process resume

    def _drop(self, *, closing: bool = True) -> None:
        """Stop serving with the coordinator, closing its broker (``closing``) unless the process is ending:
        whoever made the app closes what it holds then, as before several coordinators."""
        with self._lock:
            coordinator, loop, collector = self._coordinator, self._loop, self._collector
            self._coordinator = self._loop = self._collector = None
            self._epoch = None
        if coordinator is None:
            return
        if loop is not None:
            loop.stop()
        coordinator.dead_letters.stop()
        if collector is not None:
            self._registry.unregister(collector)
        if closing:
            self.app.state.coordinator = self.app.state.loop = None
            coordinator.broker.close()  # its own, opened when it was built

    def _first_look(self, leadership: Leadership) -> None:
        """Look once before the API answers: a coordinator that finds nobody leading (the first one, or every
        one stopped cleanly) serves from its first request, its state loaded as a start always did."""
        try:
            leadership.step()
        except Exception:
            log.exception("leadership: the first look at the lease failed; the election thread tries again")
            return
        epoch = leadership.epoch
        if epoch is not None and leadership.holds():
            leadership.changed.clear()
            self._serve(epoch)

    def _follow(self, leadership: Leadership) -> None:
        """Build a coordinator each time this process is elected, drop it when deposed."""
        while not self._stop.is_set():
            leadership.changed.wait(leadership.lease_s / 3)
            leadership.changed.clear()
            if self._stop.is_set():
                return
            epoch = leadership.epoch
            if self._epoch is not None and epoch != self._epoch:
                log.warning("no longer the leader of epoch %s: this coordinator stops serving", self._epoch)
                self._drop()
            if epoch is not None and self._coordinator is None and leadership.holds():
                self._serve(epoch)

    def _serve(self, epoch: int) -> None:
        try:
            coordinator = self._build()
        except Exception:  # the store or the broker away: the next look tries again, if still the leader
            log.exception("elected in epoch %d, but the coordinator could not be built; trying again", epoch)
            return
        self.attach(coordinator, epoch)
        self._start_attached()
        log.warning("serving as the leader of epoch %d", epoch)
