"""The tasks in flight and each farm's among them (``task_table.py``): whatever comes and goes, each farm's are
those a walk over every task would find."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

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
