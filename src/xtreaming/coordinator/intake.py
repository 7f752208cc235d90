"""Reading work from the broker into the queues: read-ahead, restored tasks and retries, offset commits.

After a restart the ledger says which offsets are finished; reading resumes at each partition's
watermark and skips them. Messages of tasks still leased are attached to their task (they are
in flight, not pending); messages that failed before get their attempt count and back-off back.

Not thread-safe: the coordinator holds its lock around every method, except the ones that only
ask the broker (``look_up``, ``fetch``), which it calls without the lock so that nobody waits on a
broker round trip. The background pass reads in three steps: ``wanted`` (under the lock: the log's
ends recorded, the reads to make planned), ``fetch`` (no lock), ``take_in`` (under the lock: what was
read becomes pending, but only where reading still stands where it was planned, so a message is
never handed out twice nor an offset skipped). Offsets commits are computed under the lock
(``moved``) and sent without it.

In a queue taking one message per key, intake reads only what the key scout judged already
(``key_scout.py``, its ``limit``), and a message it judged a duplicate is not made pending: it is set aside
(``take_duplicates``) for the coordinator to finish as a duplicate in the same pass, through the settlement
(its ledger entry stays in flight until then).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, MutableSet, Sequence
from contextlib import suppress
from dataclasses import dataclass, field

from xtreaming.broker import Broker, Message
from xtreaming.coordinator.core.ledger import LedgerState
from xtreaming.coordinator.core.pending import PendingMessage
from xtreaming.coordinator.key_index import Duplicate, Position
from xtreaming.coordinator.key_scout import KeyScout
from xtreaming.coordinator.records import QueueRecord, RetryRecord, TaskRecord
from xtreaming.coordinator.runtime import PartitionRuntime, QueueRuntime, TaskRuntime
from xtreaming.errors import TopicNotFound
from xtreaming.topics import TopicName

log = logging.getLogger("xtreaming.coordinator")

#: The most messages one broker read asks for.
READ_CHUNK = 1000


@dataclass(frozen=True, slots=True)
class TopicFacts:
    """What tracking a queue needs from the broker, asked without the coordinator's lock."""

    partitions: int
    #: Records the coordinator wrote to the topic's ``.DLQ`` (0 when it does not exist: nothing died yet): all its
    #: records less those the dead-letter index found foreign.
    dead: int
    #: Each partition's end, when asked (a topic just discovered: it shows its pending messages at once).
    ends: Mapping[int, int] = field(default_factory=dict)
    #: Per ``.DLQ`` partition, the offsets ``[from, to)`` counted in ``dead`` though not indexed yet: a foreign
    #: record the index finds there later is taken off the figure (``QueueRuntime.dlq_unindexed``).
    dlq_unindexed: Mapping[int, tuple[int, int]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Want:
    """A read planned under the lock: up to ``count`` messages of one partition from ``offset``."""

    queue: QueueRuntime
    partition: int
    runtime: PartitionRuntime
    offset: int
    count: int


class Intake:
    """Fills the queues' read-ahead from the broker and commits their watermarks back."""

    def __init__(
        self,
        broker: Broker,
        queues: dict[str, QueueRuntime],
        tasks: dict[str, TaskRuntime],
        dirty: MutableSet[str],
        indexed: Callable[[str], Mapping[int, tuple[int, int]]] = lambda _: {},
    ) -> None:
        """``indexed``: how far the dead-letter index read a ``.DLQ`` topic, per partition (next offset, foreign
        records below it)."""
        self.broker = broker
        self._indexed = indexed
        self._queues = queues
        self._tasks = tasks
        self._dirty = dirty
        self._unread_tasks: dict[tuple[str, int, int], str] = {}
        self._retries: dict[tuple[str, int, int], RetryRecord] = {}
        self._committed: dict[tuple[str, int], int] = {}
        #: Partitions with a planned read not taken in yet: nobody else reads them meanwhile.
        self._fetching: set[tuple[str, int]] = set()
        #: Messages read as duplicates and not finished yet, by queue (see the module docstring).
        self._duplicates: dict[str, tuple[QueueRuntime, list[Duplicate]]] = {}
        #: Judges the keys of the queues taking one message per key, ahead of what is read here.
        self.scout = KeyScout(broker, queues)

    def adopt(self, record: QueueRecord, ledgers: Mapping[tuple[str, int], LedgerState]) -> QueueRuntime | None:
        """Start tracking a queue from its stored ledgers; None (logged) when its topic is gone. The log's ends are
        asked for a queue taking one message per key: the scout lets a finished holder's key go from the end on
        (``KeyScout.release``), and a holder leased before a restart may finish before any pass has read them."""
        facts = self.look_up(TopicName.parse(record.topic), with_ends=bool(record.settings.one_per_key))
        if facts is None:
            log.warning("queue %s: its topic no longer exists on the broker; not served", record.topic)
            return None
        return self.track(record, facts, ledgers)

    def look_up(self, topic: TopicName, *, with_ends: bool = False) -> TopicFacts | None:
        """Ask the broker what tracking ``topic`` needs (and its partitions' ends ``with_ends``); None when the
        topic does not exist. Touches no memory: called without the lock."""
        try:
            partitions = self.broker.partition_count(str(topic))
            ends = self.broker.end_offsets(str(topic)) if with_ends else {}
        except TopicNotFound:
            return None
        dead, unindexed = 0, {}
        with suppress(TopicNotFound):  # no DLQ topic: nothing died yet
            indexed = self._indexed(topic.dlq)
            for partition, end in self.broker.end_offsets(topic.dlq).items():
                next_offset, foreign = indexed.get(partition, (0, 0))
                dead += end - foreign
                if next_offset < end:
                    unindexed[partition] = (next_offset, end)
        return TopicFacts(partitions, dead, ends, unindexed)

    def track(
        self, record: QueueRecord, facts: TopicFacts, ledgers: Mapping[tuple[str, int], LedgerState]
    ) -> QueueRuntime:
        """Start tracking a queue whose topic ``look_up`` found, from its stored ledgers."""
        queue = QueueRuntime(record)
        for partition in range(facts.partitions):
            runtime = queue.restore_partition(partition, ledgers.get((record.topic, partition)))
            runtime.end = facts.ends.get(partition, 0)
        queue.dead, queue.dlq_unindexed = facts.dead, dict(facts.dlq_unindexed)
        self._queues[record.topic] = queue
        self._dirty.add(record.topic)
        return queue

    def restore(self, tasks: Iterable[TaskRecord], retries: Iterable[RetryRecord]) -> None:
        """Put back the tasks leased before a restart and the retries waiting, then read up to them."""
        for task in tasks:
            queue = self._queues.get(task.topic)
            if queue is None:
                continue
            self._tasks[task.id] = TaskRuntime(task, queue, [])
            queue.running.add(task.id)
            queue.hold_keys(m.key for m in task.messages)
            for m in task.messages:
                self._unread_tasks[(task.topic, m.partition, m.offset)] = task.id
        self._retries = {(r.topic, r.partition, r.offset): r for r in retries}
        ends: dict[tuple[str, int], int] = {}
        for topic, partition, offset in self._unread_tasks:
            ends[(topic, partition)] = max(ends.get((topic, partition), 0), offset + 1)
        for (topic, partition), until in ends.items():
            queue = self._queues[topic]
            runtime = queue.partitions[partition]
            runtime.end = max(runtime.end, until)
            self.scout.scout_through(queue, partition, until)
            self.read(queue, partition, until=until)

    def wanted(self, ends: Mapping[str, Mapping[int, int]]) -> list[Want]:
        """Record the log's ``ends`` (``Broker.end_offsets_of``) and plan the reads that top up the read-ahead.

        One plan at a time (the coordinator runs one refresh at a time); each planned partition is read by
        ``fetch`` and nobody else (``read`` leaves it alone) until ``take_in`` gets the plan back."""
        wants = []
        for name, partition_ends in ends.items():
            queue = self._queues.get(name)
            if queue is None:
                continue
            partitions = queue.partitions
            for partition, end in partition_ends.items():
                runtime = partitions.get(partition)
                if runtime is None:
                    runtime = queue.restore_partition(partition, None)
                runtime.end = end
                if end <= runtime.next_read:
                    continue  # read to its end: no room, whatever else holds (most partitions, most passes)
                room = self._room(queue, partition, runtime)
                if room > 0:
                    wants.append(Want(queue, partition, runtime, runtime.next_read, room))
                    self._fetching.add((name, partition))
        return wants

    def fetch(self, want: Want) -> list[Message]:
        """Read what ``want`` plans from the broker. Touches no memory: called without the lock."""
        messages: list[Message] = []
        offset = want.offset
        while len(messages) < want.count:
            chunk = self.broker.read(
                want.queue.topic, want.partition, offset, max_records=min(want.count - len(messages), READ_CHUNK)
            )
            if not chunk:
                break
            messages += chunk
            offset = chunk[-1].offset + 1  # offsets may skip on Kafka: go on after the last one read
        return messages

    def take_in(self, wants: Sequence[Want], fetched: Sequence[Sequence[Message]]) -> int:
        """Hand out what ``fetch`` read for the first ``len(fetched)`` of ``wants`` and end every plan of
        ``wants`` (read or not); returns how many messages became pending.

        A partition whose read position moved since the plan (memory reloaded, the ledger moved past
        offsets finished before a restart) gets nothing: its next read starts where it stands now."""
        added = 0
        for index, want in enumerate(wants):
            queue, runtime = want.queue, want.runtime
            self._fetching.discard((queue.topic, want.partition))
            if index >= len(fetched):
                continue
            current = self._queues.get(queue.topic) is queue and queue.partitions.get(want.partition) is runtime
            if not (current and runtime.next_read == want.offset):
                continue
            if fetched[index]:
                added += self._hand_out(queue, fetched[index])
            else:
                runtime.ledger.skip_to(want.offset + want.count)  # nothing there: gaps up to the planned end
        return added

    def read(self, queue: QueueRuntime, partition: int, until: int | None = None) -> int:
        """Top up one partition's read-ahead (or read through ``until``); returns the messages made pending.

        A top-up leaves a partition alone while a planned read of it (``wanted``) is under way."""
        runtime = queue.partitions[partition]
        if until is None and (queue.topic, partition) in self._fetching:
            return 0
        added = 0
        while True:
            if until is not None and runtime.next_read < until:
                room = until - runtime.next_read
            else:
                room = self._room(queue, partition, runtime)
            if room <= 0:
                return added
            messages = self.broker.read(queue.topic, partition, runtime.next_read, max_records=min(room, READ_CHUNK))
            if not messages:
                runtime.ledger.skip_to(runtime.next_read + room)  # nothing there: gaps (see ``skip_to``)
                return added
            added += self._hand_out(queue, messages)

    def _room(self, queue: QueueRuntime, partition: int, runtime: PartitionRuntime) -> int:
        """How many messages to read now to top up a partition's read-ahead: none while more than half of it is
        left (``QueueRuntime.half_read``); never past what the scout judged."""
        if not queue.half_read(partition):
            return 0
        room = runtime.room(queue.buffered.get(partition, 0), queue.read_ahead)
        limit = self.scout.limit(queue, partition)
        return room if limit is None else min(room, limit - runtime.next_read)

    def _hand_out(self, queue: QueueRuntime, messages: Sequence[Message]) -> int:
        """Hand out ``messages``, read in order from the partition's read position; returns those made pending."""
        runtime = queue.partitions[messages[0].partition]
        offsets = [m.offset for m in messages]
        fresh = runtime.ledger.hand_out_all(offsets)  # fewer: some finished before a restart
        holders = self.scout.duplicates(queue, messages)
        if len(fresh) == len(offsets) and not self._unread_tasks and not self._retries:
            # The usual case: every message is new work, in one step.
            entries: Sequence[PendingMessage] = [
                PendingMessage(m.partition, m.offset, m.key, 1, None, m.value, m.headers) for m in messages
            ]
            if holders:
                entries = self._set_aside(queue, entries, holders)
            queue.add_pending(entries)
            self._dirty.add(queue.topic)
            return len(entries)
        handed_out = set(fresh)
        return sum(self._place(queue, message, holders) for message in messages if message.offset in handed_out)

    def _set_aside(
        self, queue: QueueRuntime, entries: Sequence[PendingMessage], holders: Mapping[int, Position]
    ) -> list[PendingMessage]:
        """``entries`` less the duplicates the scout judged (``holders``: the holder of each, by offset), which
        are set aside for the coordinator to finish."""
        admitted: list[PendingMessage] = []
        duplicates = self._duplicates.setdefault(queue.topic, (queue, []))[1]
        for entry in entries:
            holder = holders.get(entry.offset)
            if holder is None:
                admitted.append(entry)
            else:
                duplicates.append(Duplicate(entry, holder))
        return admitted

    def take_duplicates(self) -> list[tuple[QueueRuntime, list[Duplicate]]]:
        """The duplicates read since last taken, by queue, for the coordinator to finish (and forgets them)."""
        if not self._duplicates:
            return []
        taken = list(self._duplicates.values())
        self._duplicates.clear()
        return taken

    def _place(self, queue: QueueRuntime, message: Message, holders: Mapping[int, Position]) -> int:
        """Attach a message read back after a restart to its task, or make it pending (with its retry
        state when it failed before) unless it is a duplicate (``holders``: the scout's verdicts); returns 1
        when it became pending. A message of a task or a retry ran before: it runs on, whatever the verdict."""
        m = message
        where = (queue.topic, m.partition, m.offset)
        task_id = self._unread_tasks.pop(where, None)
        task = self._tasks.get(task_id) if task_id is not None else None
        if task is not None:
            attempt = next(t.attempt for t in task.record.messages if (t.partition, t.offset) == where[1:])
            entry = PendingMessage(m.partition, m.offset, m.key, attempt, None, m.value, m.headers)
            task.entries.append(entry)
            return 0
        retry = self._retries.pop(where, None)
        if retry is not None:
            entry = PendingMessage(
                m.partition, m.offset, m.key, retry.attempts + 1, retry.not_before, m.value, m.headers, retry.errors
            )
            entries: Sequence[PendingMessage] = [entry]
        else:
            entries = [PendingMessage(m.partition, m.offset, m.key, 1, None, m.value, m.headers)]
            if m.offset in holders:
                entries = self._set_aside(queue, entries, holders)
        queue.add_pending(entries)
        self._dirty.add(queue.topic)
        return len(entries)

    def moved(self) -> dict[str, dict[int, int]]:
        """Each partition's watermark, by topic, where it moved since the last commit ``committed`` recorded."""
        moved: dict[str, dict[int, int]] = {}
        for queue in self._queues.values():
            for partition, runtime in queue.partitions.items():
                if self._committed.get((queue.topic, partition)) != runtime.ledger.watermark:
                    moved.setdefault(queue.topic, {})[partition] = runtime.ledger.watermark
        return moved

    def committed(self, topic: str, offsets: Mapping[int, int]) -> None:
        """Record that ``offsets`` of ``topic`` (from ``moved``) are committed."""
        for partition, watermark in offsets.items():
            self._committed[(topic, partition)] = watermark
