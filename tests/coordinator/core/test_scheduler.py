"""Scheduling decisions: every rule of ``schedule``, asserted on the lease or the idle reason."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from itertools import islice

import pytest

from tests.coordinator.builders import (
    at,
    base,
    leased,
    make_queue,
    message,
    random_messages,
    slot,
    snapshot,
    window,
)
from xtreaming.coordinator.core.pending import PendingMessage, is_backing_off, leasable
from xtreaming.coordinator.core.scheduler import Idle, Lease, apply_lease, schedule, take_batch
from xtreaming.coordinator.core.state import QueueState

NOW = at("2025-03-04T10:00")  # a Tuesday
URGENT = "MULTCOB02.77.COBSINC.ATUALIZA"
BULK = "MULTCOB03.1186.IMPORTACAO.CARGA"
OTHER = "MULTCOB03.1187.IMPORTACAO.CARGA"
THIRD = "MULTCOB04.1188.IMPORTACAO.CARGA"


def test_nothing_pending_leaves_the_slot_idle() -> None:
    assert schedule(snapshot(), slot(), NOW) == Idle("no pending messages")
    assert schedule(snapshot(make_queue(pending=0)), slot(), NOW) == Idle("no pending messages")


def test_a_lease_takes_up_to_batch_size_messages_oldest_first() -> None:
    state = snapshot(make_queue(batch_size=2, pending=[message(7), message(5), message(6)]))
    assert leased(schedule(state, slot(), NOW)) == (BULK, [(0, 5), (0, 6)])


def test_a_batch_keeps_offset_order_in_each_partition_and_takes_lagging_partitions_first() -> None:
    pending = [message(11, partition=1), message(3, partition=0), message(2, partition=1), message(4, partition=0)]
    state = snapshot(make_queue(batch_size=3, pending=pending))
    assert leased(schedule(state, slot(), NOW)) == (BULK, [(1, 2), (0, 3), (0, 4)])


def test_strict_priority_gives_the_slot_to_the_highest_priority_queue() -> None:
    state = snapshot(make_queue(BULK, priority=5), make_queue(URGENT, priority=9), make_queue(THIRD, priority=7))
    assert leased(schedule(state, slot(), NOW))[0] == URGENT


def test_priority_beats_fairness() -> None:
    state = snapshot(make_queue(BULK, priority=5), make_queue(URGENT, priority=6, running=3))
    assert leased(schedule(state, slot(), NOW))[0] == URGENT


def test_equal_priorities_go_to_the_queue_with_fewer_running() -> None:
    state = snapshot(
        make_queue(BULK, running=2, last_served=NOW - timedelta(hours=1)),
        make_queue(THIRD, running=1, last_served=NOW),
    )
    assert leased(schedule(state, slot(), NOW))[0] == THIRD


def test_equal_priorities_and_running_go_to_the_least_recently_served() -> None:
    state = snapshot(
        make_queue(BULK, running=1, last_served=NOW - timedelta(seconds=1)),
        make_queue(THIRD, running=1, last_served=NOW - timedelta(seconds=2)),
    )
    assert leased(schedule(state, slot(), NOW))[0] == THIRD


def test_a_never_served_queue_goes_before_one_served_and_names_break_ties() -> None:
    served = snapshot(make_queue(BULK, last_served=NOW), make_queue(THIRD))
    assert leased(schedule(served, slot(), NOW))[0] == THIRD
    tied = snapshot(make_queue(THIRD), make_queue(OTHER), make_queue(BULK))
    assert leased(schedule(tied, slot(), NOW))[0] == BULK


def test_equal_priorities_share_slots_in_turn() -> None:
    state = snapshot(make_queue(BULK, pending=10, batch_size=1), make_queue(THIRD, pending=10, batch_size=1))
    served = []
    for second in range(4):
        decision = schedule(state, slot(), NOW + timedelta(seconds=second))
        assert isinstance(decision, Lease)
        served.append(decision.queue)
        state = apply_lease(state, decision, NOW + timedelta(seconds=second))
    assert served == [BULK, THIRD, BULK, THIRD]


def test_a_paused_queue_gets_nothing_and_the_next_one_runs() -> None:
    state = snapshot(make_queue(URGENT, priority=9, paused=True), make_queue(BULK, priority=1))
    assert leased(schedule(state, slot(), NOW))[0] == BULK


def test_when_every_queue_with_work_is_paused_the_slot_says_so() -> None:
    state = snapshot(make_queue(BULK, paused=True), make_queue(THIRD, pending=0))
    assert schedule(state, slot(), NOW) == Idle("every queue with pending messages is paused")


def test_a_paused_base_gets_nothing() -> None:
    state = snapshot(base("MULTCOB03", paused=True), make_queue(BULK, priority=9), make_queue(THIRD, priority=1))
    assert leased(schedule(state, slot(), NOW))[0] == THIRD
    alone = snapshot(base("MULTCOB03", paused=True), make_queue(BULK))
    assert schedule(alone, slot(), NOW) == Idle("base MULTCOB03 paused", BULK)


def test_a_base_at_its_default_limit_gets_nothing() -> None:
    state = snapshot(base("MULTCOB03", max_workers=8), make_queue(BULK, running=5), make_queue(OTHER, running=3))
    assert schedule(state, slot(), NOW) == Idle("base MULTCOB03 at its limit 8/8", OTHER)


def test_the_smallest_matching_window_limits_the_base() -> None:
    windows = [window("08:00", "18:00", max_workers=4), window("06:00", "20:00", max_workers=6)]
    state = snapshot(base("MULTCOB03", max_workers=8, windows=windows), make_queue(BULK, running=4))
    assert schedule(state, slot(), NOW) == Idle("base MULTCOB03 at its limit 4/4 in window 08:00–18:00", BULK)
    assert leased(schedule(state, slot(), at("2025-03-04T18:00")))[0] == BULK  # 6 in force, 4 running


def test_a_base_over_a_lowered_limit_says_over() -> None:
    windows = [window("08:00", "18:00", max_workers=4)]
    state = snapshot(base("MULTCOB03", windows=windows), make_queue(BULK, running=6))
    assert schedule(state, slot(), NOW) == Idle("base MULTCOB03 over its limit 6/4 in window 08:00–18:00", BULK)


def test_a_window_of_zero_workers_stops_the_base_and_others_run() -> None:
    closed = base("MULTCOB03", windows=[window("08:00", "18:00", max_workers=0)])
    state = snapshot(closed, make_queue(BULK, priority=9), make_queue(THIRD, priority=1))
    assert leased(schedule(state, slot(), NOW))[0] == THIRD


def test_a_queue_at_its_own_max_workers_gets_nothing_and_its_base_mate_runs() -> None:
    state = snapshot(make_queue(BULK, priority=9, max_workers=2, running=2), make_queue(OTHER, priority=1))
    assert leased(schedule(state, slot(), NOW))[0] == OTHER
    alone = snapshot(make_queue(BULK, max_workers=2, running=2))
    assert schedule(alone, slot(), NOW) == Idle("queue at its max workers 2/2", BULK)


def test_a_queue_runs_only_on_farms_with_all_its_labels() -> None:
    state = snapshot(make_queue(BULK, labels={"os": "linux", "site": "sp"}))
    assert schedule(state, slot("win-1", os="windows", site="sp"), NOW) == Idle("farm win-1 lacks label os=linux", BULK)
    assert schedule(state, slot("bare"), NOW) == Idle("farm bare lacks labels os=linux, site=sp", BULK)
    assert leased(schedule(state, slot("lnx-1", os="linux", site="sp", rack="2"), NOW))[0] == BULK


def test_a_label_mismatch_passes_the_slot_to_a_lower_priority_queue() -> None:
    state = snapshot(make_queue(URGENT, priority=9, labels={"local-ana": "1"}), make_queue(BULK, priority=1))
    assert leased(schedule(state, slot(os="windows"), NOW))[0] == BULK
    assert leased(schedule(state, slot(**{"local-ana": "1"}), NOW))[0] == URGENT


def test_messages_whose_keys_are_in_flight_are_not_leased() -> None:
    pending = [message(0, key="111"), message(1, key="222"), message(2, key="333")]
    state = snapshot(make_queue(pending=pending, keys_in_flight=["111", "333"]))
    assert leased(schedule(state, slot(), NOW)) == (BULK, [(0, 1)])


def test_a_batch_never_holds_two_messages_with_the_same_key() -> None:
    pending = [message(0, key="111"), message(1, key="111"), message(2, key="222"), message(3, key=None)]
    state = snapshot(make_queue(pending=pending))
    assert leased(schedule(state, slot(), NOW)) == (BULK, [(0, 0), (0, 2), (0, 3)])


def test_messages_without_a_key_are_never_exclusive() -> None:
    state = snapshot(make_queue(pending=[message(0, key=None), message(1, key=None)]))
    assert leased(schedule(state, slot(), NOW)) == (BULK, [(0, 0), (0, 1)])


def test_a_queue_whose_keys_are_all_in_flight_passes_the_slot_on() -> None:
    busy = make_queue(URGENT, priority=9, pending=[message(0, key="111")], keys_in_flight=["111"])
    state = snapshot(busy, make_queue(BULK, priority=1))
    assert leased(schedule(state, slot(), NOW))[0] == BULK
    alone = snapshot(busy)
    assert schedule(alone, slot(), NOW) == Idle("all pending messages have keys in flight", URGENT)


def rules_batch(queue: QueueState, now: datetime) -> tuple[PendingMessage, ...]:
    """The batch rules, message by message: oldest first, back-off passed, key not in flight and not
    met in an earlier message (leased, waiting or held back), up to ``batch_size``."""
    batch: list[PendingMessage] = []
    met: set[bytes] = set()
    for m in queue.pending:
        blocked = m.key is not None and (m.key in queue.keys_in_flight or m.key in met)
        if m.key is not None:
            met.add(m.key)
        if not blocked and (m.not_before is None or m.not_before <= now) and len(batch) < queue.batch_size:
            batch.append(m)
    return tuple(batch)


def test_the_rule_holds_back_what_the_batch_rules_say_message_by_message() -> None:
    rng = random.Random(3)
    for _ in range(500):
        queue = make_queue(pending=random_messages(rng, NOW), batch_size=1_000, keys_in_flight=rng.sample("ab", 1))

        assert tuple(leasable(queue.pending, queue.keys_in_flight, NOW)) == rules_batch(queue, NOW)


def test_a_batch_is_what_the_rule_gives_including_the_shortcut_for_the_usual_case() -> None:
    rng = random.Random(5)
    whole_heads = 0
    for _ in range(500):
        in_flight = rng.sample(["a", "b", "cpf-1", "cpf-2", "cpf-3"], rng.randint(0, 2))
        queue = make_queue(pending=random_messages(rng, NOW), batch_size=rng.randint(1, 8), keys_in_flight=in_flight)

        batch = take_batch(queue, NOW)

        assert batch == tuple(islice(leasable(queue.pending, queue.keys_in_flight, NOW), queue.batch_size))
        whole_heads += batch == queue.pending[: queue.batch_size]
    assert whole_heads > 50  # the cases ``take_batch`` answers without walking the messages were tried


def test_a_message_is_leasable_from_the_end_of_its_back_off_on() -> None:
    for not_before in (None, NOW - timedelta(seconds=1), NOW, NOW + timedelta(microseconds=1)):
        pending = [message(0, not_before=not_before)]

        held_back = not list(leasable(pending, frozenset(), NOW))

        assert held_back == is_backing_off(pending[0], NOW) == (not_before is not None and not_before > NOW)


def test_messages_in_back_off_wait_until_their_deadline() -> None:
    later = NOW + timedelta(minutes=5)
    state = snapshot(make_queue(pending=[message(0, not_before=later), message(1)]))
    assert leased(schedule(state, slot(), NOW)) == (BULK, [(0, 1)])
    assert leased(schedule(state, slot(), later)) == (BULK, [(0, 0), (0, 1)])


def test_a_queue_entirely_in_back_off_gives_the_slot_away_and_says_until_when() -> None:
    later = NOW + timedelta(minutes=5, seconds=30)
    backing_off = make_queue(URGENT, priority=9, pending=[message(0, not_before=later)])
    assert leased(schedule(snapshot(backing_off, make_queue(BULK)), slot(), NOW))[0] == BULK
    alone = snapshot(backing_off)
    assert schedule(alone, slot(), NOW) == Idle("all pending messages are in back-off until 10:05:30", URGENT)


def test_a_message_waits_behind_an_earlier_one_of_its_key_in_back_off() -> None:
    pending = [message(0, key="111", not_before=NOW + timedelta(seconds=30)), message(1, key="111")]
    state = snapshot(make_queue(pending=[*pending, message(2, key="222")]))
    assert leased(schedule(state, slot(), NOW)) == (BULK, [(0, 2)])


def test_a_base_below_its_reserved_minimum_is_served_before_higher_priorities() -> None:
    reserved = base("MULTCOB03", max_workers=8, min_workers=2)
    state = snapshot(reserved, make_queue(BULK, priority=1, running=1), make_queue(URGENT, priority=9))
    assert leased(schedule(state, slot(), NOW))[0] == BULK


def test_a_base_at_its_reserved_minimum_waits_its_priority() -> None:
    reserved = base("MULTCOB03", max_workers=8, min_workers=2)
    state = snapshot(reserved, make_queue(BULK, priority=1, running=2), make_queue(URGENT, priority=9))
    assert leased(schedule(state, slot(), NOW))[0] == URGENT


def test_a_reservation_never_exceeds_the_limit_in_force() -> None:
    reserved = base("MULTCOB03", max_workers=8, min_workers=4, windows=[window("08:00", "18:00", max_workers=2)])
    state = snapshot(reserved, make_queue(BULK, priority=1, running=2), make_queue(URGENT, priority=9))
    assert leased(schedule(state, slot(), NOW))[0] == URGENT


def test_a_reservation_holds_only_for_work_the_slot_can_run() -> None:
    reserved = base("MULTCOB03", max_workers=8, min_workers=2)
    needs_linux = make_queue(BULK, priority=1, labels={"os": "linux"})
    state = snapshot(reserved, needs_linux, make_queue(URGENT, priority=9))
    assert leased(schedule(state, slot(os="windows"), NOW))[0] == URGENT
    assert leased(schedule(state, slot(os="linux"), NOW))[0] == BULK


def test_several_reserved_bases_are_served_by_priority() -> None:
    state = snapshot(
        base("MULTCOB03", min_workers=1),
        base("MULTCOB04", min_workers=1),
        make_queue(BULK, priority=2),
        make_queue(THIRD, priority=3),
        make_queue(URGENT, priority=9),
    )
    assert leased(schedule(state, slot(), NOW))[0] == THIRD


def test_applying_leases_fills_the_base_up_to_its_limit() -> None:
    state = snapshot(base("MULTCOB03", max_workers=3), make_queue(BULK, batch_size=2, pending=20))
    leases = []
    for _ in range(4):
        decision = schedule(state, slot(), NOW)
        if isinstance(decision, Lease):
            leases.append(leased(decision)[1])
            state = apply_lease(state, decision, NOW)
    assert leases == [[(0, 0), (0, 1)], [(0, 2), (0, 3)], [(0, 4), (0, 5)]]
    assert schedule(state, slot(), NOW) == Idle("base MULTCOB03 at its limit 3/3", BULK)
    queue = state.queues[BULK]
    assert (queue.running, queue.last_served, len(queue.pending), state.base_running("MULTCOB03")) == (3, NOW, 14, 3)
    assert queue.keys_in_flight == {f"cpf-{o}".encode() for o in range(6)}


def test_a_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        schedule(snapshot(make_queue()), slot(), datetime(2025, 3, 4, 10, 0))
