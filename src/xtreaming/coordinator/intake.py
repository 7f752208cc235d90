"""Reading work from the broker into the queues: read-ahead, restored tasks and retries, offset commits.

After a restart the ledger says which offsets are finished; reading resumes at each partition's
watermark and skips them. Messages of tasks still leased are attached to their task (they are
in flight, not pending); messages that failed before get their attempt count and back-off back.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, MutableSet
from contextlib import suppress

from xtreaming.broker import Broker, Message
from xtreaming.coordinator.core.ledger import LedgerState
from xtreaming.coordinator.core.pending import PendingMessage
from xtreaming.coordinator.records import QueueRecord, RetryRecord, TaskRecord
from xtreaming.coordinator.runtime import QueueRuntime, TaskRuntime
from xtreaming.errors import TopicNotFound

log = logging.getLogger("xtreaming.coordinator")

#: The most messages one broker read asks for.
READ_CHUNK = 1000


class Intake:
    """Fills the queues' read-ahead from the broker and commits their watermarks back."""

    def __init__(
        self,
        broker: Broker,
        queues: dict[str, QueueRuntime],
        tasks: dict[str, TaskRuntime],
        dirty: MutableSet[str],
    ) -> None:
        self.broker = broker
        self._queues = queues
        self._tasks = tasks
        self._dirty = dirty
        self._unread_tasks: dict[tuple[str, int, int], str] = {}
        self._retries: dict[tuple[str, int, int], RetryRecord] = {}
        self._committed: dict[tuple[str, int], int] = {}

    def adopt(self, record: QueueRecord, ledgers: Mapping[tuple[str, int], LedgerState]) -> QueueRuntime | None:
        """Start tracking a queue from its stored ledgers; None (logged) when its topic is gone."""
        try:
            partitions = self.broker.partition_count(record.topic)
        except TopicNotFound:
            log.warning("queue %s: its topic no longer exists on the broker; not served", record.topic)
            return None
        queue = QueueRuntime(record)
        for partition in range(partitions):
            queue.restore_partition(partition, ledgers.get((record.topic, partition)))
        with suppress(TopicNotFound):  # no DLQ topic: nothing died yet
            queue.dead = sum(self.broker.end_offsets(queue.name.dlq).values())
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
            self.read(queue, partition, until=until)

    def refresh(self, topics: Iterable[str] | None = None) -> int:
        """Read ahead every queue (or those of ``topics``); returns how many messages became pending."""
        fresh = 0
        for name, ends in self.broker.end_offsets_of(list(self._queues) if topics is None else topics).items():
            queue = self._queues[name]
            for partition, end in ends.items():
                runtime = queue.restore_partition(partition, None)
                if end == runtime.end and runtime.next_read >= end:
                    continue  # nothing new, nothing unread
                runtime.end = end
                fresh += self.read(queue, partition)
        return fresh

    def read(self, queue: QueueRuntime, partition: int, until: int | None = None) -> int:
        """Top up one partition's read-ahead (or read through ``until``); returns the messages made pending."""
        runtime = queue.partitions[partition]
        added = 0
        while True:
            if until is not None and runtime.next_read < until:
                room = until - runtime.next_read
            else:
                room = runtime.room(queue.buffered.get(partition, 0), queue.read_ahead)
            if room <= 0:
                return added
            messages = self.broker.read(queue.topic, partition, runtime.next_read, max_records=min(room, READ_CHUNK))
            if not messages:
                return added
            offsets = [m.offset for m in messages]
            fresh = runtime.ledger.hand_out_all(offsets)  # fewer: some finished before a restart
            if len(fresh) == len(offsets) and not self._unread_tasks and not self._retries:
                # The usual case: every message is new work, in one step.
                queue.add_pending(
                    [PendingMessage(m.partition, m.offset, m.key, 1, None, m.value, m.headers) for m in messages]
                )
                self._dirty.add(queue.topic)
                added += len(messages)
                continue
            handed_out = set(fresh)
            for message in messages:
                if message.offset in handed_out:
                    added += self._place(queue, message)

    def _place(self, queue: QueueRuntime, message: Message) -> int:
        """Attach a message read back after a restart to its task, or make it pending (with its retry
        state when it failed before); returns 1 when it became pending."""
        m = message
        where = (queue.topic, m.partition, m.offset)
        task_id = self._unread_tasks.pop(where, None)
        task = self._tasks.get(task_id) if task_id is not None else None
        if task is not None:
            attempt = next(t.attempt for t in task.record.messages if (t.partition, t.offset) == where[1:])
            task.entries.append(PendingMessage(m.partition, m.offset, m.key, attempt, None, m.value, m.headers))
            return 0
        retry = self._retries.pop(where, None)
        if retry is not None:
            attempt, not_before, errors = retry.attempts + 1, retry.not_before, retry.errors
        else:
            attempt, not_before, errors = 1, None, ()
        queue.add_pending(
            [PendingMessage(m.partition, m.offset, m.key, attempt, not_before, m.value, m.headers, errors)]
        )
        self._dirty.add(queue.topic)
        return 1

    def commit_offsets(self, group: str) -> None:
        """Commit each partition's watermark as ``group``'s offset, where it moved since the last commit."""
        for queue in self._queues.values():
            moved = {}
            for partition, runtime in queue.partitions.items():
                if self._committed.get((queue.topic, partition)) != runtime.ledger.watermark:
                    moved[partition] = runtime.ledger.watermark
            if moved:
                self.broker.commit(group, queue.topic, moved)
                for partition, watermark in moved.items():
                    self._committed[(queue.topic, partition)] = watermark
