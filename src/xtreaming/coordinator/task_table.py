"""The tasks in flight by id, each farm's among them, and their deadlines, kept together as tasks come and go.

A farm's heartbeat reconciles its slots with its own tasks; finding those by a walk over every task in
flight made each heartbeat cost as much as the whole site (200 farms of 32 slots: 6,400 tasks, walked at
every heartbeat of every farm). The background pass expires the tasks past their deadline; finding those by
such a walk too made every pass cost as much as the site: a heap of deadlines gives them in order instead.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from datetime import datetime
from typing import Final, NoReturn

from xtreaming.coordinator.runtime import TaskRuntime

#: The heap of deadlines keeps an entry for each task set since its deadline passed or it was rebuilt, tasks
#: long finished included; past this many entries per task in flight (and ``HEAP_SLACK`` more) it is rebuilt
#: from the tasks in flight, so its size stays proportional to them.
HEAP_PER_TASK: Final = 2
HEAP_SLACK: Final = 1024


class TaskTable(dict[str, TaskRuntime]):
    """The tasks in flight by id (a dict: set, delete and pop keep ``of_farm`` and ``pop_overdue`` right; the other
    ways of changing a dict are refused, so none bypasses them)."""

    def __init__(self) -> None:
        super().__init__()
        self._by_farm: dict[str, dict[str, TaskRuntime]] = {}
        #: (deadline, task id) of every task set, some since gone or set again (checked as they come out).
        self._deadlines: list[tuple[datetime, str]] = []

    def of_farm(self, farm_id: str) -> Mapping[str, TaskRuntime]:
        """The tasks in flight leased to ``farm_id``, by id (a view: do not change it)."""
        return self._by_farm.get(farm_id, {})

    def pop_overdue(self, now: datetime) -> list[TaskRuntime]:
        """Remove and return the tasks whose deadline is ``now`` or earlier, earliest first."""
        overdue: list[TaskRuntime] = []
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] <= now:
            deadline, task_id = heapq.heappop(deadlines)
            task = self.get(task_id)
            if task is not None and task.record.deadline_at == deadline:
                del self[task_id]
                overdue.append(task)
        return overdue

    def __setitem__(self, task_id: str, task: TaskRuntime) -> None:
        if task_id in self:
            self._forget(task_id)
        super().__setitem__(task_id, task)
        self._by_farm.setdefault(task.record.farm_id, {})[task_id] = task
        if len(self._deadlines) >= HEAP_PER_TASK * len(self) + HEAP_SLACK:
            self._deadlines = [(t.record.deadline_at, i) for i, t in self.items()]
            heapq.heapify(self._deadlines)
        else:
            heapq.heappush(self._deadlines, (task.record.deadline_at, task_id))

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
