"""The snapshot's indexes change how fast a slot is decided, never what is decided.

Random sites are driven through leases, completions and the passing of time; every decision must
equal an exhaustive search that applies the rules of ``schedule`` to every queue, unindexed.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from tests.coordinator.builders import SITE, at, base, make_queue, message, window
from xtreaming.coordinator.core.pending import PendingMessage
from xtreaming.coordinator.core.scheduler import (
    Decision,
    FreeSlot,
    Lease,
    Repeat,
    apply_lease,
    repeat_of,
    schedule,
    take_batch,
)
from xtreaming.coordinator.core.snapshot import Snapshot
from xtreaming.coordinator.core.state import BaseState, Labels, QueueState, labels_of
from xtreaming.coordinator.core.windows import limit_at, wall_clock

START = at("2025-03-04T17:58")  # a window closes at 18:00 while the site runs
BASES = ("MULTCOB01", "MULTCOB02", "MULTCOB03", "MULTCOB04", "MULTCOB05")
KEYS = ("a", "b", "c", "d", None)
FARM_LABELS = (labels_of({}), labels_of({"os": "linux"}), labels_of({"os": "windows"}))


def exhaustive(state: Snapshot, labels: Labels, now: datetime) -> Lease | None:
    """``schedule``'s rules applied to every queue in turn: the lease it must decide, if any."""
    clock = wall_clock(now, SITE)
    best: tuple[tuple[bool, int, int, float, str], Lease] | None = None
    for queue in state.queues.values():
        base_state = state.bases[queue.base]
        running = sum(q.running for q in state.queues.values() if q.base == queue.base)
        if queue.paused or base_state.paused or not queue.required_labels <= labels:
            continue
        if running >= limit_at(base_state.max_workers, base_state.windows, clock).max_workers:
            continue
        if queue.max_workers is not None and queue.running >= queue.max_workers:
            continue
        batch = take_batch(queue, now)
        if not batch:
            continue
        served = float("-inf") if queue.last_served is None else queue.last_served.timestamp()
        order = (running >= base_state.min_workers, -queue.priority, queue.running, served, queue.topic)
        if best is None or order < best[0]:
            best = (order, Lease(queue.topic, batch))
    return None if best is None else best[1]


def random_base(rng: random.Random, name: str) -> BaseState:
    most = rng.randint(1, 6)
    windows = [window("08:00", "18:00", max_workers=rng.randint(0, most))] if rng.random() < 0.5 else []
    return base(
        name, max_workers=most, min_workers=rng.randint(0, 2) % (most + 1), windows=windows, paused=rng.random() < 0.1
    )


def random_pending(rng: random.Random) -> list[PendingMessage]:
    offsets = rng.sample(range(20), rng.randint(0, 8))
    return [
        message(
            offset,
            key=rng.choice(KEYS),
            partition=rng.randint(0, 1),
            not_before=START + timedelta(seconds=rng.randint(-60, 240)) if rng.random() < 0.3 else None,
        )
        for offset in offsets
    ]


def random_queue(rng: random.Random, number: int) -> QueueState:
    return make_queue(
        f"{rng.choice(BASES)}.{number}.IMPORTACAO.CARGA",
        priority=rng.choice((0, 4, 5, 5, 5, 9)),  # mostly equal: fairness decides across bases
        batch_size=rng.randint(1, 4),
        pending=random_pending(rng),
        running=rng.randint(0, 2),
        paused=rng.random() < 0.1,
        max_workers=rng.choice((None, None, 1, 2, 3)),
        labels=rng.choice(({}, {}, {"os": "linux"})),
        last_served=rng.choice((None, START - timedelta(seconds=rng.randint(1, 600)))),
        keys_in_flight=[k for k in KEYS if k is not None and rng.random() < 0.3],
    )


def completed(rng: random.Random, queue: QueueState) -> QueueState:
    """``queue`` once one of its tasks ends: some of its keys are free again."""
    freed = frozenset(k for k in queue.keys_in_flight if rng.random() < 0.5)
    return replace(queue, running=queue.running - 1, keys_in_flight=queue.keys_in_flight - freed)


class Drive:
    """A random site driven through time, its ``state`` kept by the caller as slots lease."""

    def __init__(self, rng: random.Random, state: Snapshot) -> None:
        self.rng = rng
        self.state = state
        self.now = START

    def moments(self, steps: int) -> Iterator[datetime]:
        """``steps`` steps of up to 20 s: at some a task ends; the others are moments to decide slots at."""
        for _ in range(steps):
            self.now += timedelta(seconds=self.rng.randint(0, 20))
            if self.rng.random() < 0.3:
                busy = [q for q in self.state.queues.values() if q.running > 0]
                if busy:
                    self.state = self.state.with_queue(completed(self.rng, self.rng.choice(busy)))
                continue
            yield self.now


@pytest.mark.parametrize("seed", range(100))
def test_every_decision_equals_an_exhaustive_search(seed: int) -> None:
    rng = random.Random(seed)
    bases = [random_base(rng, name) for name in BASES]
    site = Drive(rng, Snapshot.build([random_queue(rng, n) for n in range(20)], bases, SITE))
    for now in site.moments(80):
        labels = rng.choice(FARM_LABELS)
        decision: Decision = schedule(site.state, FreeSlot("farm", labels), now)
        expected = exhaustive(site.state, labels, now)
        assert (decision if isinstance(decision, Lease) else None) == expected
        if isinstance(decision, Lease):
            site.state = apply_lease(site.state, decision, now)


def one_at_a_time(state: Snapshot, slot: FreeSlot, slots: int, now: datetime) -> tuple[list[Lease], Snapshot]:
    """``slots`` slots like ``slot`` decided in turn, each lease applied before the next decision."""
    leases: list[Lease] = []
    for _ in range(slots):
        decision = schedule(state, slot, now)
        if not isinstance(decision, Lease):
            break
        leases.append(decision)
        state = apply_lease(state, decision, now)
    return leases, state


def repeating(state: Snapshot, slot: FreeSlot, slots: int, now: datetime) -> tuple[list[Lease], int]:
    """The same slots decided as the coordinator decides them: in full, then by ``Repeat`` while it says; how many
    were decided without a search."""
    leases: list[Lease] = []
    repeat: Repeat | None = None
    repeated = 0
    for _ in range(slots):
        lease = None if repeat is None else repeat.lease(state.queues[repeat.queue], now)
        if lease is None:
            decision = schedule(state, slot, now)
            if not isinstance(decision, Lease):
                break
            lease, repeat = decision, repeat_of(state, slot, decision, now)
        else:
            repeated += 1
        leases.append(lease)
        state = apply_lease(state, lease, now)
    return leases, repeated


def repeat_site(rng: random.Random) -> Snapshot:
    """A random site of a few queues or many; in half of them no base has a reserved minimum, so that the queue a slot
    goes to may take the next slots too (where one has, every slot is decided in full), and in half of them the
    queues' priorities are spread (few equal ones share the slots in turn)."""
    bases = [random_base(rng, name) for name in BASES]
    if rng.random() < 0.5:
        bases = [replace(b, min_workers=0) for b in bases]
    queues = [random_queue(rng, n) for n in range(rng.choice((1, 2, 4, 20)))]
    if rng.random() < 0.5:
        queues = [replace(q, priority=rng.randint(0, 9)) for q in queues]
    return Snapshot.build(queues, bases, SITE)


def test_slots_decided_by_repeating_the_last_decision_get_what_they_would_one_at_a_time() -> None:
    repeated = decided = 0
    for seed in range(200):
        rng = random.Random(seed)
        site = Drive(rng, repeat_site(rng))
        for now in site.moments(40):
            slot = FreeSlot("farm", rng.choice(FARM_LABELS), rng.choice((0, 0, 0, 5, 9)))
            slots = rng.randint(1, 8)
            before = site.state
            expected, site.state = one_at_a_time(before, slot, slots, now)
            leases, count = repeating(before, slot, slots, now)
            assert leases == expected, f"seed {seed}"
            repeated += count
            decided += len(leases)
    assert repeated > decided // 50  # enough of them decided by repeating for the comparison to mean something


def test_a_queue_served_for_its_bases_reserved_minimum_is_not_repeated_once_its_lease_meets_it() -> None:
    # MULTCOB01 runs nothing under a minimum of one: its best queue goes first, whatever the priorities; once it runs
    # one task the minimum is met and the next slot goes by priority, to MULTCOB02's, not to the reserved base's.
    reserved = [
        make_queue("MULTCOB01.1.IMPORTACAO.A", priority=5, batch_size=1),
        make_queue("MULTCOB01.1.IMPORTACAO.B", priority=0, batch_size=1),
    ]
    urgent = make_queue("MULTCOB02.1.COBSINC.C", priority=9, batch_size=1)
    state = Snapshot.build([*reserved, urgent], [base("MULTCOB01", min_workers=1), base("MULTCOB02")], SITE)
    slot = FreeSlot("farm")

    expected, _ = one_at_a_time(state, slot, 3, START)
    leases, repeated = repeating(state, slot, 3, START)

    assert [lease.queue for lease in expected] == ["MULTCOB01.1.IMPORTACAO.A", urgent.topic, urgent.topic]
    assert (leases, repeated) == (expected, 1)  # the third slot repeats the second's decision
