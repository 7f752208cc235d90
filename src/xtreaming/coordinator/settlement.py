"""Settling a task: each message's outcome from the farm's report (or from its lease expiring), then
ACK/DLQ records, ledger progress, retries with back-off, and one store transaction.

Order matters for durability: the ``.DLQ``, then the ``.ACK`` records are appended before the store
settles; the other order could lose an ACK. After a crash in between, the results in the log are
settled as memory is loaded (``result_recovery.py``): nothing is run, nor ACKed, again.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableSet, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import partial

from xtreaming.broker import Broker, Record
from xtreaming.coordinator.attempt_errors import attempt_error
from xtreaming.coordinator.core.ledger import PartitionLedger
from xtreaming.coordinator.core.pending import PendingMessage
from xtreaming.coordinator.fitting import Fit, append_results, begin_results, fit_ack, fit_dlq
from xtreaming.coordinator.key_index import Duplicate
from xtreaming.coordinator.key_scout import KeyScout
from xtreaming.coordinator.options import CoordinatorOptions
from xtreaming.coordinator.outcomes import Outcome, Result
from xtreaming.coordinator.records import LedgerRecord, RetryRecord
from xtreaming.coordinator.results import Finished, Status, ack_records, dlq_records
from xtreaming.coordinator.runtime import QueueRuntime, TaskRuntime, retried
from xtreaming.coordinator.store import Store
from xtreaming.wire.message_id import message_id
from xtreaming.wire.verdict import Verdict


@dataclass(frozen=True, slots=True)
class Report:
    """A farm's result for a task: a verdict per message id, and the default for the others."""

    default: Verdict
    verdicts: Mapping[str, tuple[Verdict, str | None]]
    detail: str | None = None
    #: False when the attempt failed through no fault of the messages (a lost farm): retry at once.
    backoff: bool = True

    @property
    def all_ok(self) -> bool:
        """Every message is ok (the usual report of a task that succeeded)."""
        return not self.verdicts and self.default is Verdict.OK

    def verdicts_of(
        self, topic: str, entries: Iterable[PendingMessage]
    ) -> Iterator[tuple[PendingMessage, Verdict, str | None]]:
        """Each of a task's messages with its verdict and detail."""
        if not self.verdicts:  # the usual report: the exit code's verdict for every message
            default, detail = self.default, self.detail
            for entry in entries:
                yield entry, default, detail
            return
        fallback = (self.default, self.detail)
        for entry in entries:
            verdict, detail = self.verdicts.get(message_id(topic, entry.partition, entry.offset), fallback)
            yield entry, verdict, detail


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
        scout: KeyScout,
    ) -> None:
        self.broker = broker
        #: Told the messages finished, so that the keys they held are let go (``key_scout.py``).
        self.scout = scout
        self.store = store
        self.options = options
        self._clock = clock
        self._dirty = dirty
        self._result_topics: set[str] = set()
        self._batch: _Batch | None = None
        self._unconfirmed: list[Callable[[], object]] = []
        #: Tasks whose lease expired lately, by id, for the reports that still come for them.
        self._expired: OrderedDict[str, TaskRuntime] = OrderedDict()
        #: The outcomes settled since the coordinator last took them, for the settlement hook; None while
        #: nobody listens, so that settling costs nothing more then.
        self.outcomes: list[Outcome] | None = None

    @contextmanager
    def batched(self, *, overlap: bool = False) -> Iterator[None]:
        """Settle several tasks with one append per result topic and one store write at the end:
        results first, then the store, as for a single settlement.

        With ``overlap`` the appends are only started (``Broker.begin_append``): the caller goes on
        while the log confirms them (Kafka's round trip, or the embedded log's commit of a large batch on
        a thread of its own), and must ``confirm`` them before its store transaction
        commits, which keeps the order results-then-store."""
        if self._batch is not None:
            yield
            return
        batch = self._batch = _Batch()
        try:
            yield
            # The DLQ records are in the log before the ACKs of the same deaths start (``result_recovery.py``): when
            # there are letters, the ACKs are appended once they are confirmed, as the appends are (``confirm``).
            letters = _Letters(
                [
                    begin_results(self.broker, self._result_topic(topic, partitions), records, fit)
                    for (topic, partitions, fit), records in batch.results.items()
                    if fit is fit_dlq
                ]
            )
            if letters.pending:  # confirmed by the ACK appends that follow them too
                self._unconfirmed.append(letters.confirmed)
            for (topic, partitions, fit), records in batch.results.items():
                if fit is fit_dlq:
                    continue
                result_topic = self._result_topic(topic, partitions)
                if letters.pending:
                    self._unconfirmed.append(partial(letters.then_append, self.broker, result_topic, records, fit))
                else:
                    self._unconfirmed.append(begin_results(self.broker, result_topic, records, fit))
            if not overlap:
                self.confirm()
            self.store.settle(
                finished_tasks=batch.tasks,
                ledgers=_exported(batch.ledgers),
                retries=list(batch.retries.values()),
                cleared_retries=[key for key in batch.cleared if key not in batch.retries],
            )
        finally:
            self._batch = None

    def confirm(self) -> None:
        """Wait until the results ``batched(overlap=True)`` started appending are in the log; raises
        what an append raised, once every one is done."""
        confirm_all(self.take_unconfirmed())

    def take_unconfirmed(self) -> list[Callable[[], object]]:
        """The appends ``batched(overlap=True)`` started, for the caller to ``confirm_all`` (out of the lock)."""
        unconfirmed, self._unconfirmed = self._unconfirmed, []
        return unconfirmed

    def settle(self, task: TaskRuntime, report: Report, now: datetime) -> Settled:
        """Settle a task that was running: finished messages, retries, and its slot freed."""
        return self.settle_all([(task, report)], now)[0]

    def settle_all(self, tasks: Sequence[tuple[TaskRuntime, Report]], now: datetime) -> list[Settled]:
        """``settle`` of each of ``tasks``, distinct tasks that were running (a farm's results, sent together): a
        settled task for each, in order. The usual reports, every message ok and none finished by anyone else
        meanwhile, are settled together per queue, in one pass each (one ACK batch, each ledger moved once, the
        queue's counts once); the others one by one, in order. The tasks' messages are their own, so the order
        between the two changes nothing."""
        answers: list[Settled | None] = [None] * len(tasks)
        usual: dict[str, list[tuple[int, dict[int, list[int]]]]] = {}
        for index, (task, report) in enumerate(tasks):
            queue = task.queue
            offsets = offsets_by_partition(task.entries)
            if report.all_ok and all(queue.partitions[p].ledger.all_in_flight(o) for p, o in offsets.items()):
                usual.setdefault(queue.topic, []).append((index, offsets))
            else:
                answers[index] = self._settle_judged(task, report, now)
        for group in usual.values():
            settled = self._settle_ok([tasks[index] for index, _ in group], [offsets for _, offsets in group], now)
            for (index, _), answer in zip(group, settled, strict=True):
                answers[index] = answer
        return answers  # type: ignore[return-value]  # every index was answered above

    def _settle_ok(
        self, tasks: Sequence[tuple[TaskRuntime, Report]], offsets: Sequence[Mapping[int, list[int]]], now: datetime
    ) -> list[Settled]:
        """Tasks of one queue whose every message is ok and still in flight (their ``offsets`` by partition),
        in bulk: their messages finished, their slots freed."""
        queue = tasks[0][0].queue
        ids = [task.record.id for task, _ in tasks]
        entries = [entry for task, _ in tasks for entry in task.entries]
        queue.running.difference_update(ids)
        queue.release_keys(entry.key for entry in entries)
        self._dirty.add(queue.topic)
        finished = [_finished(task, Status.OK, report.detail, task.entries, now) for task, report in tasks]
        moved: dict[int, list[int]] = {}
        for each in offsets:
            for partition, its in each.items():
                moved.setdefault(partition, []).extend(its)
        self._persist(queue, ids, finished, [], offsets=moved)
        if self.outcomes is not None:
            for (task, _), done in zip(tasks, finished, strict=True):
                self.outcomes += _outcomes(task, [done], [], now)
        spent_s = sum(max(0.0, (now - task.record.leased_at).total_seconds()) for task, _ in tasks)
        queue.activity.task_settled(now, len(entries), spent_s)
        return [Settled(True, ok=len(task.entries)) for task, _ in tasks]

    def _settle_judged(self, task: TaskRuntime, report: Report, now: datetime) -> Settled:
        """Settle a task message by message (``_judge``): some failed, or were finished meanwhile by a late report."""
        queue = task.queue
        outcomes, retries, ignored = self._judge(queue, task.entries, report, now)
        queue.running.discard(task.record.id)
        queue.release_keys(e.key for e in task.entries)
        queue.add_pending(retries)
        queue.failures += len(retries)
        self._dirty.add(queue.topic)
        finished = [_finished(task, status, detail, messages, now) for (status, detail), messages in outcomes.items()]
        self._persist(queue, [task.record.id], finished, retries)
        if self.outcomes is not None:
            self.outcomes += _outcomes(task, finished, retries, now)
        ok = sum(len(f.messages) for f in finished if f.status is Status.OK)
        dead = sum(len(f.messages) for f in finished if f.status is Status.DEAD)
        queue.activity.task_settled(now, ok + dead, (now - task.record.leased_at).total_seconds())
        return Settled(True, ok=ok, retried=len(retries), dead=dead, ignored=ignored)

    def _judge(
        self, queue: QueueRuntime, entries: Sequence[PendingMessage], report: Report, now: datetime
    ) -> tuple[dict[tuple[Status, str | None], list[PendingMessage]], list[PendingMessage], int]:
        """Each message's fate: finished messages grouped by (status, detail), those to retry (their
        next attempt), and how many to ignore (finished meanwhile by a late report of an expired lease)."""
        settings = queue.record.settings
        ledgers = {partition: runtime.ledger for partition, runtime in queue.partitions.items()}
        outcomes: dict[tuple[Status, str | None], list[PendingMessage]] = {}
        retries: list[PendingMessage] = []
        ignored = 0
        for entry, verdict, detail in report.verdicts_of(queue.topic, entries):
            if ledgers[entry.partition].is_finished(entry.offset):
                ignored += 1
            elif verdict is Verdict.OK:
                outcomes.setdefault((Status.OK, detail), []).append(entry)
            elif verdict is Verdict.ERROR or entry.attempt >= settings.max_attempts:
                dying = replace(entry, errors=(*entry.errors, attempt_error(entry.attempt, detail or verdict.value)))
                outcomes.setdefault((Status.DEAD, detail), []).append(dying)
            else:
                delay_s = settings.backoff_after(entry.attempt) if report.backoff else 0.0
                error = attempt_error(entry.attempt, detail or "retry")
                retries.append(retried(entry, error, now + timedelta(seconds=delay_s)))
        return outcomes, retries, ignored

    def expire(self, task: TaskRuntime, farm_lost: bool, now: datetime) -> None:
        """Settle a task whose lease expired: every message is retried (at once when its farm was lost:
        not the messages' fault), and the task is remembered for a late report."""
        why = "farm lost" if farm_lost else "deadline passed"
        detail = f"lease expired ({why}): no result from farm {task.record.farm_id} slot {task.record.slot}"
        self.settle(task, Report(Verdict.RETRY, {}, detail, backoff=not farm_lost), now)
        self._remember(task)

    def release(self, task: TaskRuntime) -> int:
        """Give a task's messages back at once, on the attempt they were on: nothing runs them any more
        (their farm restarted, or its heartbeats show the slot doing something else), which is no fault
        of the messages. The task is remembered for a late report, as an expired one is; returns how
        many messages went back."""
        queue = task.queue
        queue.running.discard(task.record.id)
        queue.release_keys(e.key for e in task.entries)
        queue.add_pending([replace(e, not_before=None) for e in task.entries])
        self._dirty.add(queue.topic)
        # Only the task row goes: retry rows stay right, as no attempt is counted.
        self._persist(queue, [task.record.id], [], [], cleared=())
        self._remember(task)
        return len(task.entries)

    def finish_duplicates(self, duplicates: Iterable[tuple[QueueRuntime, Sequence[Duplicate]]], now: datetime) -> int:
        """Finish messages read while another with their key was pending or running (``Intake.take_duplicates``),
        none of them run: an ACK record each, status "duplicate" and a detail naming the message holding the
        key, the ledger moved and the store told (now, or at the end of ``batched``), as for any settlement;
        returns how many."""
        count = 0
        for queue, found in duplicates:
            finished = [  # each with its own detail; attempt 0: none was made
                Finished(
                    queue.topic, None, None, None, now, Status.DUPLICATE, _duplicate_of(queue, d),
                    [replace(d.entry, attempt=0)],
                )
                for d in found
            ]  # fmt: skip
            self._persist(queue, [], finished, [], cleared=())
            queue.duplicates += len(found)
            count += len(found)
            if self.outcomes is not None:
                self.outcomes += [
                    Outcome(
                        Result.DUPLICATE, f.topic, m.partition, m.offset, m.key, m.attempt, "", -1, "", 0.0, f.detail
                    )
                    for f in finished
                    for m in f.messages
                ]
        return count

    def _remember(self, task: TaskRuntime) -> None:
        """Keep a task no longer running for the report that may still come for it (the newest ones)."""
        self._expired[task.record.id] = task
        while len(self._expired) > self.options.remembered_expired_tasks:
            self._expired.popitem(last=False)

    def remembered(self, task_id: str) -> TaskRuntime | None:
        """The task ``task_id`` if its lease expired (or it was released) lately, for a report that still comes."""
        return self._expired.get(task_id)

    def settle_late(self, task_id: str, report: Report) -> Settled:
        """A report for a task no longer running. For one whose lease expired (and is still remembered),
        its "ok" messages that nobody finished since are finished now (first outcome wins); everything
        else was already retried. Nothing is accepted for an unknown or finished task."""
        task = self._expired.get(task_id)
        if task is None:
            return Settled(accepted=False)
        queue = task.queue
        ok: list[PendingMessage] = []
        for entry, verdict, _ in report.verdicts_of(queue.topic, task.entries):
            if verdict is Verdict.OK and not queue.partitions[entry.partition].ledger.is_finished(entry.offset):
                ok.append(entry)
        waiting = [e for e in ok if e.order in queue.pending]
        if waiting:  # back in pending for another attempt: that attempt is not needed any more
            queue.take(waiting)
            self._dirty.add(queue.topic)
        if ok:  # the expiry stored a retry row for each of them
            finished = _finished(task, Status.OK, "reported after its lease expired", ok, self._clock())
            self._persist(queue, [], [finished], [], cleared=ok)
            if self.outcomes is not None:
                self.outcomes += _outcomes(task, [finished], [], finished.finished_at)
        return Settled(accepted=False, ok=len(ok), ignored=len(task.entries) - len(ok))

    def _persist(
        self,
        queue: QueueRuntime,
        task_ids: list[str],
        finished: Sequence[Finished],
        retries: Sequence[PendingMessage],
        cleared: Iterable[PendingMessage] | None = None,
        offsets: Mapping[int, list[int]] | None = None,
    ) -> None:
        """Results appended, ledgers moved, and the store told (now, or at the end of ``batched``).
        ``cleared``: messages whose retry rows go (by default, those finished past their first attempt);
        ``offsets``: the finished messages' offsets by partition, when the caller has them already."""
        self._write_results(queue, finished)
        if offsets is None:
            offsets = offsets_by_partition([m for f in finished for m in f.messages])
        for partition, moved in offsets.items():
            queue.partitions[partition].ledger.finish_all(moved)
        for done in finished:
            if done.status is not Status.DUPLICATE:  # a duplicate holds no key
                self.scout.release(queue, done.messages)
        dead = sum(len(f.messages) for f in finished if f.status is Status.DEAD)
        queue.dead += dead
        self._count(queue, finished, retries, dead)
        ledgers = {(queue.topic, p): queue.partitions[p].ledger for p in sorted(offsets)}
        retry_rows = [
            RetryRecord(queue.topic, e.partition, e.offset, e.attempt - 1, e.not_before or self._clock(), e.errors)
            for e in retries
        ]
        if cleared is None:
            cleared = (m for f in finished for m in f.messages if m.attempt > 1)
        cleared_rows = sorted({(queue.topic, m.partition, m.offset) for m in cleared})
        if self._batch is None:
            self.store.settle(
                finished_tasks=task_ids, ledgers=_exported(ledgers), retries=retry_rows, cleared_retries=cleared_rows
            )
            return
        self._batch.tasks += task_ids
        self._batch.ledgers.update(ledgers)  # exported once, as the batch ends: a large one costs as it is long
        self._batch.retries.update({(r.topic, r.partition, r.offset): r for r in retry_rows})
        for key in cleared_rows:
            self._batch.retries.pop(key, None)
            self._batch.cleared.add(key)

    def _count(
        self, queue: QueueRuntime, finished: Sequence[Finished], retries: Sequence[PendingMessage], dead: int
    ) -> None:
        """The queue's activity (``activity.py``): speeds, failures and the last error. Duplicates ran nowhere:
        the speed (and the ETA from it) is the work's."""
        now = self._clock()
        ok = sum(len(f.messages) for f in finished if f.status is Status.OK)
        failing = [f.messages[-1] for f in finished if f.status is Status.DEAD]
        failing += retries[-1:]
        error = failing[-1].errors[-1] if failing and failing[-1].errors else None
        queue.activity.settled(now, ok=ok, dead=dead, retried=len(retries), error=error)
        if ok + dead < sum(len(f.messages) for f in finished):
            queue.activity.finished_without_running(now)

    def _write_results(self, queue: QueueRuntime, finished: Sequence[Finished]) -> None:
        """One append of the DLQ records, if any died, then one of the ACK records of every outcome: an ACK
        saying a message died is never in the log without its letter (``result_recovery.py``)."""
        if not finished:
            return
        topic, limit = queue.name, self.broker.max_record_bytes  # records cut to fit it before appending
        dead = [record for done in finished if done.status is Status.DEAD for record in dlq_records(done, limit)]
        if dead:
            self._append(topic.dlq, queue, dead, fit_dlq)
        self._append(topic.ack, queue, [record for done in finished for record in ack_records(done, limit)], fit_ack)

    def _append(self, result_topic: str, queue: QueueRuntime, records: list[Record], fit: Fit) -> None:
        """Append (or, in ``batched``, collect) result records; ``fit`` cuts one the broker refuses anyway."""
        partitions = self.options.result_partitions or len(queue.partitions) or 1
        if self._batch is not None:
            self._batch.results.setdefault((result_topic, partitions, fit), []).extend(records)
        else:
            append_results(self.broker, self._result_topic(result_topic, partitions), records, fit)

    def _result_topic(self, result_topic: str, partitions: int) -> str:
        """``result_topic``, created first when this coordinator has not written to it yet."""
        if result_topic not in self._result_topics:
            self.broker.create_topic(result_topic, partitions)
            self._result_topics.add(result_topic)
        return result_topic


@dataclass(slots=True)
class _Letters:
    """A batch's DLQ appends, begun: confirmed once, before any of the batch's ACKs is appended (an ACK saying a
    message died is never in the log without its letter)."""

    pending: Sequence[Callable[[], object]]
    _done: bool = False
    _error: BaseException | None = None

    def confirmed(self) -> None:
        """Wait for every letter's append (once); raise what one raised, every time."""
        if not self._done:
            self._done = True
            try:
                confirm_all(self.pending)
            except BaseException as exc:
                self._error = exc
        if self._error is not None:
            raise self._error

    def then_append(self, broker: Broker, topic: str, records: Sequence[Record], fit: Fit) -> None:
        """Append the ACK ``records`` once the letters are in the log; none when a letter's append failed."""
        self.confirmed()
        append_results(broker, topic, records, fit)


def confirm_all(unconfirmed: Iterable[Callable[[], object]]) -> None:
    """Wait for every one of the appends ``unconfirmed`` (``Broker.begin_append``); raise the first error among
    them once all are done, so that none is still on its way to the log."""
    first: BaseException | None = None
    for appended in unconfirmed:
        try:
            appended()
        except BaseException as exc:
            first = first or exc
    if first is not None:
        raise first


def offsets_by_partition(messages: Iterable[PendingMessage]) -> dict[int, list[int]]:
    """The offsets of ``messages``, by partition."""
    offsets: dict[int, list[int]] = {}
    for m in messages:
        offsets.setdefault(m.partition, []).append(m.offset)
    return offsets


@dataclass(slots=True)
class _Batch:
    """Writes collected by ``Settlement.batched``."""

    results: dict[tuple[str, int, Fit], list[Record]] = field(default_factory=dict)
    tasks: list[str] = field(default_factory=list)
    #: The ledgers the batch moved, by topic and partition, exported as it ends.
    ledgers: dict[tuple[str, int], PartitionLedger] = field(default_factory=dict)
    retries: dict[tuple[str, int, int], RetryRecord] = field(default_factory=dict)
    cleared: set[tuple[str, int, int]] = field(default_factory=set)


def _exported(ledgers: Mapping[tuple[str, int], PartitionLedger]) -> list[LedgerRecord]:
    """The state of ``ledgers`` to store, now."""
    return [LedgerRecord(topic, partition, ledger.export()) for (topic, partition), ledger in ledgers.items()]


def _finished(
    task: TaskRuntime, status: Status, detail: str | None, messages: Sequence[PendingMessage], now: datetime
) -> Finished:
    r = task.record
    return Finished(r.topic, r.id, r.farm_id, r.slot, now, status, detail, messages)


_RESULTS = {Status.OK: Result.OK, Status.DEAD: Result.DEAD}


def _duplicate_of(queue: QueueRuntime, duplicate: Duplicate) -> str:
    """A duplicate's ACK detail: the message holding its key when it was read, by id (``wire.message_id``)."""
    partition, offset = duplicate.holder
    return f"duplicate of {message_id(queue.topic, partition, offset)}, pending or running when this one was read"


def _outcomes(
    task: TaskRuntime, finished: Sequence[Finished], retries: Sequence[PendingMessage], now: datetime
) -> list[Outcome]:
    """The settlement hook's view of a task's settled messages (``retries``: on their next attempt)."""
    r = task.record
    topic, farm, slot, task_id, spent_s = r.topic, r.farm_id, r.slot, r.id, (now - r.leased_at).total_seconds()
    outcomes: list[Outcome] = []
    add = outcomes.append
    for f in finished:
        result, detail = _RESULTS[f.status], f.detail
        for m in f.messages:
            add(Outcome(result, topic, m.partition, m.offset, m.key, m.attempt, farm, slot, task_id, spent_s, detail))
    for m in retries:  # on their next attempt already: the one that ended is the one before
        attempt, error = m.attempt - 1, m.errors[-1]
        add(Outcome(Result.RETRY, topic, m.partition, m.offset, m.key, attempt, farm, slot, task_id, spent_s, error))
    return outcomes
