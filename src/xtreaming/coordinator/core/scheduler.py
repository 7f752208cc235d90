"""Which queue a free worker slot runs next, with which messages, and why a queue is not being served.

A queue is a *candidate* for a slot when every rule below holds:

* the queue is not paused, and neither is its base;
* it runs fewer tasks than its own ``max_workers`` (when set);
* its base runs fewer tasks than the limit in force now: the smallest ``max_workers`` among the
  base's windows open now, else the base's default (``windows.limit_at``);
* the slot's farm has every label the queue requires;
* at least one pending message is eligible (``pending.leasable``, the one statement of the rule):
  its back-off (``not_before``) has passed, its key is not in flight in the topic, and no earlier
  message with the same key is still waiting (so the messages of one key run in offset order, one
  at a time).

Among candidates the slot goes to, in this order:

1. **Reservation.** Candidates whose base runs fewer than its ``min_workers`` come first, whatever
   their priority. The reservation lives *under* the limit in force (a window's max of 2 wins
   over a min of 4), only holds while the base has work the slot can run, and is claimed on the
   next free slot: running tasks are never pre-empted and no slot is kept idle for it.
2. **Strict priority.** The highest ``priority`` (0..9) wins.
3. **Fairness** among equal priorities: fewer running tasks, then least recently served, then
   topic name (so every decision is deterministic).

The lease carries up to ``batch_size`` eligible messages, oldest offsets first (offset order in
each partition), at most one per key. A decision costs at most O(bases + queues skipped for labels),
never O(queues * messages), and usually far less: the snapshot keeps each base's queues in order of
service, leaves out those that cannot lease before a task ends (at their own max workers, every key
in flight), sets aside those in back-off by the moment they may lease again, and orders the bases by
their first queue, so the search stops at the first base whose best cannot win. Base limits are
computed once a minute.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from itertools import islice
from typing import Final

from xtreaming.coordinator.core.pending import PendingMessage, leasable, without
from xtreaming.coordinator.core.reasons import blocker
from xtreaming.coordinator.core.snapshot import Snapshot
from xtreaming.coordinator.core.state import NO_LABELS, Labels, QueueState, fairness_key
from xtreaming.coordinator.core.windows import WallClock, wall_clock
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
    keys = {m.key for m in lease.messages if m.key is not None}
    return snapshot.with_queue(
        replace(
            queue,
            running=queue.running + 1,
            last_served=now,
            pending=without(queue.pending, lease.messages),
            keys_in_flight=queue.keys_in_flight | keys,
        )
    )


def take_batch(queue: QueueState, now: datetime) -> tuple[PendingMessage, ...]:
    """Up to ``batch_size`` messages of ``queue`` that are ``leasable`` at ``now``, oldest first (one per key)."""
    head = queue.pending[: queue.batch_size]
    keys = [m.key for m in head]
    if (
        [m.not_before for m in head].count(None) == len(head)
        and None not in keys
        and len(set(keys)) == len(keys)
        and queue.keys_in_flight.isdisjoint(keys)
    ):
        # The usual case, checked in C: nothing holds back the first messages (no back-off, distinct
        # keys none of which is in flight). The test of ``take_batch`` holds it to ``leasable``.
        return tuple(head)
    return tuple(islice(leasable(queue.pending, queue.keys_in_flight, now), queue.batch_size))


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
    queue = _best_candidate(snapshot, labels, now, clock)
    if queue is None:
        return None
    # Never empty: a candidate not in back-off has a message whose key is free (``QueueState.ready_at``).
    return Lease(queue.topic, take_batch(queue, now))


def _best_candidate(snapshot: Snapshot, labels: Labels, now: datetime, clock: WallClock) -> QueueState | None:
    """The candidate the slot goes to: the first in order of service among those whose base has room,
    that the slot's farm can run and that are not in back-off at ``now``, bases below their reserved
    minimum first. Such a candidate always has an eligible message (see ``QueueState.ready_at``)."""
    room = snapshot.room_at(clock)
    limits = room.limits
    # Candidates whose back-off has ended: usually few, as a queue's next change recomputes its ready_at.
    awake: list[QueueState] = []
    for ready_at, _, queue in snapshot.timed_candidates:
        if ready_at > now:
            break
        limit = limits.get(queue.base)  # None: the base is paused
        if limit is not None and snapshot.base_running(queue.base) < limit and queue.required_labels <= labels:
            awake.append(queue)
    reserved = {
        name for name, minimum in room.minimums.items() if snapshot.base_running(name) < min(minimum, limits[name])
    }
    if reserved:
        best = min((queue for queue in awake if queue.base in reserved), key=fairness_key, default=None)
        for name in reserved:
            best = _better(best, _head(snapshot.candidates(name), labels))
        if best is not None:
            return best
    best = min(awake, key=fairness_key, default=None)
    # Every base in order of its first candidate: once that first is behind the best found so far,
    # no queue of this base or of any later one can win.
    for first, name in snapshot.bases_by_first_candidate:
        if best is not None and first >= best.fairness:
            break
        limit = limits.get(name)
        if limit is not None and snapshot.base_running(name) < limit:
            best = _better(best, _head(snapshot.candidates(name), labels))
    return best


def _head(queues: tuple[QueueState, ...], labels: Labels) -> QueueState | None:
    """The first of a base's candidates (free of back-off) the slot's farm can run."""
    for queue in queues:
        if queue.required_labels <= labels:
            return queue
    return None


def _better(best: QueueState | None, queue: QueueState | None) -> QueueState | None:
    if queue is None or (best is not None and best.fairness < queue.fairness):
        return best
    return queue


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
