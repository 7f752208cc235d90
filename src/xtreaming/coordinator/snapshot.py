"""The immutable picture of queues and bases the scheduler decides on, indexed once for fast decisions.

The service builds a ``Snapshot`` from its state, then keeps it current with ``with_queue`` /
``with_base`` / ``without_queue``: each returns a new snapshot sharing everything that did not
change, so a burst of decisions (a farm asking for 32 slots) never rebuilds the whole index.
A base's running count is the sum of its queues' running counts: one source of truth.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Final, cast

from xtreaming.coordinator.index import Fairness, Index, Limits, QueueMap, Room, Timed
from xtreaming.coordinator.pending import (
    PendingMessage as PendingMessage,
)  # re-exported: the scheduler's callers import it here
from xtreaming.coordinator.pending import in_lease_order, readiness
from xtreaming.coordinator.windows import WallClock, Window

MIN_PRIORITY: Final = 0
MAX_PRIORITY: Final = 9

#: A farm's labels, or the labels a queue requires, as ``(name, value)`` pairs: a queue can run on a
#: farm when its required labels are a subset of the farm's (one C-level set operation).
Labels = frozenset[tuple[str, str]]
NO_LABELS: Final[Labels] = frozenset()


def labels_of(mapping: Mapping[str, str]) -> Labels:
    """``{"os": "linux"}`` → ``frozenset({("os", "linux")})``."""
    return frozenset(mapping.items())


def format_labels(labels: Iterable[tuple[str, str]]) -> str:
    """``os=linux, site=sp``, sorted by name."""
    return ", ".join(f"{name}={value}" for name, value in sorted(labels))


@dataclass(frozen=True, slots=True)
class QueueState:
    """One queue (a work topic) as the scheduler sees it.

    ``pending`` is the read-ahead window of messages that may be leased, kept sorted by
    (offset, partition): offset order within each partition, lagging partitions first.
    ``keys_in_flight`` are the keys of this topic's messages currently leased.
    """

    topic: str
    base: str
    kind: str
    priority: int
    batch_size: int
    paused: bool = False
    max_workers: int | None = None
    required_labels: Labels = NO_LABELS
    running: int = 0
    last_served: datetime | None = None
    pending: tuple[PendingMessage, ...] = ()
    keys_in_flight: frozenset[bytes] = frozenset()
    #: When no pending message is free of both back-off and keys in flight, the earliest back-off
    #: deadline that may free one, else None: lets a decision skip a queue in back-off unread.
    ready_at: datetime | None = field(init=False, repr=False, compare=False)
    #: Every pending message has its key in flight: nothing to lease before one of its tasks ends.
    waits_for_keys: bool = field(init=False, repr=False, compare=False)
    #: ``fairness_key(self)``, computed once: the queue's place in its base's order of service.
    fairness: Fairness = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not MIN_PRIORITY <= self.priority <= MAX_PRIORITY:
            raise ValueError(f"queue {self.topic}: priority {self.priority} is not in {MIN_PRIORITY}..{MAX_PRIORITY}")
        if self.batch_size < 1:
            raise ValueError(f"queue {self.topic}: batch_size {self.batch_size} is below 1")
        if self.max_workers is not None and self.max_workers < 0:
            raise ValueError(f"queue {self.topic}: max_workers {self.max_workers} is negative")
        if self.running < 0:
            raise ValueError(f"queue {self.topic}: running {self.running} is negative")
        if self.last_served is not None and self.last_served.utcoffset() is None:
            raise ValueError(f"queue {self.topic}: last_served must be timezone-aware")
        pending = in_lease_order(self.pending)  # no sort when handed on from another QueueState
        ready_at, waits_for_keys = readiness(pending, self.keys_in_flight)
        served = float("-inf") if self.last_served is None else self.last_served.timestamp()
        object.__setattr__(self, "pending", pending)
        object.__setattr__(self, "ready_at", ready_at)
        object.__setattr__(self, "waits_for_keys", waits_for_keys)
        object.__setattr__(self, "fairness", (-self.priority, self.running, served, self.topic))

    @property
    def is_contender(self) -> bool:
        """Not paused and has pending messages: worth considering for a slot at all."""
        return bool(self.pending) and not self.paused

    @property
    def is_at_max_workers(self) -> bool:
        return self.max_workers is not None and self.running >= self.max_workers


@dataclass(frozen=True, slots=True)
class BaseState:
    """A target database: its default limit, reserved minimum, time windows and pause flag."""

    name: str
    max_workers: int
    min_workers: int = 0
    windows: tuple[Window, ...] = ()
    paused: bool = False

    def __post_init__(self) -> None:
        if self.max_workers < 0:
            raise ValueError(f"base {self.name}: max_workers {self.max_workers} is negative")
        if not 0 <= self.min_workers <= self.max_workers:
            raise ValueError(f"base {self.name}: min_workers {self.min_workers} is not in 0..{self.max_workers}")


def fairness_key(queue: QueueState) -> Fairness:
    """Order of service: higher priority, then fewer running, then least recently served, then name."""
    return queue.fairness


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
