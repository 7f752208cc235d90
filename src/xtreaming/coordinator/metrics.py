"""The coordinator's Prometheus metrics: its figures read at scrape time, outcomes counted by the hook.

Nothing here runs on the hot path but the settlement hook's count (one dictionary update per queue and
result of a settlement, outside the lock) and one histogram observation per HTTP request: the queue,
base and farm gauges are the operator screen's figures (``Coordinator.screen``), read when Prometheus
scrapes, never kept up to date as things change.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from operator import attrgetter, itemgetter
from typing import Final

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from xtreaming.coordinator.figures import QueueFigures
from xtreaming.coordinator.outcomes import Outcome, Result
from xtreaming.coordinator.service import Coordinator

#: Request durations: from a quick read (ms) to a long-poll lease waiting its whole timeout (tens of s).
REQUEST_BUCKETS_S: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
#: From a lease to its settlement: a COBSINC request (ms) to a batch of an import (minutes, hours).
TASK_BUCKETS_S: Final = (0.01, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 14400.0)
_TOPIC_AND_RESULT: Final = itemgetter(Outcome._fields.index("topic"), Outcome._fields.index("result"))
_TASK_AND_DURATION: Final = itemgetter(Outcome._fields.index("task_id"), Outcome._fields.index("duration_s"))
#: The route label of a request no route matched: paths outside the API would make a series each.
UNMATCHED: Final = "unmatched"


class OutcomeCounts:
    """A settlement listener counting outcomes per queue and result, and task durations, for the collector."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, Result]] = Counter()
        self._tasks = Histogram(
            "xtreaming_task_duration_seconds",
            "From a task's lease to its settlement (each settled task once).",
            buckets=TASK_BUCKETS_S,
            registry=registry,
        )

    def __call__(self, outcomes: Sequence[Outcome], /) -> None:
        # Counted at C speed (map, itemgetter): one call carries every message a farm's request settled.
        counted = Counter(map(_TOPIC_AND_RESULT, outcomes))
        durations = dict(map(_TASK_AND_DURATION, outcomes))
        durations.pop("", None)  # duplicates: they ran in no task
        with self._lock:
            self._counts.update(counted)
        for duration_s in durations.values():
            self._tasks.observe(duration_s)

    def counts(self) -> dict[tuple[str, Result], int]:
        with self._lock:
            return dict(self._counts)


#: Each queue's figures as gauges: name, help, and the figure (``QueueFigures``) it shows.
QUEUE_GAUGES: Final[tuple[tuple[str, str, Callable[[QueueFigures], float]], ...]] = (
    ("xtreaming_queue_pending_messages", "Messages not finished yet (in flight included).", attrgetter("pending")),
    ("xtreaming_queue_consumed_messages", "Messages finished (ok or dead).", attrgetter("consumed")),
    ("xtreaming_queue_retrying_messages", "Pending messages past their first attempt.", attrgetter("failures")),
    ("xtreaming_queue_dlq_messages", "Messages sent to the .DLQ topic.", attrgetter("dead")),
    (
        "xtreaming_queue_duplicate_messages",
        "Messages finished as duplicates of a pending or running one with their key (since the coordinator started).",
        attrgetter("duplicates"),
    ),
    ("xtreaming_queue_running_tasks", "Tasks of the queue running now.", attrgetter("workers")),
    ("xtreaming_queue_in_flight_messages", "Messages in running tasks.", attrgetter("in_flight")),
    ("xtreaming_queue_rate_messages_per_second", "Messages finished per second, lately.", attrgetter("speed")),
    ("xtreaming_queue_priority", "The queue's priority (0..9, highest first).", attrgetter("priority")),
)


class CoordinatorCollector(Collector):
    """The coordinator's figures at scrape time (see the module docstring)."""

    def __init__(self, coordinator: Coordinator, outcomes: OutcomeCounts) -> None:
        self._coordinator = coordinator
        self._outcomes = outcomes

    def collect(self) -> Iterator[Metric]:
        screen = self._coordinator.screen()
        queue_labels = ["queue", "base", "kind"]
        gauges = [
            (GaugeMetricFamily(name, help_text, labels=queue_labels), figure)
            for name, help_text, figure in QUEUE_GAUGES
        ]
        state = GaugeMetricFamily(
            "xtreaming_queue_state", "1 for the queue's state now.", labels=[*queue_labels, "state"]
        )
        for q in screen.queues:
            labels = [q.topic, q.base, q.kind]
            for gauge, figure in gauges:
                gauge.add_metric(labels, figure(q))
            state.add_metric([*labels, q.state], 1)
        yield from (gauge for gauge, _ in gauges)
        yield state

        in_use = GaugeMetricFamily("xtreaming_base_workers_in_use", "Workers the base runs now.", labels=["base"])
        limit = GaugeMetricFamily(
            "xtreaming_base_workers_limit", "The base's limit in force (its window's, or its default).", labels=["base"]
        )
        for b in screen.bases:
            in_use.add_metric([b.name], b.in_use)
            limit.add_metric([b.name], b.limit)
        yield from (in_use, limit)

        busy = GaugeMetricFamily("xtreaming_farm_slots_busy", "Slots of the farm running a task.", labels=["farm"])
        slots = GaugeMetricFamily("xtreaming_farm_slots", "Slots the farm registered.", labels=["farm"])
        lost = GaugeMetricFamily("xtreaming_farm_lost", "1 when the farm stopped heartbeating.", labels=["farm"])
        for farm, is_lost, running_slots in screen.farms:
            busy.add_metric([farm.id], running_slots)
            slots.add_metric([farm.id], farm.slots)
            lost.add_metric([farm.id], 1 if is_lost else 0)
        yield from (busy, slots, lost)

        settled = CounterMetricFamily(
            "xtreaming_outcomes",
            "Settled attempts by queue and result (ok, retry, dead, duplicate).",
            labels=["queue", "result"],
        )
        for (topic, result), count in sorted(self._outcomes.counts().items()):
            settled.add_metric([topic, str(result)], count)
        yield settled

        yield GaugeMetricFamily(
            "xtreaming_broker_up",
            "1 while the broker answers (0 from a failed call to the next whole pass).",
            value=self._up_broker(),
        )
        yield GaugeMetricFamily("xtreaming_store_up", "1 when the state store answers a read.", value=self._up_store())

    def _up_broker(self) -> int:
        return 1 if self._coordinator.broker_health.error is None else 0

    def _up_store(self) -> int:
        try:
            self._coordinator.store.list_audit(limit=1)  # one indexed row: the cheapest read the store offers
        except Exception:  # any failure is the answer: down
            return 0
        return 1


class RequestSeconds:
    """Each HTTP request's duration by method, route template and status, in a histogram of ``registry``'s."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._seconds = Histogram(
            "xtreaming_http_request_duration_seconds",
            "HTTP requests by method, route template and status (a lease's long-poll included).",
            ["method", "route", "status"],
            buckets=REQUEST_BUCKETS_S,
            registry=registry,
        )

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self._seconds.labels(method, route, str(status)).observe(seconds)


class RequestTimer:
    """ASGI middleware: each HTTP request timed into ``seconds``, named by the route the router matched."""

    def __init__(self, app: ASGIApp, seconds: RequestSeconds) -> None:
        self.app = app
        self._seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless a response starts

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")  # set by the router, on this very scope, once a route matched
            template = getattr(route, "path", None) or UNMATCHED
            self._seconds.observe(scope["method"], template, status, time.perf_counter() - started)
