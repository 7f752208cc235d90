"""Handler tasks waited on together: one thread waits on the pipes of every running handler task at once.

A farm of one-message tasks ends hundreds of them a second. With a thread per slot waiting on its own pipe, each
task cost each slot's thread a wake and several hand-offs of the GIL against the other slots' threads doing the
same at the same moment (a lease answer starts them together): measured, about forty futex calls per task, most of
the farm's system time. Here the thread that takes a lease answer writes each task to its worker process's pipe
(``submit``), and one thread (the hub) waits on all the pipes with one selector, reads what came, keeps each task's
time limit (``Watch``), and hands each outcome to ``done``. A pipe registered while the hub waits is waited on at
once (epoll, kqueue); the hub is woken only when a task's time limit comes before its own next check.

Where pipes are no file descriptors a selector can wait on (Windows), each slot's thread waits on its own pipe
(``HandlerWorker.run``), as command tasks do.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, Protocol

from xtreaming.farm.control import TaskControl
from xtreaming.farm.protocol import Outcome, Task, failed

log = logging.getLogger("xtreaming.farm")

#: After a kill, how long the pipe may stay open before the task is given up on anyway.
KILLED_WAIT_S: Final = 5.0
#: A running task's limits are checked at least this often while it says nothing (a kill from another thread is
#: seen within this).
CHECK_S: Final = 1.0
#: Whether the pipes to handler processes can be waited on together (see the module docstring).
WAITS_TOGETHER: Final = sys.platform != "win32"

Clock = Callable[[], float]
Done = Callable[[Outcome], None]


class Worker(Protocol):
    """What the hub needs of a slot's handler process (``handlers.HandlerWorker``)."""

    def begin(self, task: Task, control: TaskControl) -> Outcome | None: ...

    def fileno(self) -> int: ...

    def answer(self, control: TaskControl) -> Outcome | None: ...

    def end(self, control: TaskControl) -> None: ...


class Watch:
    """A handler task's time limit: killed at ``timeout_s``; given up on ``KILLED_WAIT_S`` after it was seen killed
    (the kill closes the pipe, which ends the wait first). ``next_at``: when to check again."""

    def __init__(self, clock: Clock, timeout_s: float) -> None:
        self._clock = clock
        self._timeout_s = timeout_s
        now = clock()
        self._deadline = now + timeout_s
        self._given_up_at: float | None = None
        self.next_at = min(self._deadline, now + CHECK_S)

    def check(self, control: TaskControl) -> Outcome | None:
        """Kill the task when its time is up; the outcome of a task given up on, else None."""
        now = self._clock()
        if now >= self._deadline and control.killed is None:
            control.kill(f"timed out after {self._timeout_s:g} s: handler process tree killed")
        if control.killed is None:
            self.next_at = min(self._deadline, now + CHECK_S)
            return None
        if self._given_up_at is None:
            self._given_up_at = now + KILLED_WAIT_S
        if now >= self._given_up_at:
            return failed(control.killed)
        self.next_at = self._given_up_at
        return None


@dataclass(eq=False, slots=True)
class _Running:
    worker: Worker
    control: TaskControl
    watch: Watch
    done: Done
    fd: int = field(default=-1)


class HandlerHub:
    """See the module docstring; ``submit`` is thread-safe."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._lock = threading.Lock()  # guards the five below
        self._running: dict[int, _Running] = {}  # by pipe descriptor
        self._wakes_at = 0.0  # when the hub checks the time limits next, unless woken
        self._call: tuple[float, Callable[[], None]] | None = None  # ``call_after``'s
        self._thread: threading.Thread | None = None
        self._closed = False

    def submit(self, worker: Worker, task: Task, control: TaskControl, done: Done) -> None:
        """Send ``task`` to ``worker``'s process on this thread; ``done`` gets its outcome on the hub's (or on this
        one, at once, when the task could not be sent)."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the handler hub is closed")
        outcome = worker.begin(task, control)
        if outcome is not None:
            worker.end(control)
            done(outcome)
            return
        running = _Running(worker, control, Watch(self._clock, task.timeout_s), done, worker.fileno())
        with self._lock:
            self._running[running.fd] = running
            self._selector.register(running.fd, selectors.EVENT_READ, running)
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, name="handler-hub", daemon=True)
                self._thread.start()
            elif running.watch.next_at < self._wakes_at:
                self._wake()

    @property
    def on_its_thread(self) -> bool:
        """Whether this is the hub's thread, where ``done`` is called (unless a task could not be sent at all)."""
        return threading.current_thread() is self._thread

    def call_after(self, seconds: float, call: Callable[[], None]) -> None:
        """Call ``call`` on the hub's thread ``seconds`` from now, in place of any call asked before."""
        at = self._clock() + seconds
        with self._lock:
            self._call = (at, call)
            if at < self._wakes_at and not self.on_its_thread:
                self._wake()

    def close(self) -> None:
        """Stop the hub's thread (tasks still running are left to their processes' fate)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
            self._wake()
        if thread is not None:
            thread.join(timeout=5)
        self._selector.close()
        os.close(self._wake_r)
        os.close(self._wake_w)

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError):  # a wake is waiting to be read already
            os.write(self._wake_w, b"\0")

    def _serve(self) -> None:
        while True:
            now = self._clock()
            with self._lock:
                if self._closed:
                    return
                due = [r for r in self._running.values() if r.watch.next_at <= now]
                call = self._call if self._call is not None and self._call[0] <= now else None
                if call is not None:
                    self._call = None
            for task in due:  # the others' limits are not due: a wake for their pipes checks nothing more
                self._step(task, task.watch.check)
            if call is not None:
                try:
                    call[1]()
                except Exception:
                    log.exception("handler hub: a call it was asked to make failed")
            with self._lock:
                limits = [r.watch.next_at for r in self._running.values()]
                if self._call is not None:
                    limits.append(self._call[0])
                self._wakes_at = min(limits, default=self._clock() + CHECK_S)
                wakes_at = self._wakes_at
            for key, _ in self._selector.select(max(0.0, wakes_at - self._clock())):
                if key.data is None:
                    with contextlib.suppress(BlockingIOError):
                        os.read(self._wake_r, 4096)
                else:
                    task = key.data
                    self._step(task, task.worker.answer)

    def _step(self, task: _Running, step: Callable[[TaskControl], Outcome | None]) -> None:
        """One step of ``task`` (a check of its time limit, or reading what its process said), ended when the step
        gives its outcome."""
        with self._lock:
            if self._running.get(task.fd) is not task:  # ended by an earlier step
                return
        try:
            outcome = step(task.control)
        except Exception as exc:  # the task must end with something whatever went wrong in the farm
            log.exception("handler hub: a task failed inside the farm")
            outcome = failed(f"farm error running the task: {type(exc).__name__}: {exc}")
        if outcome is None:
            return
        with self._lock:
            del self._running[task.fd]
            self._selector.unregister(task.fd)  # before ``end`` may close the pipe
        try:
            task.worker.end(task.control)
        except Exception:
            log.exception("handler hub: a task's process could not be let go of")
        try:
            task.done(outcome)
        except Exception:
            log.exception("handler hub: a task's outcome could not be handed on")
