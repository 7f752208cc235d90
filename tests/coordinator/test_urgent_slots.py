"""Urgent slots: a farm's last slots take only queues at or above a priority, never breaking a base limit.

The scheduler's rule first (pure), then through the real service (a store and a log), then over HTTP.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import httpx
import pytest

from tests.coordinator.builders import at, base, leased, make_queue, random_messages, snapshot, window
from tests.coordinator.workers import give_workers
from xtreaming.broker import Broker, Record, open_broker
from xtreaming.coordinator.core.scheduler import RUNNABLE, FreeSlot, Idle, SlotGroup, explain, schedule
from xtreaming.coordinator.core.snapshot import Snapshot
from xtreaming.coordinator.core.state import labels_of
from xtreaming.coordinator.options import CoordinatorOptions
from xtreaming.coordinator.records import WorkSettings
from xtreaming.coordinator.service import Assignment, Coordinator, Report
from xtreaming.coordinator.store import Store
from xtreaming.errors import InvalidInput
from xtreaming.wire.verdict import Verdict

NOW = at("2025-03-04T10:00")  # a Tuesday
BULK = "MULTCOB03.1186.IMPORTACAO.CARGA"
URGENT = "MULTCOB02.77.COBSINC.ATUALIZA"
WINDOWS = labels_of({"os": "windows"})
ORDINARY = FreeSlot("farm-1", WINDOWS)
RESERVED = FreeSlot("farm-1", WINDOWS, min_priority=8)
bulk = partial(make_queue, BULK, priority=5)
urgent = partial(make_queue, URGENT, priority=8, batch_size=1)


# -- the scheduler ------------------------------------------------------------------------------


def test_a_reserved_slot_refuses_lower_priority_work_even_when_it_is_the_only_work() -> None:
    decision = schedule(snapshot(bulk(priority=7)), RESERVED, NOW)

    assert decision == Idle("reserved for urgent work (priority ≥ 8)", BULK)


def test_a_reserved_slot_takes_work_at_or_above_its_priority() -> None:
    for priority in (8, 9):
        state = snapshot(bulk(pending=500), urgent(priority=priority))

        assert leased(schedule(state, RESERVED, NOW)) == (URGENT, [(0, 0)])


def test_an_ordinary_slot_takes_urgent_work_too() -> None:
    assert leased(schedule(snapshot(bulk(), urgent()), ORDINARY, NOW))[0] == URGENT


def test_a_reserved_slot_goes_to_urgent_work_even_when_another_base_is_below_its_reserved_minimum() -> None:
    state = snapshot(base("MULTCOB03", min_workers=2), bulk(), urgent())

    assert leased(schedule(state, ORDINARY, NOW))[0] == BULK  # the reservation comes first on an ordinary slot
    assert leased(schedule(state, RESERVED, NOW))[0] == URGENT


def test_a_reserved_slot_never_exceeds_a_base_limit() -> None:
    limited = base("MULTCOB02", max_workers=1)
    in_window = base("MULTCOB02", max_workers=4, windows=[window("08:00", "18:00", max_workers=1)])

    assert schedule(snapshot(limited, urgent(running=1)), RESERVED, NOW) == Idle(
        "base MULTCOB02 at its limit 1/1", URGENT
    )
    assert schedule(snapshot(in_window, urgent(running=1)), RESERVED, NOW) == Idle(
        "base MULTCOB02 at its limit 1/1 in window 08:00–18:00", URGENT
    )
    # With an import waiting too, the slot stays idle rather than take it.
    assert schedule(snapshot(limited, urgent(running=1), bulk()), RESERVED, NOW) == Idle(
        "reserved for urgent work (priority ≥ 8)", BULK
    )


def test_a_reserved_slot_keeps_the_other_rules() -> None:
    assert schedule(snapshot(urgent(paused=True)), RESERVED, NOW) == Idle("every queue with pending messages is paused")
    assert schedule(snapshot(urgent(labels={"os": "linux"})), RESERVED, NOW) == Idle(
        "farm farm-1 lacks label os=linux", URGENT
    )
    assert schedule(snapshot(urgent(pending=1, keys_in_flight=["cpf-0"])), RESERVED, NOW) == Idle(
        "all pending messages have keys in flight", URGENT
    )
    assert schedule(snapshot(urgent(max_workers=1, running=1)), RESERVED, NOW) == Idle(
        "queue at its max workers 1/1", URGENT
    )


def without_work_below(state: Snapshot, priority: int) -> Snapshot:
    """``state`` where the queues below ``priority`` have nothing pending (their running tasks still count)."""
    for queue in list(state.queues.values()):
        if queue.priority < priority:
            state = state.with_queue(replace(queue, pending=()))
    return state


@pytest.mark.parametrize("seed", range(300))
def test_a_reserved_slot_decides_as_an_ordinary_slot_would_were_there_no_lower_priority_work(seed: int) -> None:
    rng = random.Random(seed)
    limits = {name: rng.randint(0, 4) for name in ("MULTCOB02", "MULTCOB03", "MULTCOB04")}
    bases = [base(name, max_workers=most, min_workers=rng.randint(0, most)) for name, most in limits.items()]
    queues = [
        make_queue(
            f"{rng.choice(bases).name}.{n}.{rng.choice(['IMPORTACAO', 'COBSINC'])}.P",
            priority=rng.randint(0, 9),
            pending=rng.choice([(), random_messages(rng, NOW, most=3)]),
            running=rng.randint(0, 2),
            labels=rng.choice([None, {"os": "windows"}, {"os": "linux"}]),
        )
        for n in range(rng.randint(1, 8))
    ]
    state = snapshot(*bases, *queues)
    least = rng.randint(1, 9)

    decision = schedule(state, FreeSlot("farm-1", WINDOWS, least), NOW)
    expected = schedule(without_work_below(state, least), ORDINARY, NOW)

    assert isinstance(decision, Idle) == isinstance(expected, Idle)
    if not isinstance(decision, Idle):
        assert decision == expected
        queue = state.queues[decision.queue]
        assert queue.priority >= least
        assert state.base_running(queue.base) < state.bases[queue.base].max_workers


# -- explain ------------------------------------------------------------------------------------


def why(state: Snapshot, queue: str, *groups: SlotGroup) -> str:
    return explain(state, queue, NOW, [WINDOWS], groups)


def test_an_urgent_queue_whose_slots_are_all_busy_waits_for_an_urgent_slot() -> None:
    state = snapshot(bulk(running=1), urgent())

    assert (
        why(state, URGENT, SlotGroup(WINDOWS, 0, free=0), SlotGroup(WINDOWS, 8, free=0)) == "waiting for an urgent slot"
    )
    assert why(state, URGENT, SlotGroup(WINDOWS, 0, free=0), SlotGroup(WINDOWS, 8, free=1)) == RUNNABLE
    assert why(state, URGENT, SlotGroup(WINDOWS, 0, free=1), SlotGroup(WINDOWS, 8, free=0)) == RUNNABLE


def test_without_urgent_slots_a_busy_farm_still_reads_runnable() -> None:
    state = snapshot(bulk(running=1), urgent())

    assert why(state, URGENT, SlotGroup(WINDOWS, 0, free=0)) == RUNNABLE
    assert explain(state, URGENT, NOW, [WINDOWS]) == RUNNABLE


def test_a_queue_below_the_urgent_priority_is_told_the_idle_slots_are_reserved() -> None:
    state = snapshot(bulk(running=1, pending=10))
    groups = (SlotGroup(WINDOWS, 0, free=0), SlotGroup(WINDOWS, 8, free=1))

    assert why(state, BULK, *groups) == "the idle slots are reserved for urgent work (priority ≥ 8)"
    assert why(state, BULK, SlotGroup(WINDOWS, 0, free=1), SlotGroup(WINDOWS, 8, free=1)) == RUNNABLE


def test_the_true_reason_comes_before_the_urgent_slots() -> None:
    limited = snapshot(base("MULTCOB02", max_workers=1), urgent(running=1))
    behind = snapshot(urgent(), make_queue("MULTCOB02.78.COBSINC.X", priority=9, batch_size=1))
    busy = (SlotGroup(WINDOWS, 0, free=0), SlotGroup(WINDOWS, 8, free=0))

    assert why(limited, URGENT, *busy) == "base MULTCOB02 at its limit 1/1"
    assert why(behind, URGENT, *busy) == "waiting behind higher-priority queue MULTCOB02.78.COBSINC.X"
    assert why(snapshot(urgent(paused=True)), URGENT, *busy) == "paused"


def test_an_urgent_queue_behind_a_reserved_minimum_waits_for_an_urgent_slot_it_would_win() -> None:
    state = snapshot(base("MULTCOB03", min_workers=2), bulk(), urgent())

    assert why(state, URGENT, SlotGroup(WINDOWS, 0, free=1), SlotGroup(WINDOWS, 8, free=0)) == (
        "waiting for an urgent slot"
    )


# -- the service --------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 3, 13, 0, tzinfo=UTC)  # a Tuesday, 10:00 in São Paulo

    def __call__(self) -> datetime:
        return self.now


class Site:
    """A store, a log and a coordinator over them, with the site's urgent slots as given (restartable)."""

    def __init__(self, root: Path, urgent_slots: int = 0, urgent_priority: int = 8) -> None:
        self.root = root
        self.clock = Clock()
        self.start(urgent_slots, urgent_priority)

    def start(self, urgent_slots: int, urgent_priority: int) -> None:
        options = CoordinatorOptions(
            heartbeat_interval_s=5, lease_grace_s=0, urgent_slots=urgent_slots, urgent_priority=urgent_priority
        )
        self.broker: Broker = open_broker(f"sqlite:///{self.root}/log.db")
        self.store = Store.open(f"sqlite:///{self.root}/state.db")
        self.coordinator = Coordinator(self.store, self.broker, options, clock=self.clock)

    def restart(self, urgent_slots: int = 0, urgent_priority: int = 8) -> None:
        self.close()
        self.start(urgent_slots, urgent_priority)

    def publish(self, topic: str, count: int, first: int = 0) -> None:
        self.broker.create_topic(topic, 1)
        self.broker.append(topic, [Record(f"{i:011d}".encode(), b"<cliente/>") for i in range(first, first + count)])
        self.coordinator.discover()
        self.coordinator.run_once()
        give_workers(self.coordinator)

    def close(self) -> None:
        self.store.close()
        self.broker.close()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    site = Site(tmp_path)
    yield site
    site.close()


def topics(tasks: list[Assignment]) -> dict[int, str]:
    return {task.slot: str(task.topic) for task in tasks}


def test_the_urgent_slot_of_a_busy_farm_runs_urgent_work_and_nothing_else(site: Site) -> None:
    site.store.add_profile(".*IMPORTACAO.*", WorkSettings(batch_size=2))
    site.publish(BULK, 20)
    farm = site.coordinator.register_farm("farm-a", {}, 2, urgent_slots=1, urgent_priority=8).id

    assert topics(site.coordinator.lease(farm, [0, 1])) == {0: BULK}  # the import takes the ordinary slot only
    assert site.coordinator.lease(farm, [1]) == []
    assert site.coordinator.explain(BULK) == "the idle slots are reserved for urgent work (priority ≥ 8)"

    site.publish(URGENT, 2)
    [task] = site.coordinator.lease(farm, [1])
    assert (task.slot, str(task.topic)) == (1, URGENT)
    assert site.coordinator.explain(URGENT) == "waiting for an urgent slot"

    site.coordinator.complete(task.task_id, Report(Verdict.OK, {}))
    assert site.coordinator.explain(URGENT) == RUNNABLE
    assert topics(site.coordinator.lease(farm, [1])) == {1: URGENT}


def test_a_lease_gives_urgent_work_to_the_urgent_slots_first(site: Site) -> None:
    site.publish(BULK, 20)
    site.publish(URGENT, 1)
    farm = site.coordinator.register_farm("farm-a", {}, 3, urgent_slots=1).id

    assert topics(site.coordinator.lease(farm, [0, 1, 2])) == {2: URGENT, 0: BULK}


def test_an_urgent_slot_never_breaks_its_base_limit(site: Site) -> None:
    site.publish(URGENT, 3)
    site.coordinator.controls.update_base("MULTCOB02", "ana", max_workers=1)
    farm = site.coordinator.register_farm("farm-a", {}, 3, urgent_slots=2, urgent_priority=8).id

    assert len(site.coordinator.lease(farm, [0, 1, 2])) == 1
    assert site.coordinator.lease(farm, [1, 2]) == []
    assert site.coordinator.explain(URGENT) == "base MULTCOB02 at its limit 1/1"


def test_the_site_setting_serves_farms_that_do_not_say_and_a_farms_own_wins(tmp_path: Path) -> None:
    site = Site(tmp_path, urgent_slots=2, urgent_priority=9)
    try:
        site.coordinator.register_farm("big", {}, 4)
        site.coordinator.register_farm("small", {}, 2)  # keeps one ordinary slot
        site.coordinator.register_farm("single", {}, 1)
        site.coordinator.register_farm("own", {}, 4, urgent_slots=0)
        site.coordinator.register_farm("mixed", {}, 4, urgent_priority=8)

        rows = {record.id: (record.urgent_slots, record.urgent_priority) for record, _, _ in site.coordinator.farms()}

        assert rows == {"big": (2, 9), "small": (1, 9), "single": (0, 9), "own": (0, 9), "mixed": (2, 8)}
    finally:
        site.close()


def test_a_farms_urgent_slots_are_kept_across_a_restart_and_changed_by_a_new_registration(site: Site) -> None:
    site.coordinator.register_farm("farm-a", {}, 3, urgent_slots=1, urgent_priority=9)
    site.restart(urgent_slots=2)

    [(record, _, _)] = site.coordinator.farms()
    assert (record.urgent_slots, record.urgent_priority) == (1, 9)

    site.coordinator.register_farm("farm-a", {}, 3)  # says nothing now: the site's setting
    [(record, _, _)] = site.coordinator.farms()
    assert (record.urgent_slots, record.urgent_priority) == (2, 8)


def test_urgent_slots_a_farm_cannot_keep_are_refused_and_change_nothing(site: Site) -> None:
    site.coordinator.register_farm("farm-a", {}, 2, urgent_slots=1)

    with pytest.raises(InvalidInput, match=r"urgent_slots 2 must be in 0\.\.1: a farm of 2 slot\(s\) keeps at least"):
        site.coordinator.register_farm("farm-a", {}, 2, urgent_slots=2)
    with pytest.raises(InvalidInput, match=r"urgent_priority 0 must be in 1\.\.9"):
        site.coordinator.register_farm("farm-b", {}, 2, urgent_slots=1, urgent_priority=0)

    assert [(r.id, r.urgent_slots) for r, _, _ in site.coordinator.farms()] == [("farm-a", 1)]
    assert [r.urgent_slots for r in site.store.list_farms()] == [1]


# -- the API ------------------------------------------------------------------------------------


def test_registration_refuses_urgent_slots_without_an_ordinary_slot(api: httpx.Client) -> None:
    body = {"name": "farm-a", "slots": 2, "urgent_slots": 2}

    refused = api.post("/api/farms/register", json=body)

    assert refused.status_code == 422
    assert "keeps at least one ordinary slot" in json.dumps(refused.json())
    assert api.get("/api/farms").json() == []


def test_farm_rows_say_how_many_slots_are_urgent_and_from_which_priority(api: httpx.Client) -> None:
    for body in (
        {"name": "farm-a", "slots": 4, "urgent_slots": 1, "urgent_priority": 8},
        {"name": "farm-b", "slots": 2},
    ):
        assert api.post("/api/farms/register", json=body).status_code == 200

    rows = {row["id"]: (row["urgent_slots"], row["urgent_priority"]) for row in api.get("/api/farms").json()}
    status = {row["id"]: row["urgent_slots"] for row in api.get("/api/status").json()["farms"]}

    assert rows == {"farm-a": (1, 8), "farm-b": (0, None)}
    assert status == {"farm-a": 1, "farm-b": 0}
