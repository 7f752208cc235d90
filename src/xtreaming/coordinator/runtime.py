"""The coordinator's in-memory picture of each queue: read-ahead, pending messages, in-flight keys.

Pure bookkeeping (no I/O): the coordinator's intake and settlement read from the broker and the
store and feed the results in. Memory is bounded by the read-ahead of each partition
(``read_ahead``) plus the messages leased: pending *counts* come from offsets (end of log minus
finished), never from holding the backlog.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from operator import is_
from typing import Final

from xtreaming.coordinator.activity import QueueActivity
from xtreaming.coordinator.core.ledger import LedgerState, PartitionLedger
from xtreaming.coordinator.core.pending import (
    LeaseOrder,
    PendingMessage,
    attempt_of,
    in_lease_order,
    key_of,
    merged,
    order_of,
    partition_of,
)
from xtreaming.coordinator.core.state import QueueState, labels_of
from xtreaming.coordinator.records import QueueRecord, TaskRecord
from xtreaming.topics import TopicName

#: A partition stops reading ahead when this many offsets separate its watermark from its read
#: position (a message stuck in flight holds the watermark): back-pressure, bounded memory.
MAX_LEDGER_WINDOW: Final = 100_000
#: Read-ahead floor per partition, for queues with tiny batches (COBSINC: one message per task).
MIN_READ_AHEAD: Final = 64
#: The most batches a queue's read-ahead holds, however many of its tasks run (``QueueRuntime.read_ahead``).
MAX_READ_AHEAD_BATCHES: Final = 8


@dataclass(slots=True)
class PartitionRuntime:
    """One partition: its ledger, where reading resumes, and the last known end of the log."""

    ledger: PartitionLedger
    end: int = 0

    @property
    def next_read(self) -> int:
        return self.ledger.high

    def room(self, buffered: int, read_ahead: int) -> int:
        """How many more messages to read now (0: enough buffered, at the end, or window full)."""
        window_left = MAX_LEDGER_WINDOW - (self.ledger.high - self.ledger.watermark)
        return max(0, min(read_ahead - buffered, self.end - self.next_read, window_left))


@dataclass(slots=True)
class QueueRuntime:
    """Everything the coordinator tracks for one queue between decisions."""

    record: QueueRecord
    partitions: dict[int, PartitionRuntime] = field(default_factory=dict)
    #: Change only through ``add_pending`` and ``take`` (entries are replaced, never mutated): they drop
    #: the sorted view ``state`` otherwise reuses.
    pending: dict[int, PendingMessage] = field(default_factory=dict)  # by ``PendingMessage.order``
    buffered: dict[int, int] = field(default_factory=dict)  # pending messages per partition
    keys_in_flight: dict[bytes, int] = field(default_factory=dict)
    running: set[str] = field(default_factory=set)
    last_served: datetime | None = None
    #: Finished and failed messages per second and per minute, the last error (``activity.py``).
    activity: QueueActivity = field(default_factory=QueueActivity)
    #: Records the coordinator wrote to the queue's ``.DLQ`` (the screen's "DLQ").
    dead: int = 0
    #: Per ``.DLQ`` partition, offsets ``[from, to)`` counted in ``dead`` before the dead-letter index read them.
    dlq_unindexed: dict[int, tuple[int, int]] = field(default_factory=dict)
    failures: int = 0
    #: Pending messages past their first attempt, counted as they come and go (the screen's "Falhas").
    retrying: int = 0
    #: Messages finished as duplicates since the coordinator started.
    duplicates: int = 0
    _state: QueueState | None = None
    _pending_view: LeaseOrder | None = None  # ``pending`` in lease order, kept up to date incrementally
    #: Messages taken since ``_pending_view`` was built, by id (held, so no id is reused meanwhile).
    _taken: dict[int, PendingMessage] = field(default_factory=dict)
    _added: list[PendingMessage] = field(default_factory=list)  # messages added since then
    _name: TopicName | None = None

    @property
    def topic(self) -> str:
        return self.record.topic

    @property
    def name(self) -> TopicName:
        """The parsed topic (parsed once: tasks and results need its parts)."""
        if self._name is None:
            self._name = TopicName.parse(self.record.topic)
        return self._name

    @property
    def read_ahead(self) -> int:
        """Messages each partition keeps ready: the queue's partitions together hold a batch for each of its tasks
        running, at least two and at most ``MAX_READ_AHEAD_BATCHES`` (each partition at least ``MIN_READ_AHEAD``).
        So the slots whose tasks end together lease most of their next ones from what is ready, and the rest is
        read in one go rather than a batch at a time under the lock (with two batches, a farm of eight slots at
        batch 100 read for six of its eight leases: end to end, 7-12% fewer messages a second and 8-12% more of
        the coordinator's CPU per message, measured); single-message lanes do not read once per task; and the
        memory stays bounded, at most as many messages again as the queue has leased."""
        batches = min(max(2, len(self.running)), MAX_READ_AHEAD_BATCHES)
        share = -(-batches * self.record.settings.batch_size // max(1, len(self.partitions)))
        return max(share, MIN_READ_AHEAD)

    def half_read(self, partition: int) -> bool:
        """Whether leases took half or more of the partition's read-ahead: it is worth topping up (one read of
        many messages then, not one read per task of a single-message lane)."""
        return 2 * self.buffered.get(partition, 0) <= self.read_ahead

    def restore_partition(self, partition: int, state: LedgerState | None) -> PartitionRuntime:
        runtime = self.partitions.get(partition)
        if runtime is None:
            runtime = self.partitions[partition] = PartitionRuntime(PartitionLedger(state))
        return runtime

    def add_pending(self, entries: Sequence[PendingMessage]) -> None:
        """Make ``entries`` pending (read from the log, restored, or back from a failed attempt)."""
        if not entries:
            return
        self.pending.update({entry.order: entry for entry in entries})
        self._count(entries, 1)
        if self._pending_view is not None:
            self._added += entries
        self._state = None

    def take(self, messages: Iterable[PendingMessage]) -> list[PendingMessage]:
        """Remove the pending messages at the positions of ``messages`` and return them."""
        entries = list(map(self.pending.pop, map(order_of, messages)))
        self._count(entries, -1)
        if self._pending_view is not None:
            self._taken.update(zip(map(id, entries), entries, strict=True))
        self._state = None
        return entries

    def _count(self, entries: Sequence[PendingMessage], sign: int) -> None:
        """Add (``sign`` 1) or remove (-1) ``entries`` from the per-partition and retrying counts."""
        buffered = self.buffered
        for partition, count in Counter(map(partition_of, entries)).items():
            buffered[partition] = buffered.get(partition, 0) + sign * count
        attempts = list(map(attempt_of, entries))
        self.retrying += sign * (len(attempts) - attempts.count(1))

    def hold_keys(self, keys: Iterable[bytes | None]) -> None:
        """Count ``keys`` as in flight (``keys_in_flight`` counts each key's holders)."""
        held = self.keys_in_flight
        for key in keys:
            if key is not None:
                held[key] = held.get(key, 0) + 1
        self._state = None

    def release_keys(self, keys: Iterable[bytes | None]) -> None:
        """Take ``keys`` out of flight, once per occurrence (what ``hold_keys`` counted)."""
        held = self.keys_in_flight
        for key in keys:
            if key is not None:
                left = held.pop(key, 1) - 1
                if left > 0:
                    held[key] = left
        self._state = None

    def state(self) -> QueueState:
        """The scheduler's view of this queue, rebuilt only after a change."""
        if self._state is None:
            self._pending_view = self._lease_order()
            settings = self.record.settings
            self._state = QueueState(
                topic=self.topic,
                base=self.record.base,
                kind=self.record.kind,
                priority=settings.priority,
                batch_size=settings.batch_size,
                paused=self.record.paused,
                max_workers=settings.max_workers,
                required_labels=labels_of(settings.required_labels),
                running=len(self.running),
                last_served=self.last_served,
                pending=self._pending_view,
                keys_in_flight=held_among(self.keys_in_flight, self._pending_view),
                has_worker=bool(settings.command or settings.handler),
            )
        return self._state

    def _lease_order(self) -> LeaseOrder:
        """``pending`` in lease order: sorted once, then only the changes since are applied."""
        view = self._pending_view
        if view is None:
            view = in_lease_order(self.pending.values())
        else:
            added, taken = self._added, self._taken
            first = view[: len(taken)]
            if taken and len(first) == len(taken) and all(map(is_, first, taken.values())):
                view = LeaseOrder(view[len(taken) :])  # the usual lease: the first messages, in order
            elif taken:
                view = LeaseOrder([m for m in view if id(m) not in taken])
                added = [m for m in added if id(m) not in taken]
            if added:
                view = merged(view, added)
        self._taken = {}
        self._added = []
        return view

    def with_record(self, record: QueueRecord) -> None:
        """Take a queue's new settings (one message per key turned on or off: ``key_scout.py``)."""
        self.record = record
        self._state = None

    # -- figures for the operator screen ---------------------------------------------------------

    def progress(self) -> tuple[int, int]:
        """Messages finished (ok or dead: everything below the watermarks plus finished above them) and the log's
        end, summed over the partitions in one walk (the screen asks for both of thousands of queues)."""
        consumed = end = 0
        for runtime in self.partitions.values():
            ledger = runtime.ledger
            consumed += ledger.watermark + ledger.finished_above
            end += runtime.end
        return consumed, end

    @property
    def end(self) -> int:
        return sum(runtime.end for runtime in self.partitions.values())


def retried(entry: PendingMessage, error: str, not_before: datetime) -> PendingMessage:
    """``entry`` after a failed attempt: next attempt, its back-off deadline, the error recorded."""
    return replace(entry, attempt=entry.attempt + 1, not_before=not_before, errors=(*entry.errors, error))


@dataclass(slots=True)
class TaskRuntime:
    """A leased task: its stored record, its queue, and the messages it carries (values included)."""

    record: TaskRecord
    queue: QueueRuntime
    entries: list[PendingMessage]
    done: int | None = None
    total: int | None = None


def held_among(held: Collection[bytes], pending: Sequence[PendingMessage]) -> frozenset[bytes]:
    """The keys in flight a decision may ask about: those of ``pending`` messages (no decision asks of another
    key), found from whichever of the two is smaller. Thousands of one-message tasks in flight made every
    rebuild of the queue's state copy thousands of keys, where its read-ahead holds a few dozen messages. Looked
    up with C-level passes (``filter``, ``map``): once per lease, over the read-ahead (no key, None, is never held)."""
    if len(held) <= len(pending):
        return frozenset(held)
    return frozenset(filter(held.__contains__, map(key_of, pending)))
