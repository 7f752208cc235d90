"""The immutable picture of queues and bases the scheduler decides on, indexed once for fast decisions.

The service builds a ``Snapshot`` from its state, then keeps it current with ``with_queue`` /
``with_base`` / ``without_queue``: each returns a new snapshot sharing everything that did not
change, so a burst of decisions (a farm asking for 32 slots) never rebuilds the whole index.
A base's running count is the sum of its queues' running counts: one source of truth.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Final

from xtreaming.coordinator.windows import Window

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
class PendingMessage:
    """A message read from the log and waiting for a worker; ``not_before`` is its back-off deadline."""

    partition: int
    offset: int
    key: bytes | None
    attempt: int = 1
    not_before: datetime | None = None

    def __post_init__(self) -> None:
        if self.not_before is not None and self.not_before.utcoffset() is None:
            raise ValueError(f"message {self.partition}/{self.offset}: not_before must be timezone-aware")


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
    #: The earliest back-off deadline when every pending message has one, else None: lets a decision
    #: skip a queue in back-off without reading its messages.
    ready_at: datetime | None = field(init=False, repr=False, compare=False)

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
        pending = tuple(sorted(self.pending, key=_lease_order))
        object.__setattr__(self, "pending", pending)
        object.__setattr__(self, "ready_at", _ready_at(pending))

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


def fairness_key(queue: QueueState) -> tuple[int, int, float, str]:
    """Order of service: higher priority, then fewer running, then least recently served, then name."""
    served = float("-inf") if queue.last_served is None else queue.last_served.timestamp()
    return (-queue.priority, queue.running, served, queue.topic)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Queues by topic, bases by name, and the site time zone windows are read in.

    Treat the mappings as read-only: the snapshot copies them once and indexes them.
    Raises ValueError when a queue names a base that is not in ``bases``.
    """

    queues: Mapping[str, QueueState]
    bases: Mapping[str, BaseState]
    time_zone: tzinfo
    _index: _Index = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        queues = dict(self.queues)
        bases = dict(self.bases)
        for topic, queue in queues.items():
            _check_queue(topic, queue, bases)
        for name, base in bases.items():
            if name != base.name:
                raise ValueError(f"base {base.name} is filed under {name!r}")
        object.__setattr__(self, "queues", queues)
        object.__setattr__(self, "bases", bases)
        object.__setattr__(self, "_index", _Index.build(queues.values()))

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

    @property
    def paused_with_pending(self) -> int:
        """How many paused queues hold pending messages (to explain an idle slot)."""
        return self._index.paused_with_pending

    def with_queue(self, queue: QueueState) -> Snapshot:
        """This snapshot with ``queue`` added or replaced (by topic); O(queues of its base)."""
        queues = dict(self.queues)
        bases = self.bases
        _check_queue(queue.topic, queue, bases)
        old = queues.get(queue.topic)
        queues[queue.topic] = queue
        return _assemble(queues, bases, self.time_zone, self._index.replace(old, queue))

    def without_queue(self, topic: str) -> Snapshot:
        """This snapshot without the queue of ``topic`` (no change when there is none)."""
        if topic not in self.queues:
            return self
        queues = dict(self.queues)
        old = queues.pop(topic)
        return _assemble(queues, self.bases, self.time_zone, self._index.replace(old, None))

    def with_base(self, base: BaseState) -> Snapshot:
        """This snapshot with ``base`` added or its settings replaced (by name)."""
        bases = dict(self.bases)
        bases[base.name] = base
        return _assemble(self.queues, bases, self.time_zone, self._index)


@dataclass(frozen=True, slots=True)
class _Index:
    base_running: dict[str, int]
    contenders: dict[str, tuple[QueueState, ...]]
    paused_with_pending: int

    @classmethod
    def build(cls, queues: Iterable[QueueState]) -> _Index:
        base_running: dict[str, int] = {}
        grouped: dict[str, list[QueueState]] = {}
        paused_with_pending = 0
        for queue in queues:
            base_running[queue.base] = base_running.get(queue.base, 0) + queue.running
            if queue.is_contender:
                grouped.setdefault(queue.base, []).append(queue)
            elif queue.pending:
                paused_with_pending += 1
        contenders = {base: tuple(sorted(group, key=fairness_key)) for base, group in grouped.items()}
        return cls(base_running, contenders, paused_with_pending)

    def replace(self, old: QueueState | None, new: QueueState | None) -> _Index:
        base_running = dict(self.base_running)
        contenders = dict(self.contenders)
        paused_with_pending = self.paused_with_pending
        for queue, sign in ((old, -1), (new, 1)):
            if queue is None:
                continue
            base_running[queue.base] = base_running.get(queue.base, 0) + sign * queue.running
            if queue.pending and queue.paused:
                paused_with_pending += sign
        for base in {q.base for q in (old, new) if q is not None}:
            group = [q for q in contenders.get(base, ()) if old is None or q.topic != old.topic]
            if new is not None and new.base == base and new.is_contender:
                group.append(new)
            if group:
                contenders[base] = tuple(sorted(group, key=fairness_key))
            else:
                contenders.pop(base, None)
        return _Index(base_running, contenders, paused_with_pending)


def _assemble(
    queues: Mapping[str, QueueState], bases: Mapping[str, BaseState], time_zone: tzinfo, index: _Index
) -> Snapshot:
    # Skips __post_init__: the parts were checked and the index updated incrementally.
    snapshot = object.__new__(Snapshot)
    object.__setattr__(snapshot, "queues", queues)
    object.__setattr__(snapshot, "bases", bases)
    object.__setattr__(snapshot, "time_zone", time_zone)
    object.__setattr__(snapshot, "_index", index)
    return snapshot


def _check_queue(topic: str, queue: QueueState, bases: Mapping[str, BaseState]) -> None:
    if topic != queue.topic:
        raise ValueError(f"queue {queue.topic} is filed under {topic!r}")
    if queue.base not in bases:
        raise ValueError(f"queue {queue.topic}: base {queue.base} is not in the snapshot")


def _lease_order(message: PendingMessage) -> tuple[int, int]:
    return (message.offset, message.partition)


def _ready_at(pending: tuple[PendingMessage, ...]) -> datetime | None:
    deadlines = [m.not_before for m in pending if m.not_before is not None]
    if len(deadlines) < len(pending) or not deadlines:
        return None
    return min(deadlines)
