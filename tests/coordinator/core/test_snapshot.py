"""The snapshot: checks at the door, derived counts, and incremental updates equal to a rebuild."""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from functools import partial

import pytest

from tests.coordinator.builders import SITE, TOPIC, at, base, make_queue, message, random_messages, snapshot, window
from xtreaming.coordinator.core.pending import PendingMessage, leasable, not_held_by_key
from xtreaming.coordinator.core.snapshot import Snapshot
from xtreaming.coordinator.core.state import BaseState, QueueState
from xtreaming.coordinator.core.windows import wall_clock

NOW = at("2025-03-04T10:00")
OTHER = "MULTCOB03.1187.IMPORTACAO.CARGA"
ELSEWHERE = "MULTCOB04.1188.IMPORTACAO.CARGA"


def order(state: Snapshot, base_name: str = "MULTCOB03") -> list[str]:
    return [q.topic for q in state.contenders(base_name)]


@pytest.mark.parametrize(
    ("build", "message_text"),
    [
        (partial(make_queue, priority=10), f"queue {TOPIC}: priority 10 is not in 0..9"),
        (partial(make_queue, priority=-1), f"queue {TOPIC}: priority -1 is not in 0..9"),
        (partial(make_queue, batch_size=0), f"queue {TOPIC}: batch_size 0 is below 1"),
        (partial(make_queue, max_workers=-1), f"queue {TOPIC}: max_workers -1 is negative"),
        (partial(make_queue, running=-1), f"queue {TOPIC}: running -1 is negative"),
        (partial(make_queue, last_served=datetime(2025, 3, 4)), f"queue {TOPIC}: last_served must be timezone-aware"),
    ],
    ids=["priority-high", "priority-low", "batch-size", "max-workers", "running", "naive-last-served"],
)
def test_a_queue_refuses_impossible_settings(build: Callable[[], QueueState], message_text: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message_text)):
        build()


def test_a_base_refuses_impossible_limits() -> None:
    with pytest.raises(ValueError, match="base B: max_workers -1 is negative"):
        BaseState("B", -1)
    with pytest.raises(ValueError, match=r"base B: min_workers 5 is not in 0\.\.4"):
        BaseState("B", 4, min_workers=5)


def test_a_back_off_deadline_must_be_aware() -> None:
    with pytest.raises(ValueError, match="message 0/7: not_before must be timezone-aware"):
        PendingMessage(0, 7, b"k", not_before=datetime(2025, 3, 4))


def test_a_queue_on_an_unknown_base_is_refused() -> None:
    with pytest.raises(ValueError, match=f"queue {TOPIC}: base MULTCOB03 is not in the snapshot"):
        Snapshot.build([make_queue()], [], SITE)
    with pytest.raises(ValueError, match="not in the snapshot"):
        snapshot(base("MULTCOB04")).with_queue(make_queue())


def test_mappings_must_be_keyed_by_name() -> None:
    with pytest.raises(ValueError, match=f"queue {TOPIC} is filed under 'X'"):
        Snapshot({"X": make_queue()}, {"MULTCOB03": base()}, SITE)
    with pytest.raises(ValueError, match="base MULTCOB03 is filed under 'X'"):
        Snapshot({}, {"X": base()}, SITE)


def test_pending_messages_are_kept_in_lease_order() -> None:
    queue = make_queue(pending=[message(5, partition=1), message(9), message(2, partition=2), message(5)])
    assert [(m.partition, m.offset) for m in queue.pending] == [(2, 2), (0, 5), (1, 5), (0, 9)]


def test_ready_at_is_the_earliest_deadline_only_when_every_message_backs_off() -> None:
    soon, later = NOW + timedelta(seconds=5), NOW + timedelta(seconds=50)
    assert make_queue(pending=[message(0, not_before=later), message(1, not_before=soon)]).ready_at == soon
    assert make_queue(pending=[message(0, not_before=later), message(1)]).ready_at is None
    assert make_queue(pending=0).ready_at is None


def test_a_base_runs_the_sum_of_its_queues() -> None:
    state = snapshot(make_queue(running=2), make_queue(OTHER, running=3), make_queue(ELSEWHERE, running=1))
    assert (state.base_running("MULTCOB03"), state.base_running("MULTCOB04"), state.base_running("NONE")) == (5, 1, 0)


def test_contenders_are_unpaused_queues_with_work_in_order_of_service() -> None:
    state = snapshot(
        make_queue(priority=3),
        make_queue(OTHER, priority=7),
        make_queue("MULTCOB03.9.IMPORTACAO.PAUSED", paused=True),
        make_queue("MULTCOB03.8.IMPORTACAO.EMPTY", pending=0),
    )
    assert order(state) == [OTHER, TOPIC]
    assert state.paused_with_pending == 1


def test_incremental_updates_match_a_rebuild() -> None:
    state = snapshot(make_queue(priority=5), make_queue(OTHER, priority=5, running=1), make_queue(ELSEWHERE))
    changed = replace(state.queues[TOPIC], running=4, last_served=NOW)
    paused = replace(state.queues[ELSEWHERE], paused=True)
    updated = state.with_queue(changed).with_queue(paused)
    rebuilt = Snapshot.build([changed, state.queues[OTHER], paused], state.bases.values(), SITE)
    assert updated == rebuilt
    for name in ("MULTCOB03", "MULTCOB04"):
        assert order(updated, name) == order(rebuilt, name)
        assert updated.base_running(name) == rebuilt.base_running(name)
    assert order(updated) == [OTHER, TOPIC]
    assert (updated.paused_with_pending, list(updated.bases_with_contenders)) == (1, ["MULTCOB03"])
    assert order(state) == [TOPIC, OTHER]  # the original is untouched


def test_a_queue_can_move_to_another_base() -> None:
    state = snapshot(make_queue(running=2), base("MULTCOB04"))
    moved = state.with_queue(replace(state.queues[TOPIC], base="MULTCOB04"))
    assert (order(moved, "MULTCOB03"), order(moved, "MULTCOB04")) == ([], [TOPIC])
    assert (moved.base_running("MULTCOB03"), moved.base_running("MULTCOB04")) == (0, 2)


def test_without_queue_forgets_it_and_its_running_tasks() -> None:
    state = snapshot(make_queue(running=2), make_queue(OTHER, running=1))
    smaller = state.without_queue(TOPIC)
    assert (list(smaller.queues), order(smaller), smaller.base_running("MULTCOB03")) == ([OTHER], [OTHER], 1)
    assert smaller.without_queue("UNKNOWN") is smaller


def test_with_base_changes_settings_and_keeps_the_queues() -> None:
    state = snapshot(make_queue(running=2))
    paused = state.with_base(base("MULTCOB03", paused=True))
    assert paused.bases["MULTCOB03"].paused
    assert (order(paused), paused.base_running("MULTCOB03")) == ([TOPIC], 2)


def test_a_snapshot_keeps_its_own_copy_of_the_mappings() -> None:
    queues: dict[str, QueueState] = {TOPIC: make_queue()}
    state = Snapshot(queues, {"MULTCOB03": base()}, SITE)
    queues.clear()
    assert list(state.queues) == [TOPIC]


def test_ready_at_reads_only_the_first_message_of_each_key_not_in_flight() -> None:
    soon, later = NOW + timedelta(seconds=5), NOW + timedelta(seconds=50)
    behind = [message(0, key="111", not_before=later), message(1, key="111"), message(2, key="222", not_before=soon)]
    assert make_queue(pending=behind[:2]).ready_at == later  # offset 1 waits for offset 0
    assert make_queue(pending=behind, keys_in_flight=["222"]).ready_at == later
    assert make_queue(pending=behind, keys_in_flight=["111"]).ready_at == soon
    assert make_queue(pending=[message(0, key="111"), message(1, not_before=soon)]).ready_at is None


def test_ready_at_and_waits_for_keys_are_the_rule_read_ahead_of_time() -> None:
    rng = random.Random(11)
    for _ in range(500):
        queue = make_queue(pending=random_messages(rng, NOW), keys_in_flight=rng.sample(["a", "b", "cpf-0"], 2))

        def lease_at(moment: datetime, queue: QueueState = queue) -> list[PendingMessage]:
            return list(leasable(queue.pending, queue.keys_in_flight, moment))

        if queue.waits_for_keys:
            assert not list(not_held_by_key(queue.pending, queue.keys_in_flight))
        elif queue.ready_at is None:
            assert lease_at(NOW - timedelta(days=1))  # before any back-off ends
        else:
            assert not lease_at(queue.ready_at - timedelta(microseconds=1))
            assert lease_at(queue.ready_at)


def test_a_queue_waits_for_keys_when_every_pending_message_has_its_key_in_flight() -> None:
    pending = [message(0, key="111"), message(1, key="222"), message(2, key="111")]
    assert make_queue(pending=pending, keys_in_flight=["111", "222"]).waits_for_keys
    assert not make_queue(pending=pending, keys_in_flight=["111"]).waits_for_keys
    assert not make_queue(pending=[message(0, key=None)], keys_in_flight=["111"]).waits_for_keys
    in_back_off = [message(0, key="111"), message(1, key="222", not_before=NOW)]
    assert not make_queue(pending=in_back_off, keys_in_flight=["111"]).waits_for_keys
    assert not make_queue(pending=0).waits_for_keys


def test_candidates_leave_out_queues_that_cannot_lease_before_a_task_ends_or_a_back_off() -> None:
    blocked = make_queue("MULTCOB03.1.IMPORTACAO.KEYS", pending=[message(0, key="111")], keys_in_flight=["111"])
    full = make_queue("MULTCOB03.2.COBSINC.FULL", max_workers=1, running=1)
    later = make_queue("MULTCOB03.3.IMPORTACAO.LATER", pending=[message(0, not_before=NOW + timedelta(minutes=1))])
    state = snapshot(make_queue(), blocked, full, later)
    assert order(state) == [blocked.topic, TOPIC, later.topic, full.topic]
    assert [q.topic for q in state.candidates("MULTCOB03")] == [TOPIC]
    assert [(ready_at, q.topic) for ready_at, _, q in state.timed_candidates] == [(later.ready_at, later.topic)]
    released = state.with_queue(replace(blocked, keys_in_flight=frozenset()))
    assert [q.topic for q in released.candidates("MULTCOB03")] == [blocked.topic, TOPIC]
    served = released.with_queue(replace(later, pending=(message(1),)))
    assert [q.topic for q in served.candidates("MULTCOB03")] == [blocked.topic, TOPIC, later.topic]
    assert list(served.timed_candidates) == []


def test_bases_are_ordered_by_their_first_candidate_and_kept_so_by_updates() -> None:
    state = snapshot(make_queue(priority=5), make_queue(OTHER, priority=7), make_queue(ELSEWHERE, priority=6))
    assert [name for _, name in state.bases_by_first_candidate] == ["MULTCOB03", "MULTCOB04"]
    busy = state.with_queue(replace(state.queues[OTHER], priority=1))
    assert [name for _, name in busy.bases_by_first_candidate] == ["MULTCOB04", "MULTCOB03"]
    gone = busy.without_queue(ELSEWHERE)
    assert [(first[3], name) for first, name in gone.bases_by_first_candidate] == [(TOPIC, "MULTCOB03")]


def test_indexes_updated_queue_by_queue_match_a_rebuild() -> None:
    def backing_off(seconds: int) -> list[PendingMessage]:
        return [message(0, not_before=NOW + timedelta(seconds=seconds))]

    queues = [
        make_queue(
            f"MULTCOB0{b}.{q}.IMPORTACAO.CARGA",
            priority=(b * q) % 10,
            running=q % 3,
            max_workers=2,
            pending=backing_off(b + q) if q % 2 else 3,
        )
        for b in range(3, 6)
        for q in range(6)
    ]
    state = snapshot(*queues)
    for queue in queues[::2]:
        state = state.with_queue(replace(queue, running=queue.running + 1, priority=9 - queue.priority))
    for queue in queues[::3]:
        swapped = [message(1), message(2)] if queue.ready_at else backing_off(1)  # back-off ends, or starts
        state = state.with_queue(replace(state.queues[queue.topic], pending=tuple(swapped)))
    state = state.with_queue(replace(queues[4], pending=()))
    state = state.with_queue(replace(queues[1], base="MULTCOB05")).without_queue(queues[3].topic)
    rebuilt = Snapshot(dict(state.queues), state.bases, SITE)
    assert state == rebuilt
    assert list(state.bases_by_first_candidate) == list(rebuilt.bases_by_first_candidate)
    for name in ("MULTCOB03", "MULTCOB04", "MULTCOB05"):
        assert order(state, name) == order(rebuilt, name)
        assert state.candidates(name) == rebuilt.candidates(name)
        assert state.base_running(name) == rebuilt.base_running(name)
    assert state.timed_candidates == rebuilt.timed_candidates


def test_queues_keep_their_order_of_arrival_like_a_dict() -> None:
    state = snapshot(make_queue(), make_queue(OTHER), make_queue(ELSEWHERE))
    moved = state.with_queue(replace(state.queues[TOPIC], base="MULTCOB04")).without_queue(OTHER)
    assert list(moved.queues) == [TOPIC, ELSEWHERE]
    assert list(moved.with_queue(make_queue(OTHER)).queues) == [TOPIC, ELSEWHERE, OTHER]
    assert (OTHER in state.queues, OTHER in moved.queues, len(moved.queues)) == (True, False, 2)


def test_a_rebuilt_queue_hands_its_sorted_messages_on_unsorted_again() -> None:
    queue = make_queue(pending=[message(2), message(1)])
    assert replace(queue, running=1).pending is queue.pending


def test_base_limits_are_computed_once_a_minute_until_a_base_changes() -> None:
    business = base("MULTCOB03", max_workers=8, min_workers=2, windows=[window("08:00", "18:00", max_workers=4)])
    state = snapshot(business, make_queue(), make_queue(ELSEWHERE))
    clock = wall_clock(NOW, SITE)
    room = state.room_at(clock)
    assert (room.limits, room.minimums) == ({"MULTCOB03": 4, "MULTCOB04": 8}, {"MULTCOB03": 2})
    assert state.with_queue(make_queue(running=1)).room_at(clock) is room
    paused = state.with_base(base("MULTCOB04", paused=True)).room_at(clock)
    assert (paused.limits, paused.minimums) == ({"MULTCOB03": 4}, {"MULTCOB03": 2})
    assert state.room_at(wall_clock(at("2025-03-04T18:00"), SITE)).limits["MULTCOB03"] == 8
