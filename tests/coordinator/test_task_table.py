"""The tasks in flight, each farm's among them and those past their deadline (``task_table.py``): whatever comes and
goes, they are those a walk over every task would find."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from xtreaming.coordinator import task_table
from xtreaming.coordinator.records import QueueRecord, TaskRecord, WorkSettings
from xtreaming.coordinator.runtime import QueueRuntime, TaskRuntime
from xtreaming.coordinator.task_table import TaskTable

TOPIC = "MULTCOB03.1189.IMPORTACAO.ATUALIZA_BUREAU"
QUEUE = QueueRuntime(QueueRecord(TOPIC, "MULTCOB03", "IMPORTACAO", WorkSettings()))
AT = datetime(2026, 3, 3, 13, 0, tzinfo=UTC)


def task(task_id: str, farm: str) -> TaskRuntime:
    return TaskRuntime(TaskRecord(task_id, TOPIC, farm, 0, (), AT, AT), QUEUE, [])


@pytest.mark.parametrize("seed", range(10))
def test_each_farms_tasks_are_those_a_walk_over_every_task_finds(seed: int) -> None:
    rng = random.Random(seed)
    table = TaskTable()
    for _ in range(500):
        task_id = f"t{rng.randrange(40)}"
        match rng.randrange(3):
            case 0:  # leased, or leased again to another farm under the same id
                table[task_id] = task(task_id, rng.choice(["farm-a", "farm-b", "farm-c"]))
            case 1 if task_id in table:
                del table[task_id]
            case _:
                table.pop(task_id, None)
        for farm in ("farm-a", "farm-b", "farm-c"):
            assert dict(table.of_farm(farm)) == {i: t for i, t in table.items() if t.record.farm_id == farm}


def test_the_ways_of_changing_a_dict_that_would_pass_it_by_are_refused() -> None:
    table = TaskTable()
    table["t1"] = task("t1", "farm-a")

    with pytest.raises(TypeError, match="set, delete and pop only"):
        table.update({})
    with pytest.raises(TypeError, match="set, delete and pop only"):
        table.setdefault("t2", task("t2", "farm-b"))
    with pytest.raises(TypeError, match="set, delete and pop only"):
        table.popitem()
    with pytest.raises(TypeError, match="set, delete and pop only"):
        table.clear()
    assert dict(table.of_farm("farm-a")) == {"t1": table["t1"]}


def due_task(task_id: str, farm: str, deadline: datetime) -> TaskRuntime:
    return TaskRuntime(TaskRecord(task_id, TOPIC, farm, 0, (), AT, deadline), QUEUE, [])


@pytest.mark.parametrize("seed", range(10))
def test_the_overdue_tasks_are_those_a_walk_finds_past_their_deadline_and_the_heap_stays_small(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(task_table, "HEAP_SLACK", 4)  # rebuilt often
    rng = random.Random(seed)
    table = TaskTable()
    now = AT
    for _ in range(2_000):
        task_id = f"t{rng.randrange(40)}"
        match rng.randrange(4):
            case 0:  # leased, or leased again with another deadline under the same id
                table[task_id] = due_task(task_id, "farm-a", now + timedelta(seconds=rng.randrange(1, 60)))
            case 1:
                table.pop(task_id, None)
            case 2:
                now += timedelta(seconds=rng.randrange(10))
                expected = sorted(
                    (t for t in table.values() if t.record.deadline_at <= now), key=lambda t: t.record.deadline_at
                )
                overdue = table.pop_overdue(now)
                assert [t.record.deadline_at for t in overdue] == [t.record.deadline_at for t in expected]
                assert {t.record.id for t in overdue} == {t.record.id for t in expected}
                assert all(t.record.deadline_at > now for t in table.values())
            case _:
                assert len(table._deadlines) <= 2 * len(table) + 4 + 1
