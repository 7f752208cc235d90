"""One message per key across whole loads: a scout that reads each partition's keys ahead of intake.

In a queue with ``WorkSettings.one_per_key``, a message whose key already has a message unfinished in the
same topic (pending anywhere in the log below it, waiting for a retry, or running) is a duplicate of that
one, its holder, and is finished at once without running; a message whose key has no unfinished holder
becomes the holder. A holder finishing (ok or dead) lets its key go: a copy written after that is new work
(a portfolio loaded again after the first load was done); one written before, still a duplicate, however
late it is judged (``release``). Messages without a key (None or empty) are never duplicates.

The verdict is given when the scout reads a message, not when intake does: the scout reads every partition
from where it stopped up to the log's end (at most ``SCOUT_PASS_MESSAGES`` a pass), keeping only keys and
offsets in the on-disk ``KeyIndex``, and intake reads nothing the scout has not judged (``limit``). So a
second load appended behind a first of millions is judged while the first is still unfinished, however far
behind intake's read-ahead it is. The log is read twice for such queues, the scout reading only offsets and keys
apart from intake (``Broker.read_keys``); others are never scouted.

The broker is read without the coordinator's lock (``wanted`` and ``take_in`` need it, ``fetch`` does not),
as ``intake.py`` does. The index lives as long as the coordinator's memory: after a restart (or a reload)
it is rebuilt by scouting again from each partition's watermark, skipping the offsets the ledger has
finished. So a copy whose holder finished before the restart is new work then, and runs; a copy of a
message still unfinished (pending, waiting for a retry, or in a task leased before) is still a duplicate.
A queue taking one message per key from now on is scouted from its watermark too; the messages intake had
read already run anyway, each holding its key if it is the first unfinished one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from xtreaming.broker import Broker, Message
from xtreaming.coordinator.core.pending import PendingMessage
from xtreaming.coordinator.key_index import KeyIndex, Position
from xtreaming.coordinator.runtime import QueueRuntime

#: The most messages one pass scouts per partition: the index's writes are made under the coordinator's
#: lock, so a pass holds it for a bounded time (some 20 ms a partition); the next pass goes on from there.
SCOUT_PASS_MESSAGES: Final = 5_000
#: The most messages one broker read asks for.
SCOUT_READ_CHUNK: Final = 1_000
#: Rows of a finished load's index deleted per pass (``KeyIndex.purge``): a few milliseconds under the lock.
PURGE_ROWS: Final = 5_000


@dataclass(frozen=True, slots=True)
class Scouting:
    """A read planned under the lock: the keys of one partition's offsets ``offset`` up to ``end``."""

    queue: QueueRuntime
    partition: int
    offset: int
    end: int


class KeyScout:
    """Scouts the keys of the queues taking one message per key (see the module docstring). Not thread-safe:
    the coordinator holds its lock around every method but ``fetch``."""

    def __init__(self, broker: Broker, queues: Mapping[str, QueueRuntime]) -> None:
        self.broker = broker
        self._queues = queues
        self._index = KeyIndex()
        #: The next offset to scout, by (topic, partition): everything before it is judged.
        self._scouted: dict[tuple[str, int], int] = {}
        self._topics: set[str] = set()
        #: Topics judged since their index was last started afresh (``_renew_finished``).
        self._judged: set[str] = set()

    def limit(self, queue: QueueRuntime, partition: int) -> int | None:
        """How far intake may read a partition: the offset the scout reached; None when the queue is not
        scouted (it does not take one message per key). A queue just turned on starts at its watermark."""
        if not queue.record.settings.one_per_key:
            if queue.topic in self._topics:
                self._forget(queue.topic)
            return None
        where = (queue.topic, partition)
        scouted = self._scouted.get(where)
        if scouted is None:
            scouted = self._scouted[where] = queue.partitions[partition].ledger.watermark
            self._topics.add(queue.topic)
        return scouted

    def topics(self) -> list[str]:
        """The topics scouted: of the queues taking one message per key that intake has read."""
        return list(self._topics)

    def _forget(self, topic: str) -> None:
        self._index.forget(topic)
        self._topics.discard(topic)
        self._judged.discard(topic)
        for where in [where for where in self._scouted if where[0] == topic]:
            del self._scouted[where]

    def wanted(self, ends: Mapping[str, Mapping[int, int]]) -> list[Scouting]:
        """Plan this pass's reads: each partition of a scouted queue from where the scout stopped towards
        ``ends`` (``Broker.end_offsets_of``), at most ``SCOUT_PASS_MESSAGES`` each."""
        plans = []
        for topic in self._topics - self._queues.keys():  # gone with a reload of the queues
            self._forget(topic)
        self._renew_finished(ends)
        self._index.purge(PURGE_ROWS)
        scouted_to = self._scouted
        for name, partition_ends in ends.items():
            queue = self._queues.get(name)
            if queue is None:
                continue
            if not queue.record.settings.one_per_key:
                self.limit(queue, 0)  # forgets the queue if it was scouted
                continue
            for partition, end in partition_ends.items():
                if partition not in queue.partitions:
                    continue  # a partition intake has not seen yet: scouted from the next pass
                scouted = scouted_to.get((name, partition))
                if scouted is None:
                    scouted = self.limit(queue, partition)
                if scouted is not None and scouted < end:
                    plans.append(Scouting(queue, partition, scouted, min(end, scouted + SCOUT_PASS_MESSAGES)))
        return plans

    def _renew_finished(self, ends: Mapping[str, Mapping[int, int]]) -> None:
        """Start afresh the index of each topic whose every message is judged and finished (its holders all
        finished): otherwise it would keep a row for every key ever loaded."""
        for topic in list(self._judged):
            queue, topic_ends = self._queues.get(topic), ends.get(topic)
            if queue is None or topic_ends is None:
                continue
            for partition, end in topic_ends.items():  # a loop, not all(): most topics, most passes, stop at once
                runtime = queue.partitions.get(partition)
                if runtime is not None and (
                    runtime.ledger.watermark < end or self._scouted.get((topic, partition), -1) < end
                ):
                    break
            else:
                self._index.renew(topic)
                self._judged.discard(topic)

    def fetch(self, plan: Scouting) -> list[tuple[int, bytes | None]]:
        """Read the offsets and keys ``plan`` covers from the broker (``Broker.read_keys``: apart from intake's
        reads). Touches no memory: called without the lock."""
        keys: list[tuple[int, bytes | None]] = []
        offset = plan.offset
        while offset < plan.end:
            chunk = self.broker.read_keys(
                plan.queue.topic, plan.partition, offset, max_records=min(plan.end - offset, SCOUT_READ_CHUNK)
            )
            if not chunk:
                break  # nothing up to the end planned (offsets skip on Kafka)
            keys += [pair for pair in chunk if pair[0] < plan.end]
            offset = chunk[-1][0] + 1
        return keys

    def take_in(self, plan: Scouting, keys: Sequence[tuple[int, bytes | None]]) -> None:
        """Judge what ``fetch`` read for ``plan``, where the scout still stands there or before (a partition
        scouted through meanwhile keeps what was judged); the scout then stands at the plan's end."""
        queue = plan.queue
        where = (queue.topic, plan.partition)
        scouted = self._scouted.get(where)
        if self._queues.get(queue.topic) is not queue or scouted is None or not plan.offset <= scouted < plan.end:
            return  # memory reloaded, turned off, or judged meanwhile
        ledger = queue.partitions[plan.partition].ledger
        keyed = [(offset, key) for offset, key in keys if offset >= scouted and key]
        keyed = [(offset, key) for offset, key in keyed if not ledger.is_finished(offset)]
        if keyed:
            partitions = queue.partitions
            self._index.judge(
                queue.topic, plan.partition, keyed, ledger.high, lambda p, o: partitions[p].ledger.is_finished(o)
            )
            self._judged.add(queue.topic)
        self._scouted[where] = plan.end

    def scout_through(self, queue: QueueRuntime, partition: int, until: int) -> None:
        """Judge a partition up to ``until`` at once, the broker read under the lock: before intake reads
        the messages of tasks leased before a restart (``Intake.restore``), as memory is loaded."""
        scouted = self.limit(queue, partition)
        if scouted is not None and scouted < until:
            plan = Scouting(queue, partition, scouted, until)
            self.take_in(plan, self.fetch(plan))

    def duplicates(self, queue: QueueRuntime, messages: Sequence[Message]) -> dict[int, Position]:
        """The duplicates among ``messages`` (read in order from one partition), by offset, each with the
        position of its holder; judged once: each is given once, for its reader to finish it."""
        if not queue.record.settings.one_per_key or not messages:
            return {}
        return self._index.take(queue.topic, messages[0].partition, messages[0].offset, messages[-1].offset)

    def release(self, queue: QueueRuntime, finished: Sequence[PendingMessage]) -> None:
        """Let go of the keys ``finished`` messages (ok or dead) held. Where the scout has judged a partition
        up to its end, nothing to do: a copy judged from now on was written after they finished (the index
        asks the ledger). Elsewhere they let go from the end on: a copy written before it, not judged yet,
        was written while its holder was unfinished, and is still a duplicate when it is judged."""
        if queue.topic not in self._topics:
            return
        lagging: dict[int, int] = {}
        for partition, runtime in queue.partitions.items():
            scouted = self._scouted.get((queue.topic, partition), 0)
            if scouted < runtime.end:
                lagging[partition] = runtime.end
        if not lagging:  # the usual case: the scout is at the log's end
            return
        for partition, end in lagging.items():
            messages = [m for m in finished if m.partition == partition]
            if messages:
                self._index.release(queue.topic, partition, messages, end)

    def close(self) -> None:
        self._index.close()
