"""Farm incarnations and heartbeats reconciled with the leases, on the coordinator service with an injected
clock: what a new farm process, a repeated registration, a heartbeat leaving a task out or naming one that
is not the farm's, and a coordinator restart do to the farm's tasks."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.coordinator.test_service import TOPIC, Site, keys, ok
from tests.services import fresh_postgres_schema
from xtreaming.coordinator.farms import Farms
from xtreaming.coordinator.options import CoordinatorOptions
from xtreaming.coordinator.records import SlotRecord, WorkSettings
from xtreaming.coordinator.service import Assignment, Reconciled
from xtreaming.coordinator.store import Store

HEARTBEAT_S = 5  # Site's coordinator: farms are lost after 15 s


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Site]:
    """The embedded log, and the state on SQLite or on PostgreSQL (a fresh schema)."""
    with ExitStack() as stack:
        state = (
            f"sqlite:///{tmp_path}/state.db"
            if request.param == "sqlite"
            else stack.enter_context(fresh_postgres_schema())
        )
        site = Site(f"sqlite:///{tmp_path}/log.db", state)
        yield site
        site.store.close()
        site.broker.close()


def register(site: Site, instance: str | None, name: str = "farm-a") -> str:
    return site.coordinator.register_farm(name, {"os": "linux"}, 2, instance).id


def running(task: Assignment, index: int = 0) -> SlotRecord:
    return SlotRecord("farm-a", index, "running", task.task_id)


def offsets(task: Assignment) -> set[tuple[int, int]]:
    return {(m.partition, m.offset) for m in task.messages}


def test_a_new_instance_of_a_farm_releases_its_tasks_at_once_with_no_attempt_counted(site: Site) -> None:
    site.publish(TOPIC, keys(3))
    farm = register(site, "first")
    [task] = site.coordinator.lease(farm, [0])

    register(site, "second")
    [again] = site.coordinator.lease(farm, [0])

    assert offsets(again) == offsets(task)
    assert {m.attempt for m in again.messages} == {1}
    assert site.store.active_tasks()[0].id == again.task_id
    assert [busy for record, _, busy in site.coordinator.farms()] == [1]


def test_the_same_instance_registering_again_keeps_its_tasks(site: Site) -> None:
    site.publish(TOPIC, keys(3))
    farm = register(site, "first")
    [task] = site.coordinator.lease(farm, [0])

    register(site, "first")

    assert site.coordinator.lease(farm, [1]) == []  # the keys are still held by the task
    assert [t.id for t in site.store.active_tasks()] == [task.task_id]
    assert site.coordinator.complete(task.task_id, ok(task)).accepted


def test_a_farm_that_sends_no_instance_keeps_its_tasks_across_registrations(site: Site) -> None:
    site.publish(TOPIC, keys(3))
    farm = register(site, None)
    [task] = site.coordinator.lease(farm, [0])

    register(site, None)

    assert site.coordinator.complete(task.task_id, ok(task)).accepted


def test_the_instance_outlives_a_coordinator_restart(site: Site) -> None:
    site.publish(TOPIC, keys(3))
    farm = register(site, "first")
    [task] = site.coordinator.lease(farm, [0])
    site.restart()

    register(site, "second")
    [again] = site.coordinator.lease(farm, [0])

    assert offsets(again) == offsets(task)
    assert {m.attempt for m in again.messages} == {1}


def test_a_task_two_heartbeats_leave_out_is_released_with_no_attempt_counted(site: Site) -> None:
    site.publish(TOPIC, keys(3))
    farm = register(site, "first")
    [task] = site.coordinator.lease(farm, [0])
    site.clock.advance(HEARTBEAT_S)

    first = site.coordinator.heartbeat(farm, [SlotRecord(farm, 0, "idle")], instance="first")
    assert site.coordinator.lease(farm, [1]) == []  # one heartbeat may have been sent before the task started
    site.clock.advance(HEARTBEAT_S)
    second = site.coordinator.heartbeat(farm, [SlotRecord(farm, 0, "idle")], instance="first")
    [again] = site.coordinator.lease(farm, [0])

    assert first == second == Reconciled()
    assert offsets(again) == offsets(task)
    assert {m.attempt for m in again.messages} == {1}
    late = site.coordinator.complete(task.task_id, ok(task))  # a late report still counts once
    assert (late.accepted, late.ok) == (False, 3)


def test_a_task_running_in_any_slot_or_waiting_to_be_reported_is_kept(site: Site) -> None:
    site.store.add_profile(".*", WorkSettings(batch_size=3))
    site.publish(TOPIC, keys(6), partitions=2)
    farm = register(site, "first")
    first, second = site.coordinator.lease(farm, [0, 1])

    for _ in range(3):
        site.clock.advance(HEARTBEAT_S)
        slots = [SlotRecord(farm, 0, "idle"), SlotRecord(farm, 1, "running", first.task_id)]  # another slot
        site.coordinator.heartbeat(farm, slots, reporting=[second.task_id], instance="first")

    assert site.coordinator.complete(first.task_id, ok(first)).accepted
    assert site.coordinator.complete(second.task_id, ok(second)).accepted


def test_a_heartbeat_naming_a_task_not_leased_to_the_farm_is_told_to_stop_it(site: Site) -> None:
    site.store.add_profile(".*", WorkSettings(batch_size=3))
    site.publish(TOPIC, keys(6), partitions=2)
    farm = register(site, "first")
    [theirs] = site.coordinator.lease(register(site, "other", name="farm-b"), [0])

    answer = site.coordinator.heartbeat(
        farm,
        [SlotRecord(farm, 0, "running", "0123456789abcdef"), SlotRecord(farm, 1, "running", theirs.task_id)],
        instance="first",
    )

    assert answer == Reconciled(stop=("0123456789abcdef", theirs.task_id))
    assert site.coordinator.complete(theirs.task_id, ok(theirs)).accepted  # farm-b's lease is untouched


def test_a_heartbeat_from_an_instance_registered_over_is_told_to_stop_everything(site: Site) -> None:
    site.publish(TOPIC, keys(3))
    farm = register(site, "first")
    register(site, "second")
    [task] = site.coordinator.lease(farm, [0])  # the second instance's task

    answer = site.coordinator.heartbeat(farm, [SlotRecord(farm, 0, "running", "old-task")], instance="first")
    site.clock.advance(HEARTBEAT_S)
    site.coordinator.heartbeat(farm, [SlotRecord(farm, 0, "idle")], instance="first")
    site.clock.advance(HEARTBEAT_S)
    site.coordinator.heartbeat(farm, [SlotRecord(farm, 0, "idle")], instance="first")

    assert answer == Reconciled(stop=("old-task",), superseded=True)
    assert site.coordinator.complete(task.task_id, ok(task)).accepted  # the old one's heartbeats change nothing


def test_after_a_restart_no_farm_is_lost_before_three_intervals_have_passed(site: Site) -> None:
    site.publish(TOPIC, keys(3))
    farm = register(site, "first")
    [task] = site.coordinator.lease(farm, [0])
    site.clock.advance(60)  # the coordinator was down for a minute (the task's deadline is ten minutes away)
    site.restart()

    assert site.coordinator.expire() == 0
    site.clock.advance(3 * HEARTBEAT_S - 1)
    assert site.coordinator.expire() == 0
    site.coordinator.heartbeat(farm, [running(task)], instance="first")
    site.clock.advance(3 * HEARTBEAT_S - 1)
    assert site.coordinator.expire() == 0
    site.clock.advance(1)
    assert site.coordinator.expire() == 1  # silent for three intervals since it was heard


def test_a_coordinator_that_did_not_run_for_an_interval_counts_no_farm_lost_before_three_more(tmp_path: Path) -> None:
    ticks = [1000.0]  # the monotonic clock, which goes on while the process is frozen
    start = datetime(2026, 3, 3, 13, 0, tzinfo=UTC)

    def at(seconds: float) -> datetime:
        ticks[0] = 1000.0 + seconds
        return start + timedelta(seconds=seconds)

    with Store.open(f"sqlite:///{tmp_path}/state.db") as store:
        farms = Farms(store, CoordinatorOptions(heartbeat_interval_s=HEARTBEAT_S), ticks=lambda: ticks[0])
        farms.register("farm-a", {}, 2, "first", at(0), "farm-a")
        assert farms.find_lost(at(1)) == set()

        frozen = [farms.find_lost(at(61))]  # nothing ran for a minute (SIGSTOP, a stalled machine)
        frozen += [farms.find_lost(at(61 + second)) for second in range(1, 3 * HEARTBEAT_S)]
        lost = farms.find_lost(at(61 + 3 * HEARTBEAT_S))

    assert frozen == [set()] * 3 * HEARTBEAT_S
    assert lost == {"farm-a"}
