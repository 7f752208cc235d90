"""Which queue a free worker slot runs next, with which messages, and why a queue is not being served.

A queue is a *candidate* for a slot when every rule below holds:

* the queue is not paused, and neither is its base;
* it runs fewer tasks than its own ``max_workers`` (when set);
* its base runs fewer tasks than the limit in force now: the smallest ``max_workers`` among the
  base's windows open now, else the base's default (``windows.limit_at``);
* the slot's farm has every label the queue requires;
* the queue's priority is at least the slot's ``min_priority``: a slot reserved for urgent work takes
  only queues of that priority or above (an ordinary slot, 0, takes any, urgent ones included);
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
computed once a minute. A farm asking for several slots has them decided in turn, each lease applied before the
next decision; a slot like the one decided last goes without a search to the same queue while that queue still
wins (``Repeat``): a farm of 32 slots on one queue costs one search, not 32.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from itertools import islice
from typing import Final

from xtreaming.coordinator.core.pending import PendingMessage, leasable, without
from xtreaming.coordinator.core.reasons import WAITING_FOR_URGENT_SLOT, blocker, reserved_for_urgent
from xtreaming.coordinator.core.snapshot import Snapshot
from xtreaming.coordinator.core.state import MIN_PRIORITY, NO_LABELS, Fairness, Labels, QueueState, fairness_key
from xtreaming.coordinator.core.windows import WallClock, wall_clock
from xtreaming.errors import QueueNotFound

#: What ``explain`` answers for a queue the next free slot on a suitable farm would go to.
RUNNABLE: Final = "runnable"


@dataclass(frozen=True, slots=True)
class FreeSlot:
    """An idle worker slot on ``farm``, which declares ``labels``; a slot reserved for urgent work takes only
    queues of priority ``min_priority`` or above (0: any queue)."""

    farm: str
    labels: Labels = NO_LABELS
    min_priority: int = MIN_PRIORITY


@dataclass(frozen=True, slots=True)
class SlotGroup:
    """Slots of a connected farm that take the same queues, as ``explain`` weighs them: the farm's ``labels``,
    the least priority they take (``FreeSlot.min_priority``) and how many of them are idle now."""

    labels: Labels
    min_priority: int = MIN_PRIORITY
    free: int = 1


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
    lease = _choose(snapshot, slot.labels, now, clock, slot.min_priority)
    if lease is not None:
        return lease
    if slot.min_priority > MIN_PRIORITY:
        ordinary = _choose(snapshot, slot.labels, now, clock)
        if ordinary is not None:  # work the slot would run were it not reserved: all of it below the priority
            return Idle(reserved_for_urgent(slot.min_priority), ordinary.queue)
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


@dataclass(frozen=True, slots=True)
class Repeat:
    """When the next slot like ``slot`` goes to ``queue`` again, the queue a decision leased (``repeat_of``), while
    nothing but that queue's own leases changes: checked on the queue's new state alone, without a new snapshot or a
    search. The other queues keep their places, so the slot goes to it while it may still lease (room left under its
    base's ``limit``) and still comes before the best of the others, ``rival``."""

    slot: FreeSlot
    queue: str
    #: The limit in force on the queue's base, and how many tasks the base's other queues run.
    limit: int
    others_running: int
    #: The place in the order of service (``QueueState.fairness``) of the queue the slot would go to otherwise.
    rival: Fairness | None

    def lease(self, queue: QueueState, now: datetime) -> Lease | None:
        """What ``schedule`` decides for the slot at ``now`` once ``queue`` is this repeat's queue's state (changed
        since by its own leases only), when the slot still goes to it; None when a decision must be made in full."""
        if (
            queue.is_contender
            and queue.ready_at is None
            and not queue.waits_for_keys
            and not queue.is_at_max_workers
            and queue.priority >= self.slot.min_priority
            and queue.required_labels <= self.slot.labels
            and self.others_running + queue.running < self.limit
            and (self.rival is None or queue.fairness < self.rival)
        ):
            return Lease(queue.topic, take_batch(queue, now))
        return None


def repeat_of(snapshot: Snapshot, slot: FreeSlot, lease: Lease, now: datetime) -> Repeat | None:
    """For a ``lease`` that ``schedule`` decided for ``slot`` on ``snapshot`` at ``now``: what decides the next slot
    alike once it runs (``Repeat``); None when the queue went first for its base's reserved minimum, which its own
    leases end (the next slot is then decided in full). Its leases change nothing else a decision weighs: every other
    queue keeps its place, a base below its reserved minimum stays so (and had no work for the slot), and the other
    queues of its base keep room exactly while it does."""
    clock = wall_clock(now, snapshot.time_zone)
    room = snapshot.room_at(clock)
    queue = snapshot.queues[lease.queue]
    limit = room.limits[queue.base]
    running = snapshot.base_running(queue.base)
    if running < min(room.minimums.get(queue.base, 0), limit):
        return None
    rival = _best_candidate(snapshot, slot.labels, now, clock, slot.min_priority, skip=queue.topic)
    return Repeat(slot, queue.topic, limit, running - queue.running, None if rival is None else rival.fairness)


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


def explain(
    snapshot: Snapshot, queue: str, now: datetime, farms: Iterable[Labels], slots: Iterable[SlotGroup] | None = None
) -> str:
    """Why ``queue`` is not being served at ``now`` given the connected ``farms``' labels and their ``slots``.

    Returns ``RUNNABLE`` when the next free slot on some farm able to run it would go to it. Without ``slots``
    every farm counts as one ordinary slot, idle. With them, a queue that would take the next slot to free up,
    every slot it may take being busy, is ``RUNNABLE`` too, unless those slots include urgent ones
    (``WAITING_FOR_URGENT_SLOT``); a queue whose farms' only idle slots are reserved above its priority is
    told so (``reserved_for_urgent``). Raises QueueNotFound for an unknown topic.
    """
    found = snapshot.queues.get(queue)
    if found is None:
        raise QueueNotFound(f"queue {queue!r} is not registered")
    clock = wall_clock(now, snapshot.time_zone)
    label_sets = list(dict.fromkeys(farms))
    reason = blocker(snapshot, found, now, clock, label_sets)
    if reason is not None:
        return reason
    free: dict[tuple[Labels, int], int] = {}
    for group in [SlotGroup(labels) for labels in label_sets] if slots is None else slots:
        free[group.labels, group.min_priority] = free.get((group.labels, group.min_priority), 0) + group.free
    rival: QueueState | None = None
    won = urgent_won = False  # it would take the next free slot of a group whose slots are all busy (reserved ones)
    idle_to_rival = False  # an idle slot it may take goes to another queue
    refused: int | None = None  # the least priority of the idle slots of its farms that it is below
    for (labels, min_priority), idle in free.items():
        if not found.required_labels <= labels:
            continue
        if found.priority < min_priority:
            if idle:
                refused = min_priority if refused is None else min(refused, min_priority)
            continue
        lease = _choose(snapshot, labels, now, clock, min_priority)
        if lease is None or lease.queue == found.topic:
            if idle:
                return RUNNABLE
            won = True
            urgent_won = urgent_won or min_priority > MIN_PRIORITY
        else:
            rival = rival or snapshot.queues[lease.queue]
            idle_to_rival = idle_to_rival or idle > 0
    if urgent_won:
        return WAITING_FOR_URGENT_SLOT
    if not won and rival is not None:
        return _behind(snapshot, found, rival)
    if refused is None or idle_to_rival:
        return RUNNABLE
    return f"the idle slots are {reserved_for_urgent(refused)}"


def _choose(
    snapshot: Snapshot, labels: Labels, now: datetime, clock: WallClock, min_priority: int = MIN_PRIORITY
) -> Lease | None:
    queue = _best_candidate(snapshot, labels, now, clock, min_priority)
    if queue is None:
        return None
    # Never empty: a candidate not in back-off has a message whose key is free (``QueueState.ready_at``).
    return Lease(queue.topic, take_batch(queue, now))


def _best_candidate(
    snapshot: Snapshot, labels: Labels, now: datetime, clock: WallClock, min_priority: int, skip: str | None = None
) -> QueueState | None:
    """The candidate the slot goes to: the first in order of service among those whose base has room,
    that the slot's farm can run, of ``min_priority`` or above and not in back-off at ``now``, bases below
    their reserved minimum first. Such a candidate always has an eligible message (see ``QueueState.ready_at``).
    ``skip``: a queue left out (``repeat_of`` asks which queue would come next after it)."""
    room = snapshot.room_at(clock)
    limits = room.limits
    # Candidates whose back-off has ended: usually few, as a queue's next change recomputes its ready_at.
    awake: list[QueueState] = []
    for ready_at, _, queue in snapshot.timed_candidates:
        if ready_at > now:
            break
        limit = limits.get(queue.base)  # None: the base is paused
        if (
            limit is not None
            and snapshot.base_running(queue.base) < limit
            and queue.required_labels <= labels
            and queue.priority >= min_priority
            and queue.topic != skip
        ):
            awake.append(queue)
    reserved = {
        name for name, minimum in room.minimums.items() if snapshot.base_running(name) < min(minimum, limits[name])
    }
    if reserved:
        best = min((queue for queue in awake if queue.base in reserved), key=fairness_key, default=None)
        for name in reserved:
            best = _better(best, _head(snapshot.candidates(name), labels, min_priority, skip))
        if best is not None:
            return best
    best = min(awake, key=fairness_key, default=None)
    # Every base in order of its first candidate: once that first is behind the best found so far,
    # no queue of this base or of any later one can win; nor once it is below the slot's least priority.
    for first, name in snapshot.bases_by_first_candidate:
        if (best is not None and first >= best.fairness) or -first[0] < min_priority:
            break
        limit = limits.get(name)
        if limit is not None and snapshot.base_running(name) < limit:
            best = _better(best, _head(snapshot.candidates(name), labels, min_priority, skip))
    return best


def _head(
    queues: tuple[QueueState, ...], labels: Labels, min_priority: int, skip: str | None = None
) -> QueueState | None:
    """The first of a base's candidates (free of back-off) the slot's farm can run, if of ``min_priority`` or above,
    other than ``skip``."""
    for queue in queues:
        if queue.priority < min_priority:  # in order of service: every later one is below it too
            return None
        if queue.required_labels <= labels and queue.topic != skip:
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
