"""The coordinator's background loop: ``run_once()`` every interval, the reads ahead leases ask for, and the
watch of the urgent queues' ends (``log_watch.py``)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from xtreaming.coordinator.log_watch import LogWatch
from xtreaming.coordinator.service import Coordinator
from xtreaming.errors import BrokerUnavailable, NotLeader

log = logging.getLogger("xtreaming.coordinator")


class BackgroundLoop:
    """Runs ``coordinator.run_once()`` every ``interval_s`` in a thread; a pass that fails on the broker marks it
    down, a whole pass marks it up (``coordinator.broker_health``). A second thread reads ahead the queues
    whose read-ahead leases brought to half (``Coordinator.top_up_wanted``), as soon as they do; a third judges
    the keys of the queues taking one message per key ahead of those reads, pass after pass while the log holds
    keys it has not judged (``Coordinator.scout_ahead``). On a log that answers from this machine
    (``Broker.local``) a fourth watches the urgent queues' ends (``LogWatch``).

    A pass may wait on the broker for its whole timeout; it does so without the coordinator's lock
    (``Coordinator.run_once``), so the API answers meanwhile."""

    def __init__(self, coordinator: Coordinator, interval_s: float) -> None:
        self.coordinator = coordinator
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, name="xtreaming-coordinator-loop", daemon=True),
            threading.Thread(target=self._top_up, name="xtreaming-coordinator-reads", daemon=True),
            threading.Thread(target=self._scout, name="xtreaming-coordinator-scout", daemon=True),
        ]
        #: Whether the key scout's last pass found keys to judge: the next one follows at once.
        self._scout_behind = False
        self.watch: LogWatch | None = None
        if coordinator.broker.local:
            self.watch = LogWatch(coordinator.broker, coordinator.urgent_topics, coordinator.refresh)
            self._threads.append(threading.Thread(target=self._watch, name="xtreaming-coordinator-watch", daemon=True))

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        # The minute under way goes to the figure history too (a coordinator started within it adds to its point).
        self._guarded(lambda: self.coordinator.record_figures(partial=True), "figure history")

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._guarded(self.coordinator.run_once, "coordinator loop"):
                self.coordinator.broker_health.answered()  # a whole pass: up again
            self._stop.wait(self.interval_s)

    def _top_up(self) -> None:
        while not self._stop.is_set():
            if not self._guarded(lambda: self.coordinator.top_up_wanted(self.interval_s), "read-ahead"):
                self._stop.wait(self.interval_s)  # the broker is away: as often as the loop tries it, no more

    def _scout(self) -> None:
        while not self._stop.is_set():
            if not self._guarded(self._scout_pass, "key scout") or not self._scout_behind:
                self._stop.wait(self.interval_s)  # judged to the log's end (or the broker is away): a pass's while

    def _scout_pass(self) -> None:
        self._scout_behind = self.coordinator.scout_ahead() > 0

    def _watch(self) -> None:
        watch = self.watch
        while watch is not None and not self._stop.is_set():
            watched = self._guarded(watch.run_once, "urgent queues' watch")
            self._stop.wait(watch.next_wait_s if watched else self.interval_s)

    def _guarded(self, work: Callable[[], object], what: str) -> bool:
        """Run ``work``; False when it failed (the broker shown down when it was the broker)."""
        try:
            work()
        except NotLeader:  # deposed: the coordinator is about to be dropped (``serving.py``), nothing to report
            return False
        except BrokerUnavailable as exc:
            self.coordinator.broker_health.failed(exc)
            return False
        except Exception:  # the loop must survive anything; the log says what happened
            log.exception("%s failed; continuing", what)
            return False
        return True
