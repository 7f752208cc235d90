"""One running task's shared state: what heartbeats report (pid, progress, memory) and how to kill it.

The slot's thread runs the task and attaches the process; the heartbeat thread reads; the
timeout watchdog, the farm's second signal and the renewal watch call ``kill``. Killing before the
process is attached is remembered, and the process is killed as soon as it is.

Attached processes run at a lower priority than the farm (``lower_priority``): workers that keep
every core busy must not starve the farm's heartbeat, or the coordinator would count a farm lost
whose tasks still run. Lowering the workers needs no privilege, where raising the farm would (a
negative nice on POSIX); children a worker starts later inherit its priority.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Callable
from typing import Final

import psutil

#: POSIX nice steps a worker runs below its farm (19 at most): the farm's few threads then get the
#: processor before workers as busy as can be.
WORKER_NICE_STEPS: Final = 10


class TaskControl:
    """See the module docstring; every method is thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.pid: int | None = None
        self.done: int | None = None
        self.total: int | None = None
        #: Why the task was killed (timeout, farm stopping), None while it was not.
        self.killed: str | None = None
        self._kill: Callable[[], None] | None = None
        self._rss: Callable[[], int | None] | None = None
        self._refresh: Callable[[], None] | None = None

    def attach(
        self,
        pid: int,
        kill: Callable[[], None],
        rss: Callable[[], int | None] | None = None,
        refresh: Callable[[], None] | None = None,
        *,
        lowered: bool = False,
    ) -> None:
        """The task's process started: how to kill it, measure it, and read its progress. It is put
        below the farm's priority first (``lower_priority``), unless it was already (``lowered``: a handler
        process, lowered once when it started, runs task after task)."""
        if not lowered:
            lower_priority(pid)
        with self._lock:
            self.pid, self._kill, self._rss, self._refresh = pid, kill, rss, refresh
            killed = self.killed
        if killed is not None:
            kill()

    def detach(self) -> None:
        """The process ended: nothing is left to kill or measure."""
        with self._lock:
            self._kill = self._rss = None

    def kill(self, reason: str) -> None:
        """Kill the task's process (now, or when it starts); the first reason given is kept."""
        with self._lock:
            if self.killed is None:
                self.killed = reason
            kill = self._kill
        if kill is not None:
            kill()

    def progress(self, done: int, total: int) -> None:
        with self._lock:
            self.done, self.total = done, total

    def refresh(self) -> None:
        """Read the progress the worker printed since the last call (command mode)."""
        with self._lock:
            refresh = self._refresh
        if refresh is not None:
            refresh()

    def rss_bytes(self) -> int | None:
        with self._lock:
            rss = self._rss
        return None if rss is None else rss()


def lower_priority(pid: int) -> None:
    """Run the process ``pid`` and the children it has below this process's priority: ``WORKER_NICE_STEPS``
    more nice on POSIX, the below-normal class on Windows. Never raises it; a process gone or out of reach
    is left as it is."""
    try:
        process = psutil.Process(pid)
        if sys.platform == "win32":
            wanted = psutil.BELOW_NORMAL_PRIORITY_CLASS
            keep = {psutil.BELOW_NORMAL_PRIORITY_CLASS, psutil.IDLE_PRIORITY_CLASS}
        else:
            wanted = min(19, psutil.Process().nice() + WORKER_NICE_STEPS)
            keep = set(range(wanted, 20))
        _lower(process, wanted, keep)
        children = process.children(recursive=True)  # those started before it was lowered (later ones inherit)
    except psutil.Error:
        return
    for child in children:
        _lower(child, wanted, keep)


def _lower(process: psutil.Process, wanted: int, keep: set[int]) -> None:
    with contextlib.suppress(psutil.Error):
        if process.nice() not in keep:
            process.nice(wanted)
