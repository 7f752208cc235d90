"""The tasks in flight by id, and each farm's among them, kept together as tasks come and go.

A farm's heartbeat reconciles its slots with its own tasks; finding those by a walk over every task in
flight made each heartbeat cost as much as the whole site (200 farms of 32 slots: 6,400 tasks, walked at
every heartbeat of every farm).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NoReturn

from xtreaming.coordinator.runtime import TaskRuntime


class TaskTable(dict[str, TaskRuntime]):
    """The tasks in flight by id (a dict: set, delete and pop keep ``of_farm`` right; the other ways of changing
    a dict are refused, so none bypasses it)."""

    def __init__(self) -> None:
        super().__init__()
        self._by_farm: dict[str, dict[str, TaskRuntime]] = {}

    def of_farm(self, farm_id: str) -> Mapping[str, TaskRuntime]:
        """The tasks in flight leased to ``farm_id``, by id (a view: do not change it)."""
        return self._by_farm.get(farm_id, {})

    def __setitem__(self, task_id: str, task: TaskRuntime) -> None:
        if task_id in self:
            self._forget(task_id)
        super().__setitem__(task_id, task)
        self._by_farm.setdefault(task.record.farm_id, {})[task_id] = task

    def __delitem__(self, task_id: str) -> None:
        self._forget(task_id)
        super().__delitem__(task_id)

    def pop(self, task_id: str, *default: TaskRuntime | None) -> TaskRuntime | None:  # type: ignore[override]
        if task_id in self:
            self._forget(task_id)
        return super().pop(task_id, *default)

    def _forget(self, task_id: str) -> None:
        farm_id = self[task_id].record.farm_id
        tasks = self._by_farm[farm_id]
        del tasks[task_id]
        if not tasks:
            del self._by_farm[farm_id]

    def _refused(self, *_: object, **__: object) -> NoReturn:
        raise TypeError("TaskTable changes by set, delete and pop only")

    update = setdefault = popitem = clear = __ior__ = _refused
