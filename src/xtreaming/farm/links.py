"""The farm's calls to the coordinator besides leasing: registration, heartbeats and the reporter
thread that delivers results on their own, each retried with back-off while it does not answer;
and the watch that stops running tasks before the coordinator would give up on the farm.

Leases are renewed by every answered heartbeat or lease request. The coordinator counts a farm
lost ``lost_after_heartbeats`` intervals after the last it heard (it says both numbers when the farm
registers) and then leases its tasks again; so a farm that has had no answer for
``UNREACHABLE_MARGIN_HEARTBEATS`` interval less than that kills its running tasks itself (their
messages are reported for retry once the coordinator answers again): nothing keeps running on a
farm the coordinator may have given up on, whether the network is cut or the farm is late. Times
are counted from when the answered request was *sent*, which is never later than when the
coordinator heard it. ``FarmConfig.keep_running_when_unreachable`` turns the watch off.

Each answer to a heartbeat names the tasks this farm runs that are no longer leased to it: they
are killed at once. A heartbeat that says another process has registered under this farm's name
since (``superseded``) kills every task and stops the farm.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, Final

from xtreaming.client import ApiError, CoordinatorClient, CoordinatorUnreachable, NoLeader
from xtreaming.defaults import DEFAULT_HEARTBEAT_INTERVAL_S
from xtreaming.errors import XtreamingError
from xtreaming.farm.config import UNREACHABLE_MARGIN_HEARTBEATS, FarmConfig
from xtreaming.farm.reporting import Backoff, Outbox, Report
from xtreaming.farm.slots import Slot

log = logging.getLogger("xtreaming.farm")

#: Kills the running tasks named (None: every one), for the reason given; tasks already killed are left be.
StopTasks = Callable[[Collection[str] | None, str], None]

#: The watch looks this often, in heartbeat intervals (and at least once a second).
WATCH_EVERY_HEARTBEATS: Final = 0.25
#: At most this many results on their way are named in a heartbeat (the coordinator takes 4,096): a farm
#: has about one per slot, more only when results go astray, and a heartbeat must never be refused.
MAX_REPORTING: Final = 1024


class FarmRefused(XtreamingError):
    """The coordinator refuses this farm (bad token, invalid labels): retrying would not help."""


class Links:
    """Registration, the heartbeat thread, the reporter thread and the renewal watch of one farm."""

    def __init__(
        self,
        config: FarmConfig,
        outbox: Outbox,
        slots: Sequence[Slot],
        client_factory: Callable[[str, str | None], CoordinatorClient],
        stopping: threading.Event,
        stop_tasks: StopTasks,
    ) -> None:
        self.config = config
        self.outbox = outbox
        self.slots = slots
        self.farm_id = config.name
        #: This process among all that ever ran as this farm: the coordinator releases the tasks of an
        #: earlier one when a new one registers.
        self.instance = uuid.uuid4().hex
        self.heartbeat_interval_s = DEFAULT_HEARTBEAT_INTERVAL_S  # until the coordinator says its own
        #: The coordinator's, once it says (coordinators that do not: the farm never stops tasks itself).
        self.lost_after_heartbeats: int | None = None
        self.stopping = stopping
        #: Set when another process registered under this farm's name: this one stops.
        self.superseded = threading.Event()
        self._stop_tasks = stop_tasks
        self._register_api = client_factory(config.coordinator_url, config.token)
        self._heartbeat_api = client_factory(config.coordinator_url, config.token)
        self._report_api = client_factory(config.coordinator_url, config.token)
        self._register_lock = threading.Lock()
        self._down = False
        self._done = threading.Event()
        self._renewal_lock = threading.Lock()
        self._renewed_at = time.monotonic()
        self._stopped_unrenewed = False
        #: Tasks finished here whose results the coordinator has not taken yet.
        self._unreported: set[str] = set()
        self._threads = [
            threading.Thread(target=self._heartbeats, name="heartbeat", daemon=True),
            threading.Thread(target=self._reports, name="reporter", daemon=True),
            threading.Thread(target=self._watch, name="renewal-watch", daemon=True),
        ]

    def register(self, give_up: threading.Event) -> bool:
        """Register (again), retrying until the coordinator answers; False when ``give_up`` is set first.
        Raises FarmRefused when the coordinator refuses the farm."""
        body = {
            "name": self.config.name,
            "labels": dict(self.config.labels),
            "slots": self.config.slots,
            "instance": self.instance,
        }
        for field in ("urgent_slots", "urgent_priority"):  # sent when set: left out, the site's setting applies
            if (value := getattr(self.config, field)) is not None:
                body[field] = value
        backoff = Backoff()
        with self._register_lock:
            while not give_up.is_set():
                sent = time.monotonic()
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
                lost_after = answer.get("lost_after_heartbeats")
                self.lost_after_heartbeats = None if lost_after is None else int(lost_after)
                self.renewed(sent)
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
            if self.stop_after_s is None:
                log.warning("coordinator unreachable (%s); running tasks carry on, results are kept", exc)
            else:
                log.warning(
                    "coordinator unreachable (%s); results are kept, and running tasks are stopped if it does "
                    "not answer within %g s of the last answer",
                    exc, self.stop_after_s,
                )  # fmt: skip

    @property
    def is_reachable(self) -> bool:
        """False since a call failed to reach the coordinator, until one does again."""
        return not self._down

    def reachable(self) -> None:
        if self._down:
            self._down = False
            log.warning("coordinator reachable again")

    # -- renewal --------------------------------------------------------------------------------

    @property
    def stop_after_s(self) -> float | None:
        """How long after the last renewal running tasks are stopped; None: never (the option, or a
        coordinator that does not say when it counts a farm lost)."""
        if self.config.keep_running_when_unreachable or self.lost_after_heartbeats is None:
            return None
        heartbeats = max(self.lost_after_heartbeats - UNREACHABLE_MARGIN_HEARTBEATS, 0.5)
        return heartbeats * self.heartbeat_interval_s

    def renewed(self, sent_at: float) -> None:
        """A request sent at ``sent_at`` (``time.monotonic()``) was answered: the coordinator heard the farm then."""
        with self._renewal_lock:
            self._renewed_at = max(self._renewed_at, sent_at)
            self._stopped_unrenewed = False

    def check_renewal(self) -> None:
        """Stop the running tasks when the leases have gone unrenewed for ``stop_after_s``."""
        stop_after = self.stop_after_s
        if stop_after is None:
            return
        with self._renewal_lock:
            silent_s = time.monotonic() - self._renewed_at
            if silent_s < stop_after:
                return
            first = not self._stopped_unrenewed
            self._stopped_unrenewed = True
        if first and any(not slot.idle for slot in self.slots):
            log.warning(
                "no answer from the coordinator for %.1f s: stopping the running tasks before it counts this farm "
                "lost (at %g s); they are reported for retry when it answers again",
                silent_s, (self.lost_after_heartbeats or 0) * self.heartbeat_interval_s,
            )  # fmt: skip
        # Every look, not once: a task whose process was starting is killed as soon as it is attached.
        self._stop_tasks(None, f"coordinator unreachable for {silent_s:.1f} s: task stopped, reported for retry")

    def _watch(self) -> None:
        while not self._done.wait(min(1.0, self.heartbeat_interval_s * WATCH_EVERY_HEARTBEATS)):
            try:
                self.check_renewal()
            except Exception:  # the watch must outlive anything; the log says what happened
                log.exception("renewal watch failed")

    # -- results --------------------------------------------------------------------------------

    def finished(self, task_id: str) -> None:
        """A task ended here; its result is on its way (heartbeats say so until the coordinator has it)."""
        with self._renewal_lock:
            self._unreported.add(task_id)

    def _delivered(self, task_id: object) -> None:
        with self._renewal_lock:
            self._unreported.discard(str(task_id))

    def log_settled(self, settled: Mapping[str, Any]) -> None:
        """The coordinator's answer to a result: the result is delivered (logged when it came too late)."""
        self._delivered(settled.get("task_id"))
        if not settled.get("accepted"):
            log.info(
                "task %s was settled already or no longer leased to this farm: %d ok kept, %d ignored",
                settled.get("task_id"), settled.get("ok", 0), settled.get("ignored", 0),
            )  # fmt: skip

    # -- threads --------------------------------------------------------------------------------

    def _heartbeats(self) -> None:
        # At a fixed rate (the next one an interval after the last was sent, not after it was answered),
        # so a slow answer does not leave the leases unrenewed for longer than the interval.
        next_at = time.monotonic() + self.heartbeat_interval_s
        while not self._done.wait(max(0.0, next_at - time.monotonic())):
            next_at = max(next_at + self.heartbeat_interval_s, time.monotonic())
            try:
                self.heartbeat()
            except Exception:  # the heartbeat must outlive anything; the log says what happened
                log.exception("heartbeat failed")

    def heartbeat(self) -> None:
        """Tell the coordinator this farm is alive and what each slot does; stop what it says to stop."""
        stopping = self.stopping.is_set()
        slots = [slot.status(stopping) for slot in self.slots]
        with self._renewal_lock:  # after the slots: a task leaves its slot only once it is in here
            reporting = sorted(self._unreported)[:MAX_REPORTING]
        body = {"slots": slots, "reporting": reporting, "instance": self.instance}
        sent = time.monotonic()
        try:
            # An answer later than an interval is no use: the next heartbeat is due.
            answer = self._heartbeat_api.post(
                f"/api/farms/{self.farm_id}/heartbeat", body, timeout_s=self.heartbeat_interval_s
            )
        except (CoordinatorUnreachable, NoLeader) as exc:  # NoLeader: a takeover under way
            self.unreachable(exc)
            return
        except ApiError as exc:
            if exc.status == 404:  # the coordinator lost its state: join it again
                self.register(self._done)
            else:
                log.error("heartbeat refused: %s", exc)
            return
        self.reachable()
        self.renewed(sent)
        if isinstance(answer, dict):  # coordinators before reconciliation answer nothing
            self._reconcile(answer)

    def _reconcile(self, answer: Mapping[str, Any]) -> None:
        if answer.get("superseded"):
            if not self.superseded.is_set():
                log.error(
                    "another process registered as farm %s since this one did: this one kills its tasks and stops",
                    self.farm_id,
                )
            self.superseded.set()
            self.stopping.set()
            self._stop_tasks(None, f"another process registered as farm {self.farm_id}: task killed")
            return
        stop = [str(task_id) for task_id in answer.get("stop") or ()]
        if stop:
            log.warning("the coordinator no longer leases task(s) %s to this farm: killing them", ", ".join(stop))
            self._stop_tasks(stop, "no longer leased to this farm (the coordinator gave it up): task killed")

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
                self._delivered(report.task_id)  # it will not be taken later either
                continue
            self.reachable()
            self.log_settled({"task_id": report.task_id, **answer})
        return []
