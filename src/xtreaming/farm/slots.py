"""A farm's worker slots: which task each runs, in its own thread, and what heartbeats say of it."""

from __future__ import annotations

import logging
import queue
import threading
import time
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
    """One worker slot: idle, or running ``task`` under ``control`` on the slot's own thread.

    The thread is made at the first task and then waits for the next one: handing a task to a waiting thread
    costs a fraction of starting a thread per task, which a lane of one-message tasks would pay every time."""

    index: int
    task: Task | None = None
    control: TaskControl = field(default_factory=TaskControl)
    #: When the slot's current (or last) task started (``time.monotonic``).
    started: float = 0.0
    _next: queue.SimpleQueue[tuple[Task, TaskControl, Execute, Finished]] = field(default_factory=queue.SimpleQueue)
    _thread: threading.Thread | None = None

    @property
    def idle(self) -> bool:
        return self.task is None

    def begin(self, task: Task) -> TaskControl:
        """The slot runs ``task`` from now on (somewhere else than on its thread); returns the task's control."""
        self.task, self.control, self.started = task, TaskControl(), time.monotonic()
        return self.control

    def start(self, task: Task, execute: Execute, finished: Finished) -> None:
        """Run ``task`` on the slot's thread; ``finished`` gets its outcome (never an exception)."""
        self._next.put((task, self.begin(task), execute, finished))
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name=f"slot-{self.index}", daemon=True)
            self._thread.start()

    def _serve(self) -> None:
        while True:
            task, control, execute, finished = self._next.get()
            try:
                outcome = execute(self.index, task, control)
            except Exception as exc:  # the slot must report something whatever went wrong in the farm
                log.exception("slot %d: task %s failed inside the farm", self.index, task.task_id)
                outcome = failed(f"farm error running the task: {type(exc).__name__}: {exc}")
            finished(self, task, outcome)

    def release(self) -> None:
        self.task = None

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
