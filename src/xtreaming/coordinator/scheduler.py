"""Which queue a free worker slot runs next, with which messages, and why a queue is not being served.

A queue is a *candidate* for a slot when every rule below holds:

* the queue is not paused, and neither is its base;
* it runs fewer tasks than its own ``max_workers`` (when set);
* its base runs fewer tasks than the limit in force now: the smallest ``max_workers`` among the
  base's windows open now, else the base's default (``windows.limit_at``);
* the slot's farm has every label the queue requires;
* at least one pending message is eligible: its back-off (``not_before``) has passed, its key is
  not in flight in the topic, and no earlier message with the same key is still waiting (so the
  messages of one key run in offset order, one at a time).

Among candidates the slot goes to, in this order:

1. **Reservation.** Candidates whose base runs fewer than its ``min_workers`` come first, whatever
   their priority. The reservation lives *under* the limit in force (a window's max of 2 wins
   over a min of 4), only holds while the base has work the slot can run, and is claimed on the
   next free slot: running tasks are never pre-empted and no slot is kept idle for it.
2. **Strict priority.** The highest ``priority`` (0..9) wins.
3. **Fairness** among equal priorities: fewer running tasks, then least recently served, then
   topic name (so every decision is deterministic).

The lease carries up to ``batch_size`` eligible messages, oldest offsets first (offset order in
each partition), at most one per key. A decision costs O(bases + queues skipped), not
O(queues * messages): the snapshot keeps each base's queues in order of service.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Final

from xtreaming.coordinator.reasons import blocker
from xtreaming.coordinator.snapshot import (
    NO_LABELS,
    Labels,
    PendingMessage,
    QueueState,
    Snapshot,
    fairness_key,
)
from xtreaming.coordinator.windows import WallClock, limit_at, wall_clock
from xtreaming.errors import QueueNotFound

#: What ``explain`` answers for a queue the next free slot on a suitable farm would go to.
RUNNABLE: Final = "runnable"


@dataclass(frozen=True, slots=True)
class FreeSlot:
    """An idle worker slot on ``farm``, which declares ``labels``."""

    farm: str
    labels: Labels = NO_LABELS


@dataclass(frozen=True, slots=True)
class Lease:
    """Run ``messages`` (in this order) of ``queue`` on the slot."""

    queue: str
    messages: tuple[PendingMessage, ...]


@dataclass(frozen=True, slots=True)
class Idle:
    """Nothing to run on the slot; ``reason`` says why the first queue in line (``queue``) cannot."""

    reason: str
    queue: str | None = None


Decision = Lease | Idle


def schedule(snapshot: Snapshot, slot: FreeSlot, now: datetime) -> Decision:
    """Decide what ``slot`` runs at ``now`` (aware). Pure: apply a lease with ``apply_lease``."""
    clock = wall_clock(now, snapshot.time_zone)
    lease = _choose(snapshot, slot.labels, now, clock)
    if lease is not None:
        return lease
    top = _first_in_line(snapshot)
    if top is None:
        if snapshot.paused_with_pending:
            return Idle("every queue with pending messages is paused")
        return Idle("no pending messages")
    reason = blocker(snapshot, top, now, clock, [slot.labels], slot_farm=slot.farm)
    return Idle(reason or "no runnable queue", top.topic)


def apply_lease(snapshot: Snapshot, lease: Lease, now: datetime) -> Snapshot:
    """The snapshot once ``lease`` runs: one more task, its messages and keys in flight, served at ``now``."""
    queue = snapshot.queues[lease.queue]
    leased = {(m.partition, m.offset) for m in lease.messages}
    keys = {m.key for m in lease.messages if m.key is not None}
    return snapshot.with_queue(
        replace(
            queue,
            running=queue.running + 1,
            last_served=now,
            pending=tuple(m for m in queue.pending if (m.partition, m.offset) not in leased),
            keys_in_flight=queue.keys_in_flight | keys,
        )
    )


def take_batch(queue: QueueState, now: datetime) -> tuple[PendingMessage, ...]:
    """Up to ``batch_size`` eligible messages of ``queue`` at ``now``, oldest first, one per key."""
    batch: list[PendingMessage] = []
    taken: set[bytes] = set()
    held: set[bytes] = set()  # keys whose earlier message is in back-off: later ones wait for it
    for message in queue.pending:
        key = message.key
        if message.not_before is not None and message.not_before > now:
            if key is not None:
                held.add(key)
            continue
        if key is not None:
            if key in queue.keys_in_flight or key in taken or key in held:
                continue
            taken.add(key)
        batch.append(message)
        if len(batch) == queue.batch_size:
            break
    return tuple(batch)


def explain(snapshot: Snapshot, queue: str, now: datetime, farms: Iterable[Labels]) -> str:
    """Why ``queue`` is not being served at ``now`` given the connected ``farms``' labels.

    Returns ``RUNNABLE`` when the next free slot on some farm able to run it would go to it.
    Raises QueueNotFound for an unknown topic.
    """
    found = snapshot.queues.get(queue)
    if found is None:
        raise QueueNotFound(f"queue {queue!r} is not registered")
    clock = wall_clock(now, snapshot.time_zone)
    label_sets = list(dict.fromkeys(farms))
    reason = blocker(snapshot, found, now, clock, label_sets)
    if reason is not None:
        return reason
    rival: QueueState | None = None
    for labels in label_sets:
        if not found.required_labels <= labels:
            continue
        lease = _choose(snapshot, labels, now, clock)
        if lease is None or lease.queue == found.topic:
            return RUNNABLE
        rival = rival or snapshot.queues[lease.queue]
    return RUNNABLE if rival is None else _behind(snapshot, found, rival)


def _choose(snapshot: Snapshot, labels: Labels, now: datetime, clock: WallClock) -> Lease | None:
    # One head per base with room: [order, position, the base's queues]. The best head is tried;
    # when its queue has no eligible message (keys in flight) the base's next candidate replaces it.
    heads: list[tuple[tuple[bool, int, int, float, str], int, tuple[QueueState, ...]]] = []
    for name in snapshot.bases_with_contenders:
        base = snapshot.bases[name]
        running = snapshot.base_running(name)
        if base.paused or running >= limit_at(base.max_workers, base.windows, clock).max_workers:
            continue
        queues = snapshot.contenders(name)
        position = _next_candidate(queues, 0, labels, now)
        if position is not None:
            heads.append((_order(running < base.min_workers, queues[position]), position, queues))
    while heads:
        head = min(heads)
        _, position, queues = head
        batch = take_batch(queues[position], now)
        if batch:
            return Lease(queues[position].topic, batch)
        heads.remove(head)
        following = _next_candidate(queues, position + 1, labels, now)
        if following is not None:
            reserved = not head[0][0]
            heads.append((_order(reserved, queues[following]), following, queues))
    return None


def _order(reserved: bool, queue: QueueState) -> tuple[bool, int, int, float, str]:
    return (not reserved, *fairness_key(queue))


def _next_candidate(queues: tuple[QueueState, ...], start: int, labels: Labels, now: datetime) -> int | None:
    for position in range(start, len(queues)):
        queue = queues[position]
        if queue.is_at_max_workers or not queue.required_labels <= labels:
            continue
        if queue.ready_at is not None and queue.ready_at > now:
            continue
        return position
    return None


def _first_in_line(snapshot: Snapshot) -> QueueState | None:
    firsts = [snapshot.contenders(name)[0] for name in snapshot.bases_with_contenders]
    return min(firsts, key=fairness_key, default=None)


def _behind(snapshot: Snapshot, queue: QueueState, rival: QueueState) -> str:
    base = snapshot.bases[rival.base]
    running = snapshot.base_running(base.name)
    own = snapshot.bases[queue.base]
    own_reserved = snapshot.base_running(own.name) < own.min_workers
    if rival.base != queue.base and running < base.min_workers and not own_reserved:
        return (
            f"waiting behind queue {rival.topic}: "
            f"base {base.name} is below its reserved minimum {running}/{base.min_workers}"
        )
    if rival.priority > queue.priority:
        return f"waiting behind higher-priority queue {rival.topic}"
    return f"waiting its turn behind queue {rival.topic} of equal priority"
