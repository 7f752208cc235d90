"""Small builders for the pure coordinator core: queues, bases, windows, messages, moments."""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from xtreaming.coordinator.core.pending import PendingMessage
from xtreaming.coordinator.core.scheduler import Decision, FreeSlot, Lease
from xtreaming.coordinator.core.snapshot import Snapshot
from xtreaming.coordinator.core.state import BaseState, QueueState, labels_of
from xtreaming.coordinator.core.windows import Window

SITE = ZoneInfo("America/Sao_Paulo")
TOPIC = "MULTCOB03.1186.IMPORTACAO.CARGA"
EVERY_DAY = range(7)


def at(text: str) -> datetime:
    """``2025-03-04T10:00`` in the site zone (UTC-3), or with its own offset when it has one."""
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=SITE)


def window(start: str, end: str, *, max_workers: int, days: Iterable[int] = EVERY_DAY) -> Window:
    return Window.parse(days, start, end, max_workers)


def base(
    name: str = "MULTCOB03",
    *,
    max_workers: int = 8,
    min_workers: int = 0,
    windows: Iterable[Window] = (),
    paused: bool = False,
) -> BaseState:
    return BaseState(name, max_workers, min_workers, tuple(windows), paused)


def message(
    offset: int,
    *,
    key: str | None = "",
    partition: int = 0,
    attempt: int = 1,
    not_before: datetime | None = None,
) -> PendingMessage:
    """A pending message; its key defaults to ``cpf-<offset>`` (distinct per offset)."""
    raw = f"cpf-{offset}" if key == "" else key
    return PendingMessage(partition, offset, None if raw is None else raw.encode(), attempt, not_before)


def random_messages(rng: random.Random, now: datetime, *, most: int = 14) -> list[PendingMessage]:
    """1 to ``most`` messages whose keys often repeat or are None, a quarter in back-off ending before, at or
    after ``now``: the cases the rule that holds a message back (``pending.leasable``) tells apart."""
    keys = [None, "a", "b", "c"] + [""] * 8  # "": a key of its own
    moments = [None] * 9 + [now - timedelta(minutes=1), now, now + timedelta(seconds=30), now + timedelta(minutes=1)]
    return [message(o, key=rng.choice(keys), not_before=rng.choice(moments)) for o in range(rng.randint(1, most))]


def make_queue(
    topic: str = TOPIC,
    *,
    priority: int = 5,
    batch_size: int = 10,
    pending: int | Iterable[PendingMessage] = 3,
    running: int = 0,
    paused: bool = False,
    max_workers: int | None = None,
    labels: Mapping[str, str] | None = None,
    last_served: datetime | None = None,
    keys_in_flight: Iterable[str] = (),
) -> QueueState:
    """A queue of ``topic`` on the base its name starts with; ``pending=3`` means offsets 0, 1, 2."""
    base_name, _, kind, _ = topic.split(".")
    messages = tuple(message(o) for o in range(pending)) if isinstance(pending, int) else tuple(pending)
    return QueueState(
        topic=topic,
        base=base_name,
        kind=kind,
        priority=priority,
        batch_size=batch_size,
        paused=paused,
        max_workers=max_workers,
        required_labels=labels_of(labels or {}),
        running=running,
        last_served=last_served,
        pending=messages,
        keys_in_flight=frozenset(k.encode() for k in keys_in_flight),
    )


def snapshot(*items: QueueState | BaseState) -> Snapshot:
    """A snapshot of the queues and bases given; a queue's base defaults to ``base(name)``."""
    bases = {b.name: b for b in items if isinstance(b, BaseState)}
    queues = [q for q in items if isinstance(q, QueueState)]
    for queue in queues:
        bases.setdefault(queue.base, base(queue.base))
    return Snapshot.build(queues, bases.values(), SITE)


def slot(farm: str = "farm-1", **labels: str) -> FreeSlot:
    return FreeSlot(farm, labels_of(labels))


def farms(*label_sets: Mapping[str, str]) -> list[frozenset[tuple[str, str]]]:
    """The connected farms' labels, for ``explain``."""
    return [labels_of(labels) for labels in label_sets]


def leased(decision: Decision) -> tuple[str, list[tuple[int, int]]]:
    """The leased queue and its messages' (partition, offset), in lease order; fails on ``Idle``."""
    if not isinstance(decision, Lease):
        raise AssertionError(f"expected a lease, got {decision}")
    return decision.queue, [(m.partition, m.offset) for m in decision.messages]
