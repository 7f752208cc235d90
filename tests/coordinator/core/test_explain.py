"""``explain``: why a queue is not being served, one specific sentence per rule."""

from __future__ import annotations

import random
from datetime import timedelta
from functools import partial

import pytest

from tests.coordinator.builders import at, base, farms, make_queue, message, random_messages, snapshot, window
from xtreaming.coordinator.core.pending import leasable
from xtreaming.coordinator.core.scheduler import RUNNABLE, explain
from xtreaming.coordinator.core.snapshot import Snapshot
from xtreaming.errors import QueueNotFound

NOW = at("2025-03-04T10:00")  # a Tuesday
BULK = "MULTCOB03.1186.IMPORTACAO.CARGA"
OTHER = "MULTCOB03.1187.IMPORTACAO.CARGA"
URGENT = "MULTCOB02.77.COBSINC.ATUALIZA"
WINDOWS_FARM = farms({"os": "windows", "site": "sp"})
bulk = partial(make_queue, BULK)


def why(state: Snapshot, queue: str = BULK, connected: list[frozenset[tuple[str, str]]] = WINDOWS_FARM) -> str:
    return explain(state, queue, NOW, connected)


def test_a_queue_that_would_get_the_next_slot_is_runnable() -> None:
    assert why(snapshot(bulk())) == RUNNABLE == "runnable"


def test_an_unknown_queue_is_not_found() -> None:
    with pytest.raises(QueueNotFound, match=r"queue 'NOPE\.1\.X\.Y' is not registered"):
        why(snapshot(bulk()), "NOPE.1.X.Y")


def test_paused() -> None:
    assert why(snapshot(bulk(paused=True))) == "paused"


def test_a_paused_queue_says_paused_before_anything_else() -> None:
    assert why(snapshot(base("MULTCOB03", paused=True), bulk(paused=True, pending=0))) == "paused"


def test_base_paused() -> None:
    assert why(snapshot(base("MULTCOB03", paused=True), bulk())) == "base MULTCOB03 paused"


def test_no_pending_messages() -> None:
    assert why(snapshot(bulk(pending=0))) == "no pending messages"


def test_queue_at_its_max_workers() -> None:
    assert why(snapshot(bulk(max_workers=2, running=2))) == "queue at its max workers 2/2"
    assert why(snapshot(bulk(max_workers=0))) == "queue at its max workers 0/0"


def test_base_at_its_limit_in_a_window() -> None:
    business = base("MULTCOB03", max_workers=8, windows=[window("08:00", "18:00", max_workers=4)])
    state = snapshot(business, bulk(running=1), make_queue(OTHER, running=3))
    assert why(state) == "base MULTCOB03 at its limit 4/4 in window 08:00–18:00"


def test_base_at_its_default_limit() -> None:
    assert why(snapshot(base("MULTCOB03", max_workers=8), bulk(running=8))) == "base MULTCOB03 at its limit 8/8"


def test_no_farm_with_a_required_label() -> None:
    state = snapshot(bulk(labels={"os": "linux", "site": "sp"}))
    assert why(state) == "no farm with label os=linux"
    assert why(state, connected=farms({"os": "windows"})) == "no farm with labels os=linux, site=sp"


def test_no_farm_with_all_the_required_labels_together() -> None:
    state = snapshot(bulk(labels={"os": "linux", "site": "sp"}))
    split = farms({"os": "linux", "site": "rj"}, {"os": "windows", "site": "sp"})
    assert why(state, connected=split) == "no farm with all of labels os=linux, site=sp"


def test_no_farm_connected() -> None:
    assert why(snapshot(bulk()), connected=[]) == "no farm connected"


def test_all_pending_messages_in_back_off() -> None:
    pending = [message(0, not_before=NOW + timedelta(seconds=90)), message(1, not_before=NOW + timedelta(hours=1))]
    assert why(snapshot(bulk(pending=pending))) == "all pending messages are in back-off until 10:01:30"


def test_a_back_off_ending_another_day_shows_the_date() -> None:
    pending = [message(0, not_before=at("2025-03-05T08:00"))]
    assert why(snapshot(bulk(pending=pending))) == "all pending messages are in back-off until 2025-03-05 08:00:00"


def test_the_back_off_time_is_on_the_site_clock() -> None:
    pending = [message(0, not_before=at("2025-03-04T13:05:00+00:00"))]
    assert why(snapshot(bulk(pending=pending))) == "all pending messages are in back-off until 10:05:00"


def test_messages_waiting_behind_their_key_in_back_off_count_as_back_off() -> None:
    pending = [message(0, key="111", not_before=NOW + timedelta(seconds=5)), message(1, key="111")]
    assert why(snapshot(bulk(pending=pending))) == "all pending messages are in back-off until 10:00:05"


def test_all_pending_messages_have_keys_in_flight() -> None:
    pending = [message(0, key="111"), message(1, key="222")]
    assert why(snapshot(bulk(pending=pending, keys_in_flight=["111", "222"]))) == (
        "all pending messages have keys in flight"
    )


def test_a_queue_whose_keys_are_all_in_flight_says_so_and_holds_up_no_one() -> None:
    blocked = bulk(priority=9, pending=[message(0, key="111"), message(1, key="111")], keys_in_flight=["111"])
    state = snapshot(blocked, make_queue(OTHER, priority=1))
    assert why(state) == "all pending messages have keys in flight"
    assert why(state, OTHER) == RUNNABLE


def test_keys_in_flight_and_back_off_together() -> None:
    pending = [message(0, key="111"), message(1, key="222", not_before=NOW + timedelta(minutes=1))]
    assert why(snapshot(bulk(pending=pending, keys_in_flight=["111"]))) == (
        "all pending messages have keys in flight or are in back-off until 10:01:00"
    )


def test_the_back_off_told_is_when_the_queue_may_next_lease() -> None:
    in_flight_first = [message(0, key="111", not_before=NOW + timedelta(seconds=10)), message(1, key="222")]
    in_flight_first.append(message(2, key="333", not_before=NOW + timedelta(minutes=1)))
    state = snapshot(bulk(pending=in_flight_first, keys_in_flight=["111", "222"]))
    assert why(state) == "all pending messages have keys in flight or are in back-off until 10:01:00"
    behind_its_key = [message(0, key="111", not_before=NOW + timedelta(minutes=2))]
    behind_its_key.append(message(1, key="111", not_before=NOW + timedelta(seconds=10)))
    assert why(snapshot(bulk(pending=behind_its_key))) == "all pending messages are in back-off until 10:02:00"


def test_a_queue_is_explained_as_held_back_exactly_when_the_rule_holds_back_all_its_messages() -> None:
    rng = random.Random(13)
    for _ in range(500):
        queue = bulk(pending=random_messages(rng, NOW), keys_in_flight=rng.sample(["a", "b", "cpf-0"], 2))

        reason = why(snapshot(queue))

        held_back = not list(leasable(queue.pending, queue.keys_in_flight, NOW))
        assert (reason != RUNNABLE) == held_back, reason
        assert reason.startswith("all pending messages") == held_back, reason


def test_waiting_behind_a_higher_priority_queue() -> None:
    state = snapshot(bulk(priority=3), make_queue(URGENT, priority=9))
    assert why(state) == f"waiting behind higher-priority queue {URGENT}"
    assert why(state, URGENT) == RUNNABLE


def test_waiting_its_turn_behind_a_queue_of_equal_priority() -> None:
    state = snapshot(bulk(running=2), make_queue(OTHER, running=1))
    assert why(state) == f"waiting its turn behind queue {OTHER} of equal priority"


def test_waiting_behind_a_base_below_its_reserved_minimum() -> None:
    state = snapshot(base("MULTCOB02", min_workers=3), make_queue(URGENT, priority=1, running=1), bulk(priority=9))
    assert why(state) == f"waiting behind queue {URGENT}: base MULTCOB02 is below its reserved minimum 1/3"


def test_runnable_when_some_farm_would_pick_it_though_another_would_not() -> None:
    state = snapshot(bulk(priority=3), make_queue(URGENT, priority=9, labels={"os": "linux"}))
    both = farms({"os": "linux"}, {"os": "windows"})
    assert why(state, connected=both) == RUNNABLE
    assert why(state, connected=farms({"os": "linux"})) == f"waiting behind higher-priority queue {URGENT}"
