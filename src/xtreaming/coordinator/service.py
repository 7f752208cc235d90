"""The coordinator service: the one place combining the state store, the broker and the scheduler.

Thread-safe: every public method holds one lock, so the API's threads, the background loop and
tests can call it at will. Time comes from an injected clock, and the background work is a
``run_once()`` the tests drive (no sleeping).

Durability. A lease is stored before it is handed out. A completion first appends the ``.ACK``
(and ``.DLQ``) records, then settles the store in one transaction (task gone, ledgers and retries
updated). A crash between the two redoes those messages after the restart: at-least-once, with
duplicates bounded by what was in flight. Consumer-group offsets (the ledger watermarks) are
committed to the broker every ``commit_interval_s``; the store's ledger is the source of truth.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from xtreaming.broker import Broker, Message, Record
from xtreaming.coordinator.catalog import Catalog
from xtreaming.coordinator.figures import BaseFigures, QueueFigures, base_figures, queue_figures
from xtreaming.coordinator.options import CoordinatorOptions
from xtreaming.coordinator.records import (
    BaseRecord,
    FarmRecord,
    LedgerRecord,
    Profile,
    QueueRecord,
    RetryRecord,
    SlotRecord,
    TaskMessage,
    TaskRecord,
    WindowRecord,
    WorkSettings,
)
from xtreaming.coordinator.results import Finished, Status, Verdict, ack_record, dlq_record
from xtreaming.coordinator.runtime import Pending, QueueRuntime, retried
from xtreaming.coordinator.scheduler import FreeSlot, Idle, explain, schedule
from xtreaming.coordinator.snapshot import MAX_PRIORITY, MIN_PRIORITY, Labels, Snapshot, labels_of
from xtreaming.coordinator.store import Store
from xtreaming.errors import FarmNotFound, TopicNotFound
from xtreaming.topics import TopicName

log = logging.getLogger("xtreaming.coordinator")

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def message_id(message: Message) -> str:
    """The stable id a worker sees for a message: ``topic/partition/offset``."""
    return f"{message.topic}/{message.partition}/{message.offset}"


@dataclass(frozen=True, slots=True)
class LeasedMessage:
    message: Message
    attempt: int

    @property
    def id(self) -> str:
        return message_id(self.message)


@dataclass(frozen=True, slots=True)
class Assignment:
    """A task handed to one farm slot."""

    task_id: str
    topic: TopicName
    slot: int
    settings: WorkSettings
    messages: tuple[LeasedMessage, ...]
    deadline_at: datetime


@dataclass(frozen=True, slots=True)
class Report:
    """A farm's result for a task: a verdict per message id, and the default for the others."""

    default: Verdict
    verdicts: Mapping[str, tuple[Verdict, str | None]]
    detail: str | None = None
    #: False when the attempt failed through no fault of the messages (a lost farm): retry at once.
    backoff: bool = True


@dataclass(frozen=True, slots=True)
class Settled:
    """What a completion did: counts per outcome; ``accepted`` is False for an unknown or late task."""

    accepted: bool
    ok: int = 0
    retried: int = 0
    dead: int = 0
    ignored: int = 0


@dataclass(slots=True)
class _Task:
    record: TaskRecord
    queue: QueueRuntime
    entries: list[Pending]
    done: int | None = None
    total: int | None = None


@dataclass(slots=True)
class _Farm:
    record: FarmRecord
    labels: Labels
    lost: bool = False


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
        self._queues: dict[str, QueueRuntime] = {}
        self._farms: dict[str, _Farm] = {}
        self._tasks: dict[str, _Task] = {}
        self._expired: OrderedDict[str, _Task] = OrderedDict()
        self._pending_tasks: dict[tuple[str, int, int], str] = {}  # restored tasks whose messages are unread
        self._snapshot: Snapshot | None = None
        self._dirty: set[str] = set()
        self._result_topics: set[str] = set()
        self._committed: dict[tuple[str, int], int] = {}
        self._next_discovery = 0.0
        self._next_commit = 0.0
        self._load()

    # -- start-up -------------------------------------------------------------------------------

    def _load(self) -> None:
        """Rebuild memory from the store: queues, farms, ledgers, retries, and the tasks in flight."""
        ledgers = {(r.topic, r.partition): r.state for r in self.store.load_ledgers()}
        retries = {(r.topic, r.partition, r.offset): r for r in self.store.load_retries()}
        for record in self.store.list_queues():
            self._adopt(record, ledgers)
        for farm in self.store.list_farms():
            self._farms[farm.id] = _Farm(farm, labels_of(farm.labels))
        for task in self.store.active_tasks():
            queue = self._queues.get(task.topic)
            if queue is None:
                continue
            self._tasks[task.id] = _Task(task, queue, [])
            queue.running.add(task.id)
            queue.hold_keys(m.key for m in task.messages)
            for m in task.messages:
                self._pending_tasks[(task.topic, m.partition, m.offset)] = task.id
        self._restored_retries = retries
        for queue in self._queues.values():
            self._catch_up(queue)

    def _adopt(self, record: QueueRecord, ledgers: Mapping[tuple[str, int], object]) -> QueueRuntime:
        queue = QueueRuntime(record)
        for partition in range(self.broker.partition_count(record.topic)):
            state = ledgers.get((record.topic, partition))
            queue.restore_partition(partition, state if state is not None else None)  # type: ignore[arg-type]
        dlq = TopicName.parse(record.topic).dlq
        try:
            queue.dead = sum(self.broker.end_offsets(dlq).values())
            self._result_topics.add(dlq)
        except TopicNotFound:
            pass  # nothing died yet
        self._queues[record.topic] = queue
        self._dirty.add(record.topic)
        return queue

    def _catch_up(self, queue: QueueRuntime) -> None:
        """After a restart, read each partition up to its restored tasks' messages (they are in flight)."""
        for partition, runtime in queue.partitions.items():
            targets = [o for (t, p, o) in self._pending_tasks if t == queue.topic and p == partition]
            if targets:
                runtime.end = max(runtime.end, max(targets) + 1)
                self._read(queue, partition, until=max(targets) + 1)

    # -- background work ------------------------------------------------------------------------

    def run_once(self) -> None:
        """One pass of the background loop: discover topics, read ahead, expire, commit offsets."""
        now_s = time.monotonic()
        with self._lock:
            now = self._clock()
            if now_s >= self._next_discovery:
                self.discover()
                self._next_discovery = now_s + self.options.discovery_interval_s
            fresh = self.refresh()
            expired = self.expire(now)
            if now_s >= self._next_commit:
                self.commit_offsets()
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
                self._adopt(record, {})
                added.append(name)
                log.info("queue %s registered (priority %d)", name, record.settings.priority)
            return added

    def refresh(self, topics: Iterable[str] | None = None) -> int:
        """Read ahead every queue (or those of ``topics``); returns how many messages became pending."""
        with self._lock:
            fresh = 0
            for name in self._queues if topics is None else topics:
                queue = self._queues[name]
                ends = self.broker.end_offsets(name)
                for partition, end in ends.items():
                    runtime = queue.restore_partition(partition, None)
                    runtime.end = end
                    fresh += self._read(queue, partition)
            return fresh

    def _read(self, queue: QueueRuntime, partition: int, until: int | None = None) -> int:
        runtime = queue.partitions[partition]
        added = 0
        while True:
            if until is not None and runtime.next_read < until:
                room = until - runtime.next_read
            else:
                room = runtime.room(queue.buffered.get(partition, 0), queue.read_ahead)
            if room <= 0:
                return added
            messages = self.broker.read(queue.topic, partition, runtime.next_read, max_records=min(room, 1000))
            if not messages:
                return added
            for message in messages:
                if not runtime.ledger.hand_out(message.offset):
                    continue  # finished before a restart
                added += self._place(queue, message)

    def _place(self, queue: QueueRuntime, message: Message) -> int:
        """A message just read: part of a restored task, a restored retry, or fresh work."""
        where = (queue.topic, message.partition, message.offset)
        task_id = self._pending_tasks.pop(where, None)
        if task_id is not None and task_id in self._tasks:
            attempt = next(m.attempt for m in self._tasks[task_id].record.messages if m.offset == message.offset)
            self._tasks[task_id].entries.append(Pending(message, attempt))
            return 0
        retry = self._restored_retries.pop(where, None)
        if retry is not None:
            queue.add_pending(Pending(message, retry.attempts + 1, retry.not_before, retry.errors))
        else:
            queue.add_pending(Pending(message))
        self._dirty.add(queue.topic)
        return 1

    def commit_offsets(self) -> None:
        """Commit each partition's watermark as the group's offset, where it moved."""
        with self._lock:
            for queue in self._queues.values():
                moved = {}
                for partition, runtime in queue.partitions.items():
                    watermark = runtime.ledger.watermark
                    if self._committed.get((queue.topic, partition)) != watermark:
                        moved[partition] = watermark
                if moved:
                    self.broker.commit(self.options.group, queue.topic, moved)
                    for partition, watermark in moved.items():
                        self._committed[(queue.topic, partition)] = watermark

    # -- farms ----------------------------------------------------------------------------------

    def register_farm(self, name: str, labels: Mapping[str, str], slots: int) -> FarmRecord:
        """Register (or re-register, after a restart of either side) the farm called ``name``."""
        with self._lock:
            now = self._clock()
            known = self._farms.get(name)
            record = FarmRecord(
                id=name,
                name=name,
                labels=dict(labels),
                slots=slots,
                heartbeat_interval_s=self.options.heartbeat_interval_s,
                registered_at=known.record.registered_at if known else now,
                last_heartbeat_at=now,
            )
            self.store.put_farm(record)
            self._farms[name] = _Farm(record, labels_of(labels))
            self._changed.notify_all()
            return record

    def heartbeat(self, farm_id: str, slots: Sequence[SlotRecord]) -> None:
        """A farm is alive; ``slots`` describe its workers (state, pid, progress, RSS)."""
        with self._lock:
            farm = self._farm(farm_id)
            now = self._clock()
            self.store.record_heartbeat(farm_id, now, slots)
            farm.record = replace(farm.record, last_heartbeat_at=now)
            farm.lost = False
            for slot in slots:
                task = self._tasks.get(slot.task_id) if slot.task_id else None
                if task is not None and slot.total:
                    task.done, task.total = slot.done, slot.total

    def _farm(self, farm_id: str) -> _Farm:
        farm = self._farms.get(farm_id)
        if farm is None:
            raise FarmNotFound(f"farm {farm_id!r} is not registered; register it first")
        return farm

    # -- leases ---------------------------------------------------------------------------------

    def lease(self, farm_id: str, slots: Sequence[int]) -> list[Assignment]:
        """Tasks for the farm's idle ``slots`` (indexes), as many as there is work for; never waits."""
        with self._lock:
            farm = self._farm(farm_id)
            now = self._clock()
            farm.record = replace(farm.record, last_heartbeat_at=now)
            farm.lost = False
            assignments = []
            for slot in slots:
                decision = schedule(self._current_snapshot(), FreeSlot(farm_id, farm.labels), now)
                if isinstance(decision, Idle):
                    break
                assignments.append(self._start_task(self._queues[decision.queue], farm_id, slot, decision, now))
            return assignments

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

    def wake(self) -> None:
        """Wake long-polling farms (new messages, freed capacity, changed settings)."""
        with self._lock:
            self._changed.notify_all()

    def _start_task(self, queue: QueueRuntime, farm_id: str, slot: int, lease: object, now: datetime) -> Assignment:
        messages = lease.messages  # type: ignore[attr-defined]
        entries = [queue.take(m.partition, m.offset) for m in messages]
        task_id = uuid.uuid4().hex
        settings = queue.record.settings
        record = TaskRecord(
            id=task_id,
            topic=queue.topic,
            farm_id=farm_id,
            slot=slot,
            messages=tuple(
                TaskMessage(e.message.partition, e.message.offset, e.message.key, e.attempt) for e in entries
            ),
            leased_at=now,
            deadline_at=now + timedelta(seconds=settings.timeout_s + self.options.lease_grace_s),
        )
        self.store.add_task(record)
        self._tasks[task_id] = _Task(record, queue, entries)
        queue.running.add(task_id)
        queue.last_served = now
        queue.hold_keys(e.message.key for e in entries)
        for partition in {e.message.partition for e in entries}:
            self._read(queue, partition)  # top the read-ahead up at once: the next slot may want it
        self._dirty.add(queue.topic)
        return Assignment(
            task_id=task_id,
            topic=TopicName.parse(queue.topic),
            slot=slot,
            settings=settings,
            messages=tuple(LeasedMessage(e.message, e.attempt) for e in entries),
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
        with self._lock:
            task = self._tasks.pop(task_id, None)
            if task is None:
                return self._late(task_id, report)
            settled = self._settle(task, report, self._clock())
            self._changed.notify_all()
            return settled

    def expire(self, now: datetime | None = None) -> int:
        """Expire tasks past their deadline and the tasks of lost farms; returns how many expired."""
        with self._lock:
            now = now or self._clock()
            lost = self._find_lost_farms(now)
            overdue = [t for t in self._tasks.values() if t.record.deadline_at <= now or t.record.farm_id in lost]
            for task in overdue:
                del self._tasks[task.record.id]
                why = "farm lost" if task.record.farm_id in lost else "deadline passed"
                detail = f"lease expired ({why}): no result from farm {task.record.farm_id} slot {task.record.slot}"
                self._settle(task, Report(Verdict.RETRY, {}, detail, backoff=why == "deadline passed"), now)
                self._remember_expired(task)
            return len(overdue)

    def _find_lost_farms(self, now: datetime) -> set[str]:
        lost = set()
        for farm in self._farms.values():
            silence = timedelta(seconds=farm.record.heartbeat_interval_s * self.options.lost_after_heartbeats)
            if farm.record.last_heartbeat_at + silence <= now:
                if not farm.lost:
                    log.warning("farm %s lost: silent since %s", farm.record.id, farm.record.last_heartbeat_at)
                farm.lost = True
                lost.add(farm.record.id)
        return lost

    def _remember_expired(self, task: _Task) -> None:
        self._expired[task.record.id] = task
        while len(self._expired) > self.options.remembered_expired_tasks:
            self._expired.popitem(last=False)

    def _late(self, task_id: str, report: Report) -> Settled:
        task = self._expired.get(task_id)
        if task is None:
            return Settled(accepted=False)
        queue = task.queue
        finished: list[Finished] = []
        now = self._clock()
        for entry in task.entries:
            m = entry.message
            verdict = report.verdicts.get(message_id(m), (report.default, report.detail))[0]
            runtime = queue.partitions[m.partition]
            if verdict is not Verdict.OK or runtime.ledger.is_finished(m.offset):
                continue
            if (m.partition, m.offset) in queue.pending:
                queue.take(m.partition, m.offset)
                self._dirty.add(queue.topic)
            finished.append(self._finished(task, entry, Status.OK, "late report after the lease expired", now))
        if finished:
            self._write_results(queue, finished)
            self._record(queue, task_ids=[], finished=finished, retries=[])
        return Settled(accepted=False, ok=len(finished), ignored=len(task.entries) - len(finished))

    def _settle(self, task: _Task, report: Report, now: datetime) -> Settled:
        queue = task.queue
        settings = queue.record.settings
        finished: list[Finished] = []
        retries: list[Pending] = []
        ignored = 0
        for entry in task.entries:
            m = entry.message
            verdict, detail = report.verdicts.get(message_id(m), (report.default, report.detail))
            if queue.partitions[m.partition].ledger.is_finished(m.offset):
                ignored += 1  # a late report of an expired lease finished it first
            elif verdict is Verdict.OK:
                finished.append(self._finished(task, entry, Status.OK, detail, now))
            elif verdict is Verdict.ERROR or entry.attempt >= settings.max_attempts:
                error = f"attempt {entry.attempt}: {detail or verdict.value}"
                dying = replace(entry, errors=(*entry.errors, error))
                finished.append(self._finished(task, dying, Status.DEAD, detail, now))
            else:
                delay_s = settings.backoff_after(entry.attempt) if report.backoff else 0.0
                not_before = now + timedelta(seconds=delay_s)
                retries.append(retried(entry, f"attempt {entry.attempt}: {detail or 'retry'}", not_before))
        queue.running.discard(task.record.id)
        queue.release_keys(e.message.key for e in task.entries)
        for entry in retries:
            queue.add_pending(entry)
        queue.failures += len(retries)
        self._dirty.add(queue.topic)
        self._write_results(queue, finished)
        self._record(queue, task_ids=[task.record.id], finished=finished, retries=retries)
        dead = sum(1 for f in finished if f.status is Status.DEAD)
        return Settled(True, ok=len(finished) - dead, retried=len(retries), dead=dead, ignored=ignored)

    def _finished(self, task: _Task, entry: Pending, status: Status, detail: str | None, now: datetime) -> Finished:
        record = task.record
        return Finished(
            entry.message, status, entry.attempt, record.id, record.farm_id, record.slot, now, detail, entry.errors
        )

    def _write_results(self, queue: QueueRuntime, finished: Sequence[Finished]) -> None:
        """Append the ACK records (and DLQ records of dead messages) before the store settles."""
        if not finished:
            return
        topic = TopicName.parse(queue.topic)
        self._append(topic.ack, queue, [ack_record(f) for f in finished])
        dead = [dlq_record(f) for f in finished if f.status is Status.DEAD]
        if dead:
            self._append(topic.dlq, queue, dead)

    def _append(self, result_topic: str, queue: QueueRuntime, records: list[Record]) -> None:
        if result_topic not in self._result_topics:
            partitions = self.options.result_partitions or len(queue.partitions) or 1
            self.broker.create_topic(result_topic, partitions)
            self._result_topics.add(result_topic)
        self.broker.append(result_topic, records)

    def _record(
        self, queue: QueueRuntime, *, task_ids: list[str], finished: Sequence[Finished], retries: Sequence[Pending]
    ) -> None:
        """Finish the ledger entries and persist ledgers, retries and the task's end in one transaction."""
        touched = {f.message.partition for f in finished}
        for f in finished:
            queue.partitions[f.message.partition].ledger.finish(f.message.offset)
        queue.dead += sum(1 for f in finished if f.status is Status.DEAD)
        queue.speed.add(len(finished), self._clock())
        self.store.settle(
            finished_tasks=task_ids,
            ledgers=[LedgerRecord(queue.topic, p, queue.partitions[p].ledger.export()) for p in sorted(touched)],
            retries=[
                RetryRecord(
                    queue.topic,
                    e.message.partition,
                    e.message.offset,
                    e.attempt - 1,
                    e.not_before or self._clock(),
                    e.errors,
                )
                for e in retries
            ],
            cleared_retries=[(queue.topic, f.message.partition, f.message.offset) for f in finished if f.attempts > 1],
        )

    # -- producers ------------------------------------------------------------------------------

    def publish(self, topic: str, records: Sequence[Record], partitions: int = 1) -> int:
        """Append ``records`` to the work topic ``topic`` (created when missing) and read them at once."""
        name = str(TopicName.parse(topic))
        self.broker.create_topic(name, partitions)
        self.broker.append(name, records)
        with self._lock:
            if name not in self._queues:
                self.discover()
            if name in self._queues:
                self.refresh([name])
            self._changed.notify_all()
        return len(records)

    # -- operator controls (each audited by the catalog) ------------------------------------------

    def update_queue(
        self, topic: str, actor: str, *, paused: bool | None = None, priority: int | None = None
    ) -> QueueRecord:
        """Pause/resume a queue or set its priority; the next decision sees it."""
        with self._lock:
            queue = self.catalog.require(self._queues, topic)
            changes = {} if priority is None else {"priority": priority}
            queue.with_record(self.catalog.set_queue(topic, actor, paused=paused, changes=changes))
            self._dirty.add(topic)
            self._changed.notify_all()
            return queue.record

    def configure_queue(self, topic: str, actor: str, changes: Mapping[str, object]) -> QueueRecord:
        """Override settings of one queue (batch size, command, timeout, labels, …); audited."""
        with self._lock:
            queue = self.catalog.require(self._queues, topic)
            queue.with_record(self.catalog.set_queue(topic, actor, changes=changes))
            self._dirty.add(topic)
            self._changed.notify_all()
            return queue.record

    def add_profile(self, pattern: str, settings: WorkSettings, position: int | None, actor: str) -> Profile:
        """A profile for queues registered from now on; audited."""
        profile = self.store.add_profile(pattern, settings, position)
        self.store.audit(actor, "profile.add", pattern, {"id": profile.id, "position": profile.position})
        return profile

    def remove_profile(self, profile_id: int, actor: str) -> None:
        self.store.remove_profile(profile_id)
        self.store.audit(actor, "profile.remove", str(profile_id), {})

    def move_priority(self, topic: str, delta: int, actor: str) -> QueueRecord:
        """Raise (+1) or lower (-1) a queue's priority, staying within 0..9."""
        with self._lock:
            current = self.catalog.require(self._queues, topic).record.settings.priority
            return self.update_queue(topic, actor, priority=min(MAX_PRIORITY, max(MIN_PRIORITY, current + delta)))

    def update_base(
        self,
        name: str,
        actor: str,
        *,
        max_workers: int | None = None,
        min_workers: int | None = None,
        paused: bool | None = None,
    ) -> BaseRecord:
        """Change a base's limits or pause it; running tasks are not killed."""
        with self._lock:
            record = self.catalog.set_base(name, actor, max_workers=max_workers, min_workers=min_workers, paused=paused)
            self._bases_changed()
            self._changed.notify_all()
            return record

    def add_window(
        self, base: str, actor: str, *, weekdays: Iterable[int], start: str, end: str, max_workers: int
    ) -> WindowRecord:
        with self._lock:
            record = self.catalog.add_window(
                base, actor, weekdays=weekdays, start=start, end=end, max_workers=max_workers
            )
            self._bases_changed()
            self._changed.notify_all()
            return record

    def remove_window(self, window_id: int, actor: str) -> None:
        with self._lock:
            self.catalog.remove_window(window_id, actor)
            self._bases_changed()
            self._changed.notify_all()

    def explain(self, topic: str) -> str:
        """Why ``topic`` is not being served now, in the operator's words ("runnable" when it is)."""
        with self._lock:
            farms = [f.labels for f in self._farms.values() if not f.lost]
            return explain(self._current_snapshot(), topic, self._clock(), farms)

    # -- reading state --------------------------------------------------------------------------

    def queue(self, topic: str) -> QueueRuntime:
        with self._lock:
            return self.catalog.require(self._queues, topic)

    def queues(self) -> list[QueueRuntime]:
        with self._lock:
            return list(self._queues.values())

    def figures(self) -> tuple[list[QueueFigures], list[BaseFigures]]:
        """The operator screen's rows: every queue and every base, now."""
        with self._lock:
            now = self._clock()
            bases = base_figures(self._current_snapshot(), now)
            in_flight: dict[str, int] = {}
            for task in self._tasks.values():
                in_flight[task.record.topic] = in_flight.get(task.record.topic, 0) + len(task.record.messages)
            rows = [
                queue_figures(q, bases[q.record.base], in_flight.get(q.topic, 0), now) for q in self._queues.values()
            ]
            return rows, list(bases.values())

    def snapshot(self) -> Snapshot:
        with self._lock:
            return self._current_snapshot()

    def farms(self) -> list[tuple[FarmRecord, bool, int]]:
        """Each farm, whether it is lost, and how many of its slots run a task."""
        with self._lock:
            self._find_lost_farms(self._clock())
            busy: dict[str, int] = {}
            for task in self._tasks.values():
                busy[task.record.farm_id] = busy.get(task.record.farm_id, 0) + 1
            return [(f.record, f.lost, busy.get(f.record.id, 0)) for f in self._farms.values()]

    def tasks_of(self, topic: str) -> list[TaskRecord]:
        with self._lock:
            return [t.record for t in self._tasks.values() if t.record.topic == topic]

    def now(self) -> datetime:
        return self._clock()
