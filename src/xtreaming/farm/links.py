"""The farm's calls to the coordinator besides leasing: registration, heartbeats and the reporter
thread that delivers results on their own, each retried with back-off while it does not answer."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from xtreaming.client import ApiError, CoordinatorClient, CoordinatorUnreachable
from xtreaming.defaults import DEFAULT_HEARTBEAT_INTERVAL_S
from xtreaming.errors import XtreamingError
from xtreaming.farm.config import FarmConfig
from xtreaming.farm.reporting import Backoff, Outbox, Report
from xtreaming.farm.slots import Slot

log = logging.getLogger("xtreaming.farm")


class FarmRefused(XtreamingError):
    """The coordinator refuses this farm (bad token, invalid labels): retrying would not help."""


class Links:
    """Registration, the heartbeat thread and the reporter thread of one farm."""

    def __init__(
        self,
        config: FarmConfig,
        outbox: Outbox,
        slots: Sequence[Slot],
        client_factory: Callable[[str, str | None], CoordinatorClient],
        stopping: threading.Event,
    ) -> None:
        self.config = config
        self.outbox = outbox
        self.slots = slots
        self.farm_id = config.name
        self.heartbeat_interval_s = DEFAULT_HEARTBEAT_INTERVAL_S  # until the coordinator says its own
        self.stopping = stopping
        self._register_api = client_factory(config.coordinator_url, config.token)
        self._heartbeat_api = client_factory(config.coordinator_url, config.token)
        self._report_api = client_factory(config.coordinator_url, config.token)
        self._register_lock = threading.Lock()
        self._down = False
        self._done = threading.Event()
        self._threads = [
            threading.Thread(target=self._heartbeats, name="heartbeat", daemon=True),
            threading.Thread(target=self._reports, name="reporter", daemon=True),
        ]

    def register(self, give_up: threading.Event) -> bool:
        """Register (again), retrying until the coordinator answers; False when ``give_up`` is set first.
        Raises FarmRefused when the coordinator refuses the farm."""
        body = {"name": self.config.name, "labels": dict(self.config.labels), "slots": self.config.slots}
        backoff = Backoff()
        with self._register_lock:
            while not give_up.is_set():
                try:
                    answer = self._register_api.post("/api/farms/register", body)
                except CoordinatorUnreachable as exc:
                    self.unreachable(exc)
                    give_up.wait(backoff.next_delay())
                    continue
                except ApiError as exc:
                    if exc.status >= 500:
                        give_up.wait(backoff.next_delay())
                        continue
                    raise FarmRefused(f"coordinator at {self.config.coordinator_url} refused farm: {exc}") from exc
                self.reachable()
                self.farm_id = answer["farm_id"]
                self.heartbeat_interval_s = float(answer["heartbeat_interval_s"])
                labels = ", ".join(f"{k}={v}" for k, v in self.config.labels.items()) or "no labels"
                log.info(
                    "farm %s registered at %s: %d slots, %s", self.farm_id, self.config.coordinator_url,
                    self.config.slots, labels,
                )  # fmt: skip
                return True
        return False

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._done.set()
        self.outbox.close()
        for thread in self._threads:
            if thread.ident is not None:  # started (a farm driven by run_once may not start them)
                thread.join(timeout=15)
        for api in (self._register_api, self._heartbeat_api, self._report_api):
            api.close()

    # -- reachability, logged once per outage ---------------------------------------------------

    def unreachable(self, exc: Exception) -> None:
        if not self._down:
            self._down = True
            log.warning("coordinator unreachable (%s); running tasks carry on, results are kept", exc)

    @property
    def is_reachable(self) -> bool:
        """False since a call failed to reach the coordinator, until one does again."""
        return not self._down

    def reachable(self) -> None:
        if self._down:
            self._down = False
            log.warning("coordinator reachable again")

    def log_settled(self, settled: Mapping[str, Any]) -> None:
        if not settled.get("accepted"):
            log.info(
                "task %s was no longer leased to this farm (its lease expired): %d ok kept, %d ignored",
                settled.get("task_id"), settled.get("ok", 0), settled.get("ignored", 0),
            )  # fmt: skip

    # -- threads --------------------------------------------------------------------------------

    def _heartbeats(self) -> None:
        while not self._done.wait(self.heartbeat_interval_s):
            try:
                self.heartbeat()
            except Exception:  # the heartbeat must outlive anything; the log says what happened
                log.exception("heartbeat failed")

    def heartbeat(self) -> None:
        """Tell the coordinator this farm is alive and what each slot does."""
        stopping = self.stopping.is_set()
        body = {"slots": [slot.status(stopping) for slot in self.slots]}
        try:
            self._heartbeat_api.post(f"/api/farms/{self.farm_id}/heartbeat", body)
        except CoordinatorUnreachable as exc:
            self.unreachable(exc)
            return
        except ApiError as exc:
            if exc.status == 404:  # the coordinator lost its state: join it again
                self.register(self._done)
            else:
                log.error("heartbeat refused: %s", exc)
            return
        self.reachable()

    def _reports(self) -> None:
        backoff = Backoff()
        while not self._done.is_set():
            reports = self.outbox.wait_for_reporter(1.0)
            unsent = self._send(reports)
            if unsent:
                self.outbox.put_back(unsent)
            self.outbox.done(len(reports))
            if unsent:
                self._done.wait(backoff.next_delay())
            elif reports:
                backoff.reset()

    def _send(self, reports: list[Report]) -> list[Report]:
        """Deliver ``reports`` in order; returns those not delivered because the coordinator is away."""
        for position, report in enumerate(reports):
            try:
                answer = self._report_api.post(f"/api/tasks/{report.task_id}/complete", dict(report.body))
            except CoordinatorUnreachable as exc:
                self.unreachable(exc)
                return reports[position:]
            except ApiError as exc:
                if exc.status >= 500:
                    return reports[position:]
                log.error("result of task %s refused, its lease will expire: %s", report.task_id, exc)
                continue
            self.reachable()
            self.log_settled({"task_id": report.task_id, **answer})
        return []
