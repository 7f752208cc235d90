"""The state types the scheduling core shares: a queue, a base, labels, priority bounds, fairness.

``index``, ``snapshot``, ``scheduler`` and ``reasons`` all read these; none of them owns them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from xtreaming.coordinator.core.pending import PendingMessage, in_lease_order, readiness
from xtreaming.coordinator.core.windows import Window

#: ``QueueState.fairness``: higher priority, fewer running, least recently served, topic.
Fairness = tuple[int, int, float, str]

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
    ``keys_in_flight`` are the keys of this topic's messages currently leased; only those of ``pending``
    messages matter to a decision, and the service gives no others.
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
    #: False when the queue's settings name neither a worker command nor a handler: every task would
    #: fail and its messages end in the DLQ, so the queue is never a contender until one is set.
    has_worker: bool = True
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
        """Not paused, has a worker and pending messages: worth considering for a slot at all."""
        return bool(self.pending) and not self.paused and self.has_worker

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
