"""Settling a task: each message's outcome from the farm's report, then ACK/DLQ records, ledger
progress, retries with back-off, and one store transaction.

Order matters for durability: the ``.ACK``/``.DLQ`` records are appended before the store
settles. A crash in between redoes those messages after the restart (at-least-once: duplicates
bounded by what was in flight); the other order could lose an ACK.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, MutableSet, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from xtreaming.broker import Broker, Message, Record
from xtreaming.coordinator.options import CoordinatorOptions
from xtreaming.coordinator.records import LedgerRecord, RetryRecord
from xtreaming.coordinator.results import Finished, Status, Verdict, ack_records, dlq_record
from xtreaming.coordinator.runtime import Pending, QueueRuntime, TaskRuntime, retried
from xtreaming.coordinator.store import Store


def message_id(message: Message) -> str:
    """The stable id a worker sees for a message: ``topic/partition/offset``."""
    return f"{message.topic}/{message.partition}/{message.offset}"


@dataclass(frozen=True, slots=True)
class Report:
    """A farm's result for a task: a verdict per message id, and the default for the others."""

    default: Verdict
    verdicts: Mapping[str, tuple[Verdict, str | None]]
    detail: str | None = None
    #: False when the attempt failed through no fault of the messages (a lost farm): retry at once.
    backoff: bool = True

    def verdict(self, message: Message) -> tuple[Verdict, str | None]:
        if not self.verdicts:  # the usual report: the exit code's verdict for every message
            return self.default, self.detail
        return self.verdicts.get(message_id(message), (self.default, self.detail))


@dataclass(frozen=True, slots=True)
class Settled:
    """What a completion did: counts per outcome; ``accepted`` is False for an unknown or late task."""

    accepted: bool
    ok: int = 0
    retried: int = 0
    dead: int = 0
    ignored: int = 0


class Settlement:
    """Applies reports to queues and persists the result (see the module docstring)."""

    def __init__(
        self,
        broker: Broker,
        store: Store,
        options: CoordinatorOptions,
        clock: Callable[[], datetime],
        dirty: MutableSet[str],
    ) -> None:
        self.broker = broker
        self.store = store
        self.options = options
        self._clock = clock
        self._dirty = dirty
        self._result_topics: set[str] = set()
        self._batch: _Batch | None = None

    @contextmanager
    def batched(self) -> Iterator[None]:
        """Settle several tasks with one append per result topic and one store write at the end:
        results first, then the store, as for a single settlement."""
        if self._batch is not None:
            yield
            return
        batch = self._batch = _Batch()
        try:
            yield
            for (topic, partitions), records in batch.results.items():
                self._write(topic, partitions, records)
            self.store.settle(
                finished_tasks=batch.tasks,
                ledgers=list(batch.ledgers.values()),
                retries=list(batch.retries.values()),
                cleared_retries=[key for key in batch.cleared if key not in batch.retries],
            )
        finally:
            self._batch = None

    def settle(self, task: TaskRuntime, report: Report, now: datetime) -> Settled:
        """Settle a task that was running: finished messages, retries, and its slot freed."""
        queue = task.queue
        settings = queue.record.settings
        finished: list[Finished] = []
        retries: list[Pending] = []
        ignored = 0
        for entry in task.entries:
            m = entry.message
            verdict, detail = report.verdict(m)
            if queue.partitions[m.partition].ledger.is_finished(m.offset):
                ignored += 1  # a late report of an expired lease finished it first
            elif verdict is Verdict.OK:
                finished.append(_finished(task, entry, Status.OK, detail, now))
            elif verdict is Verdict.ERROR or entry.attempt >= settings.max_attempts:
                dying = replace(entry, errors=(*entry.errors, f"attempt {entry.attempt}: {detail or verdict.value}"))
                finished.append(_finished(task, dying, Status.DEAD, detail, now))
            else:
                delay_s = settings.backoff_after(entry.attempt) if report.backoff else 0.0
                error = f"attempt {entry.attempt}: {detail or 'retry'}"
                retries.append(retried(entry, error, now + timedelta(seconds=delay_s)))
        queue.running.discard(task.record.id)
        queue.release_keys(e.message.key for e in task.entries)
        for entry in retries:
            queue.add_pending(entry)
        queue.failures += len(retries)
        self._dirty.add(queue.topic)
        had_retry_rows = {(f.message.partition, f.message.offset) for f in finished if f.attempts > 1}
        self._persist(queue, [task.record.id], finished, retries, had_retry_rows)
        dead = sum(1 for f in finished if f.status is Status.DEAD)
        return Settled(True, ok=len(finished) - dead, retried=len(retries), dead=dead, ignored=ignored)

    def settle_late(self, task: TaskRuntime, report: Report) -> Settled:
        """A report for a task whose lease expired: its "ok" messages that nobody finished since are
        finished now (first outcome wins); everything else was already retried."""
        queue = task.queue
        now = self._clock()
        finished: list[Finished] = []
        for entry in task.entries:
            m = entry.message
            if report.verdict(m)[0] is not Verdict.OK or queue.partitions[m.partition].ledger.is_finished(m.offset):
                continue
            if (m.partition, m.offset) in queue.pending:
                queue.take(m.partition, m.offset)
                self._dirty.add(queue.topic)
            finished.append(_finished(task, entry, Status.OK, "reported after its lease expired", now))
        if finished:  # the expiry stored a retry row for each of them
            self._persist(queue, [], finished, [], {(f.message.partition, f.message.offset) for f in finished})
        return Settled(accepted=False, ok=len(finished), ignored=len(task.entries) - len(finished))

    def _persist(
        self,
        queue: QueueRuntime,
        task_ids: list[str],
        finished: Sequence[Finished],
        retries: Sequence[Pending],
        cleared: set[tuple[int, int]],
    ) -> None:
        self._write_results(queue, finished)
        for f in finished:
            queue.partitions[f.message.partition].ledger.finish(f.message.offset)
        queue.dead += sum(1 for f in finished if f.status is Status.DEAD)
        queue.speed.add(len(finished), self._clock())
        touched = sorted({f.message.partition for f in finished})
        ledgers = [LedgerRecord(queue.topic, p, queue.partitions[p].ledger.export()) for p in touched]
        retry_rows = [
            RetryRecord(queue.topic, m.partition, m.offset, e.attempt - 1, e.not_before or self._clock(), e.errors)
            for e in retries
            for m in [e.message]
        ]
        cleared_rows = [(queue.topic, p, o) for p, o in sorted(cleared)]
        if self._batch is None:
            self.store.settle(
                finished_tasks=task_ids, ledgers=ledgers, retries=retry_rows, cleared_retries=cleared_rows
            )
            return
        self._batch.tasks += task_ids
        self._batch.ledgers.update({(r.topic, r.partition): r for r in ledgers})  # the latest state wins
        self._batch.retries.update({(r.topic, r.partition, r.offset): r for r in retry_rows})
        for key in cleared_rows:
            self._batch.retries.pop(key, None)
            self._batch.cleared.add(key)

    def _write_results(self, queue: QueueRuntime, finished: Sequence[Finished]) -> None:
        if not finished:
            return
        topic = queue.name
        self._append(topic.ack, queue, ack_records(finished))
        dead = [dlq_record(f) for f in finished if f.status is Status.DEAD]
        if dead:
            self._append(topic.dlq, queue, dead)

    def _append(self, result_topic: str, queue: QueueRuntime, records: list[Record]) -> None:
        partitions = self.options.result_partitions or len(queue.partitions) or 1
        if self._batch is not None:
            self._batch.results.setdefault((result_topic, partitions), []).extend(records)
        else:
            self._write(result_topic, partitions, records)

    def _write(self, result_topic: str, partitions: int, records: list[Record]) -> None:
        if result_topic not in self._result_topics:
            self.broker.create_topic(result_topic, partitions)
            self._result_topics.add(result_topic)
        self.broker.append(result_topic, records)


@dataclass(slots=True)
class _Batch:
    """Writes collected by ``Settlement.batched``."""

    results: dict[tuple[str, int], list[Record]] = field(default_factory=dict)
    tasks: list[str] = field(default_factory=list)
    ledgers: dict[tuple[str, int], LedgerRecord] = field(default_factory=dict)
    retries: dict[tuple[str, int, int], RetryRecord] = field(default_factory=dict)
    cleared: set[tuple[str, int, int]] = field(default_factory=set)


def _finished(task: TaskRuntime, entry: Pending, status: Status, detail: str | None, now: datetime) -> Finished:
    r = task.record
    return Finished(entry.message, status, entry.attempt, r.id, r.farm_id, r.slot, now, detail, entry.errors)
