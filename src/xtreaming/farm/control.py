"""One running task's shared state: what heartbeats report (pid, progress, memory) and how to kill it.

The slot's thread runs the task and attaches the process; the heartbeat thread reads; the
timeout watchdog and the farm's second signal call ``kill``. Killing before the process is
attached is remembered, and the process is killed as soon as it is.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


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
    ) -> None:
        """The task's process started: how to kill it, measure it, and read its progress."""
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
