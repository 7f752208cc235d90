"""A farm's worker slots: which task each runs, in its own thread, and what heartbeats say of it."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from xtreaming.farm.control import TaskControl
from xtreaming.farm.protocol import Outcome, Task, failed

log = logging.getLogger("xtreaming.farm")

Execute = Callable[[int, Task, TaskControl], Outcome]
Finished = Callable[["Slot", Task, Outcome], None]


@dataclass(slots=True)
class Slot:
    """One worker slot: idle, or running ``task`` in ``thread`` under ``control``."""

    index: int
    task: Task | None = None
    control: TaskControl = field(default_factory=TaskControl)
    thread: threading.Thread | None = None

    @property
    def idle(self) -> bool:
        return self.task is None

    def start(self, task: Task, execute: Execute, finished: Finished) -> None:
        """Run ``task`` in a new thread; ``finished`` gets its outcome (never an exception)."""
        self.task, self.control = task, TaskControl()
        control = self.control

        def run() -> None:
            try:
                outcome = execute(self.index, task, control)
            except Exception as exc:  # the slot must report something whatever went wrong in the farm
                log.exception("slot %d: task %s failed inside the farm", self.index, task.task_id)
                outcome = failed(f"farm error running the task: {type(exc).__name__}: {exc}")
            finished(self, task, outcome)

        self.thread = threading.Thread(target=run, name=f"slot-{self.index}", daemon=True)
        self.thread.start()

    def release(self) -> None:
        self.task, self.thread = None, None

    def status(self, stopping: bool) -> dict[str, Any]:
        """This slot in a heartbeat: state, task, pid, progress and memory."""
        task, control = self.task, self.control
        if task is None:
            return {"index": self.index, "state": "idle"}
        control.refresh()
        return {
            "index": self.index,
            "state": "stopping" if stopping or control.killed else "running",
            "task_id": task.task_id,
            "pid": control.pid,
            "done": control.done,
            "total": control.total,
            "rss_bytes": control.rss_bytes(),
        }
