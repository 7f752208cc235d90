"""The immutable picture of queues and bases the scheduler decides on, indexed once for fast decisions.

The service builds a ``Snapshot`` from its state, then keeps it current with ``with_queue`` /
``with_base`` / ``without_queue``: each returns a new snapshot sharing everything that did not
change, so a burst of decisions (a farm asking for 32 slots) never rebuilds the whole index.
A base's running count is the sum of its queues' running counts: one source of truth.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import cast

from xtreaming.coordinator.core.index import Index, Limits, QueueMap, Room, Timed
from xtreaming.coordinator.core.state import BaseState, Fairness, QueueState
from xtreaming.coordinator.core.windows import WallClock


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Queues by topic, bases by name, and the site time zone windows are read in.

    Treat the mappings as read-only: the snapshot copies them once and indexes them.
    Raises ValueError when a queue names a base that is not in ``bases``.
    """

    queues: Mapping[str, QueueState]
    bases: Mapping[str, BaseState]
    time_zone: tzinfo
    _index: Index = field(init=False, repr=False, compare=False)
    _limits: Limits = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        queues = dict(self.queues)
        bases = dict(self.bases)
        for topic, queue in queues.items():
            _check_queue(topic, queue, bases)
        for name, base in bases.items():
            if name != base.name:
                raise ValueError(f"base {base.name} is filed under {name!r}")
        object.__setattr__(self, "queues", QueueMap.of(queues.values()))
        object.__setattr__(self, "bases", bases)
        object.__setattr__(self, "_index", Index.build(queues.values()))
        object.__setattr__(self, "_limits", Limits(bases))

    @classmethod
    def build(cls, queues: Iterable[QueueState], bases: Iterable[BaseState], time_zone: tzinfo) -> Snapshot:
        return cls({q.topic: q for q in queues}, {b.name: b for b in bases}, time_zone)

    def base_running(self, base: str) -> int:
        """Tasks running on ``base`` now, over all its queues."""
        return self._index.base_running.get(base, 0)

    def contenders(self, base: str) -> tuple[QueueState, ...]:
        """The base's unpaused queues with pending messages, in order of service (``fairness_key``)."""
        return self._index.contenders.get(base, ())

    @property
    def bases_with_contenders(self) -> Iterable[str]:
        return self._index.contenders.keys()

    def candidates(self, base: str) -> tuple[QueueState, ...]:
        """The base's contenders that may lease now whatever the time, in order of service.

        Left out: queues at their own max workers, queues whose pending messages all have keys in
        flight (``QueueState.waits_for_keys``), and queues in back-off (``timed_candidates``).
        """
        return self._index.candidates.get(base, ())

    @property
    def timed_candidates(self) -> Sequence[Timed]:
        """``(ready_at, fairness, queue)`` for each candidate in back-off (left out of ``candidates``),
        sorted by when it may lease again (``QueueState.ready_at``), then in order of service."""
        return self._index.timed

    @property
    def bases_by_first_candidate(self) -> Sequence[tuple[Fairness, str]]:
        """``(fairness of its first candidate, base)`` for each base with candidates, sorted: no queue of
        a base is served before that first candidate's ``fairness``."""
        return self._index.order

    def room_at(self, clock: WallClock) -> Room:
        """Unpaused bases' limits in force at ``clock`` and reserved minimums; computed once a minute."""
        return self._limits.at(clock)

    @property
    def paused_with_pending(self) -> int:
        """How many paused queues hold pending messages (to explain an idle slot)."""
        return self._index.paused_with_pending

    def with_queue(self, queue: QueueState) -> Snapshot:
        """This snapshot with ``queue`` added or replaced (by topic); O(bases + queues of its base)."""
        _check_queue(queue.topic, queue, self.bases)
        old = self.queues.get(queue.topic)
        queues = self._queue_map.replace(queue.topic, queue)
        return _assemble(queues, self.bases, self.time_zone, self._index.replace(old, queue), self._limits)

    def without_queue(self, topic: str) -> Snapshot:
        """This snapshot without the queue of ``topic`` (no change when there is none)."""
        old = self.queues.get(topic)
        if old is None:
            return self
        queues = self._queue_map.replace(topic, None)
        return _assemble(queues, self.bases, self.time_zone, self._index.replace(old, None), self._limits)

    def with_base(self, base: BaseState) -> Snapshot:
        """This snapshot with ``base`` added or its settings replaced (by name)."""
        bases = {**self.bases, base.name: base}
        return _assemble(self._queue_map, bases, self.time_zone, self._index, Limits(bases))

    @property
    def _queue_map(self) -> QueueMap:
        return cast(QueueMap, self.queues)  # set so by __post_init__ and _assemble


def _assemble(
    queues: QueueMap, bases: Mapping[str, BaseState], time_zone: tzinfo, index: Index, limits: Limits
) -> Snapshot:
    # Skips __post_init__: the parts were checked and the index updated incrementally.
    snapshot = object.__new__(Snapshot)
    object.__setattr__(snapshot, "queues", queues)
    object.__setattr__(snapshot, "bases", bases)
    object.__setattr__(snapshot, "time_zone", time_zone)
    object.__setattr__(snapshot, "_index", index)
    object.__setattr__(snapshot, "_limits", limits)
    return snapshot


def _check_queue(topic: str, queue: QueueState, bases: Mapping[str, BaseState]) -> None:
    if topic != queue.topic:
        raise ValueError(f"queue {queue.topic} is filed under {topic!r}")
    if queue.base not in bases:
        raise ValueError(f"queue {queue.topic}: base {queue.base} is not in the snapshot")
