"""The coordinator service: the one place combining the state store, the broker and the scheduler.

Thread-safe: every public method holds one lock (the operators' ``Coordinator.controls`` take the
same), so the API's threads, the background loop and tests can call it at will. Time comes from
an injected clock, and the background work is a ``run_once()`` the tests drive (no sleeping).
What memory holds lives in ``memory.py``, reading from the broker in ``intake.py``, settling
results in ``settlement.py``, the farms in ``farms.py``, configuration in ``catalog.py`` and the
operators' changes to it in ``controls.py``.

A lease is stored before it is handed out; consumer-group offsets (the ledger watermarks) are
committed to the broker every ``commit_interval_s``; the store's ledger is the source of truth.

Outages. When the broker or the store fails in the middle of a change (an ACK append during a
settlement, a lease being stored), memory may be ahead of the store: it is reloaded from the
store, as a restart would, before the next lease or completion; until the reload succeeds they
are refused with the error (HTTP 503: farms keep their results and retry). The API's reads keep
answering from memory meanwhile, and the background loop shows the broker as down.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Final

from xtreaming.broker import Broker, Record
from xtreaming.coordinator.catalog import Catalog
from xtreaming.coordinator.controls import Controls
from xtreaming.coordinator.core.pending import PendingMessage
from xtreaming.coordinator.core.scheduler import FreeSlot, Idle, Lease, explain, schedule
from xtreaming.coordinator.core.snapshot import Snapshot
from xtreaming.coordinator.figures import BaseFigures, QueueFigures, screen_figures
from xtreaming.coordinator.memory import Memory
from xtreaming.coordinator.options import CoordinatorOptions
from xtreaming.coordinator.records import FarmRecord, SlotRecord, TaskRecord, WorkSettings
from xtreaming.coordinator.runtime import QueueRuntime, TaskRuntime
from xtreaming.coordinator.settlement import Report, Settled
from xtreaming.coordinator.store import Store
from xtreaming.errors import BrokerUnavailable, StoreUnavailable
from xtreaming.topics import TopicName

__all__ = ["Assignment", "Coordinator", "Report", "Settled"]

log = logging.getLogger("xtreaming.coordinator")

#: A lease answer takes no further task once it carries this many messages: the farm starts those
#: while the coordinator prepares the next (a farm asks again at once for its slots still idle),
#: rather than every slot waiting for the last one's task. Small tasks still go many to an answer.
ANSWER_MESSAGES: Final = 1000

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Assignment:
    """A task handed to one farm slot."""

    task_id: str
    topic: TopicName
    slot: int
    settings: WorkSettings
    #: The messages (values included) and the attempt each is on.
    messages: tuple[PendingMessage, ...]
    deadline_at: datetime


class Coordinator:
    """Keeps the site's queues, leases and ledgers; see the module docstring."""

    def __init__(
        self, store: Store, broker: Broker, options: CoordinatorOptions | None = None, clock: Clock = utc_now
    ) -> None:
        self.store = store
        self.broker = broker
        self.options = options or CoordinatorOptions()
        self._clock = clock
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self.catalog = Catalog(store, self.options)
        self.controls = Controls(self.catalog, self._changed, self.queue, self._queue_changed, self._bases_changed)
        self._next_discovery = 0.0
        self._next_commit = 0.0
        #: Why memory may be ahead of the store (a write failed midway), or None: see the module docstring.
        self._stale: str | None = None
        self._use(Memory.load(store, broker, self.options, clock))

    def _use(self, memory: Memory) -> None:
        """Work on ``memory`` from now on; the scheduler's snapshot is built anew from it."""
        self._queues, self._farms, self._tasks = memory.queues, memory.farms, memory.tasks
        self._dirty, self._intake, self._settlement = memory.dirty, memory.intake, memory.settlement
        self._snapshot: Snapshot | None = None

    @contextmanager
    def _consistent(self) -> Iterator[None]:
        """Around a change that writes to the broker or the store: reload first if memory is stale,
        and mark it stale when one of them fails midway (see the module docstring)."""
        if self._stale is not None:
            self._reload()
        try:
            yield
        except (BrokerUnavailable, StoreUnavailable) as exc:
            if self._stale is None:
                log.warning("memory will be reloaded from the state store: a change failed midway: %s", exc)
            self._stale = str(exc)
            raise

    def _reload(self) -> None:
        """Load memory again from the store, as a restart would; the old memory stays if this fails."""
        self._use(Memory.load(self.store, self.broker, self.options, self._clock))
        log.warning("memory reloaded from the state store (it was stale after: %s)", self._stale)
        self._stale = None
        self._changed.notify_all()

    # -- background work ------------------------------------------------------------------------

    def run_once(self) -> None:
        """One pass of the background loop: discover topics, read ahead, expire, commit offsets."""
        now_s = time.monotonic()
        with self._lock:
            if self._stale is not None:
                self._reload()
            now = self._clock()
            if now_s >= self._next_discovery:
                self.discover()
                self._next_discovery = now_s + self.options.discovery_interval_s
            fresh = self._intake.refresh()
            expired = self.expire(now)
            if now_s >= self._next_commit:
                self._intake.commit_offsets(self.options.group)
                self._next_commit = now_s + self.options.commit_interval_s
            if fresh or expired:
                self._changed.notify_all()

    def discover(self) -> list[str]:
        """Register work topics that appeared on the broker; returns the new ones."""
        with self._lock:
            added = []
            for name in self.broker.list_topics():
                if name in self._queues:
                    continue
                topic = self.catalog.work_topic(name)
                if topic is None:
                    continue
                record = self.catalog.register_queue(topic, self._clock())
                if self._intake.adopt(record, {}) is not None:
                    added.append(name)
                log.info("queue %s registered (priority %d)", name, record.settings.priority)
            if added:  # a new queue may bring a new base, which the snapshot does not have yet
                self._bases_changed()
            return added

    def refresh(self) -> int:
        """Read ahead every queue; returns how many messages became pending."""
        with self._lock:
            return self._intake.refresh()

    def commit_offsets(self) -> None:
        """Commit each partition's watermark as the group's offset, where it moved."""
        with self._lock:
            self._intake.commit_offsets(self.options.group)

    # -- farms ----------------------------------------------------------------------------------

    def register_farm(self, name: str, labels: Mapping[str, str], slots: int) -> FarmRecord:
        """Register (or re-register, after a restart of either side) the farm called ``name``."""
        with self._lock:
            record = self._farms.register(name, labels, slots, self._clock())
            self._changed.notify_all()
            return record

    def heartbeat(self, farm_id: str, slots: Sequence[SlotRecord]) -> None:
        """A farm is alive; the progress its ``slots`` report goes to their tasks."""
        with self._lock:
            self._farms.heartbeat(farm_id, self._clock())
            for slot in slots:
                task = self._tasks.get(slot.task_id) if slot.task_id else None
                if task is not None and slot.total:
                    task.done, task.total = slot.done, slot.total

    # -- leases ---------------------------------------------------------------------------------

    def lease(self, farm_id: str, slots: Sequence[int]) -> list[Assignment]:
        """Tasks for the farm's idle ``slots`` (indexes), as many as there is work for, until they carry
        ``ANSWER_MESSAGES`` messages; never waits."""
        with self._lock, self._consistent():
            farm = self._farms.require(farm_id)
            now = self._clock()
            farm.record = replace(farm.record, last_heartbeat_at=now)
            farm.lost = False
            assignments: list[Assignment] = []
            records: list[TaskRecord] = []
            carried = 0
            for slot in slots:
                if carried >= ANSWER_MESSAGES:
                    break
                decision = schedule(self._current_snapshot(), FreeSlot(farm_id, farm.labels), now)
                if isinstance(decision, Idle):
                    break
                queue = self._queues[decision.queue]
                assignments.append(self._start_task(queue, farm_id, slot, decision, now, records))
                carried += len(decision.messages)
            self.store.add_tasks(records)  # stored before anything is handed out
            return assignments

    def settle_and_lease(
        self, farm_id: str, completions: Sequence[tuple[str, Report]], slots: Sequence[int]
    ) -> tuple[list[Settled], list[Assignment]]:
        """Settle a farm's finished tasks, then lease its idle slots: one store transaction for both."""
        with self._lock, self._consistent(), self.store.transaction():
            try:
                # Results appended once; the log confirms them (its round trip or its commit) while the lease is made.
                with self._settlement.batched(overlap=True):
                    settled = [self.complete(task_id, report) for task_id, report in completions]
                return settled, self.lease(farm_id, slots) if slots else []
            finally:
                self._settlement.confirm()  # the results are in the log before the store commits

    def lease_wait(self, farm_id: str, slots: Sequence[int], timeout_s: float) -> list[Assignment]:
        """``lease``, waiting up to ``timeout_s`` for work to appear (long-poll)."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while True:
                assignments = self.lease(farm_id, slots)
                left = deadline - time.monotonic()
                if assignments or left <= 0:
                    return assignments
                self._changed.wait(left)

    def _start_task(
        self, queue: QueueRuntime, farm_id: str, slot: int, lease: Lease, now: datetime, records: list[TaskRecord]
    ) -> Assignment:
        entries = queue.take(lease.messages)
        leased = tuple(entries)
        task_id = uuid.uuid4().hex
        settings = queue.record.settings
        record = TaskRecord(
            id=task_id,
            topic=queue.topic,
            farm_id=farm_id,
            slot=slot,
            messages=leased,
            leased_at=now,
            deadline_at=now + timedelta(seconds=settings.timeout_s + self.options.lease_grace_s),
        )
        records.append(record)
        self._tasks[task_id] = TaskRuntime(record, queue, entries)
        queue.running.add(task_id)
        queue.last_served = now
        queue.hold_keys(e.key for e in entries)
        for partition in {e.partition for e in entries}:
            with suppress(BrokerUnavailable):  # read fully or not at all; the background loop retries
                self._intake.read(queue, partition)  # top up at once: the next slot may want it
        self._dirty.add(queue.topic)
        return Assignment(
            task_id=task_id,
            topic=queue.name,
            slot=slot,
            settings=settings,
            messages=leased,
            deadline_at=record.deadline_at,
        )

    def _current_snapshot(self) -> Snapshot:
        if self._snapshot is None:
            self._snapshot = Snapshot.build(
                (q.state() for q in self._queues.values()), self.catalog.base_states(), self.options.zone
            )
            self._dirty.clear()
        elif self._dirty:
            snapshot = self._snapshot
            for topic in self._dirty:
                queue = self._queues.get(topic)
                snapshot = snapshot.with_queue(queue.state()) if queue else snapshot.without_queue(topic)
            self._snapshot = snapshot
            self._dirty.clear()
        return self._snapshot

    def _queue_changed(self, topic: str) -> None:
        self._dirty.add(topic)

    def _bases_changed(self) -> None:
        self._snapshot = None

    # -- completion -----------------------------------------------------------------------------

    def progress(self, task_id: str, done: int, total: int) -> bool:
        """Record a task's progress; False for an unknown (finished or expired) task."""
        with self._lock:
            task = self._tasks.get(task_id)
            if task is None:
                return False
            task.done, task.total = done, total
            return True

    def complete(self, task_id: str, report: Report) -> Settled:
        """Settle a task with the farm's report. Idempotent: a repeated or late report changes no count,
        except that a late "ok" still finishes messages nobody has finished since (first outcome wins)."""
        with self._lock, self._consistent():
            task = self._tasks.pop(task_id, None)
            if task is None:
                return self._settlement.settle_late(task_id, report)
            settled = self._settlement.settle(task, report, self._clock())
            self._changed.notify_all()
            return settled

    def expire(self, now: datetime | None = None) -> int:
        """Expire tasks past their deadline and the tasks of lost farms; returns how many expired."""
        with self._lock, self._consistent():
            now = now or self._clock()
            lost = self._farms.find_lost(now)
            overdue = [t for t in self._tasks.values() if t.record.deadline_at <= now or t.record.farm_id in lost]
            for task in overdue:
                del self._tasks[task.record.id]
                self._settlement.expire(task, task.record.farm_id in lost, now)
            return len(overdue)

    # -- producers ------------------------------------------------------------------------------

    def publish(self, topic: str, records: Sequence[Record], partitions: int) -> int:
        """Append ``records`` to the work topic ``topic`` (created when missing) and read them at once."""
        name = str(TopicName.parse(topic))
        self.broker.create_topic(name, partitions)
        self.broker.append(name, records)
        with self._lock:
            if name not in self._queues:
                self.discover()
            if name in self._queues:
                self._intake.refresh([name])
            self._changed.notify_all()
        return len(records)

    # -- reading state --------------------------------------------------------------------------

    def explain(self, topic: str) -> str:
        """Why ``topic`` is not being served now, in the operator's words ("runnable" when it is)."""
        with self._lock:
            return explain(self._current_snapshot(), topic, self._clock(), self._farms.live_labels())

    def queue(self, topic: str) -> QueueRuntime:
        with self._lock:
            return self.catalog.require(self._queues, topic)

    def figures(self) -> tuple[list[QueueFigures], list[BaseFigures]]:
        """The operator screen's rows: every queue and every base, now."""
        with self._lock:
            return screen_figures(self._current_snapshot(), self._queues.values(), self._tasks.values(), self._clock())

    def snapshot(self) -> Snapshot:
        with self._lock:
            return self._current_snapshot()

    def farms(self) -> list[tuple[FarmRecord, bool, int]]:
        """Each farm, whether it is lost, and how many of its slots run a task."""
        with self._lock:
            return self._farms.listing(self._clock(), Counter(t.record.farm_id for t in self._tasks.values()))

    def now(self) -> datetime:
        return self._clock()
