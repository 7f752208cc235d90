"""Python handler mode: a queue's ``handler`` (``module:function``) runs in long-lived worker
processes, one per slot, started on first use and started again after one dies or is killed.

No process start per task, so this is the fast path, for Python workers. The worker process
imports each handler once and calls it with a ``Batch``; progress and the verdicts come back
over a pipe. A handler that hangs is killed at the task's timeout (its whole process tree),
and its messages are retried like those of a command that timed out.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import multiprocessing
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable, Mapping
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, Final

import psutil

from xtreaming.farm.batch import Batch, Columns, from_columns
from xtreaming.farm.control import TaskControl, lower_priority
from xtreaming.farm.handler_hub import WAITS_TOGETHER, Done, HandlerHub, Watch
from xtreaming.farm.lifeline import UNBOUND, Lifeline
from xtreaming.farm.pipe_messages import Reader, send
from xtreaming.farm.processes import kill_tree, tree_rss
from xtreaming.farm.protocol import InvalidOutput, Outcome, Task, failed, verdicts_of
from xtreaming.wire.verdict import Verdict

log = logging.getLogger("xtreaming.farm")

#: Lines of a handler's traceback kept in the detail of its failed messages.
TRACEBACK_LINES: Final = 12

Clock = Callable[[], float]
Request = tuple[str, tuple[str, str, str, str, str, str, int], Columns]


class HandlerPool:
    """One ``HandlerWorker`` per slot (see the module docstring)."""

    def __init__(self, slots: int, *, clock: Clock = time.monotonic, lifeline: Lifeline = UNBOUND) -> None:
        self._workers = [HandlerWorker(index, clock, lifeline) for index in range(slots)]
        self._hub = HandlerHub(clock) if WAITS_TOGETHER else None

    @property
    def waits_together(self) -> bool:
        """Whether tasks go through ``submit`` (one thread waits on every handler process), not ``run``."""
        return self._hub is not None

    def start(self) -> None:
        """Start every slot's process now, without waiting for them: an interpreter takes a tenth of a
        second or more to start, which the first handler task of each slot would otherwise wait for."""
        for worker in self._workers:
            worker.start()

    def run(self, slot: int, task: Task, control: TaskControl) -> Outcome:
        """Run ``task`` on ``slot``'s process, waiting on this thread."""
        return self._workers[slot].run(task, control)

    def submit(self, slot: int, task: Task, control: TaskControl, done: Done) -> None:
        """Send ``task`` to ``slot``'s process; ``done`` gets its outcome (``handler_hub``). Only where
        ``waits_together``."""
        if self._hub is None:
            raise RuntimeError("handler tasks are waited on by their slots' threads here: use run")
        self._hub.submit(self._workers[slot], task, control, done)

    @property
    def on_hub_thread(self) -> bool:
        """Whether this is the thread that gets the outcomes of ``submit`` (``HandlerHub.on_its_thread``)."""
        return self._hub is not None and self._hub.on_its_thread

    def call_on_hub(self, seconds: float, call: Callable[[], None]) -> None:
        """``call`` on the hub's thread ``seconds`` from now (``HandlerHub.call_after``). Only where
        ``waits_together``."""
        if self._hub is None:
            raise RuntimeError("handler tasks are waited on by their slots' threads here: there is no hub")
        self._hub.call_after(seconds, call)

    def close(self) -> None:
        if self._hub is not None:
            self._hub.close()
        for worker in self._workers:
            worker.close()


class HandlerWorker:
    """A slot's handler process: runs one task at a time; never raises for anything a handler does."""

    def __init__(self, slot: int, clock: Clock = time.monotonic, lifeline: Lifeline = UNBOUND) -> None:
        self.slot = slot
        self._clock = clock
        self._lifeline = lifeline
        self._registration = 0
        self._process: BaseProcess | None = None
        self._conn: Connection | None = None
        self._reader: Reader | None = None
        self._handle: psutil.Process | None = None
        self._gone = False  # the process went away during a task: reaped as the task ends

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def run(self, task: Task, control: TaskControl) -> Outcome:
        """Run ``task`` to its outcome on this thread, waiting on the pipe (``HandlerHub`` waits on many at once)."""
        outcome = self.begin(task, control)
        watch = Watch(self._clock, task.timeout_s)
        try:
            while outcome is None:
                outcome = watch.check(control)
                if outcome is None and self.ready(watch.next_at - self._clock()):
                    outcome = self.answer(control)
        finally:
            self.end(control)
        return outcome

    def begin(self, task: Task, control: TaskControl) -> Outcome | None:
        """Send ``task`` to the worker process (started first if none is alive): None once it is on its way, else
        the outcome of a task that cannot go. ``end`` follows either way."""
        if not task.handler:
            return failed(f"queue {task.topic} has no handler")
        context = (task.task_id, task.topic, task.base, task.convenio, task.kind, task.process, task.attempt)
        request: Request = (task.handler, context, task.messages.handler_columns())
        if self._deliver(request, control):
            return None
        # The process had died while idle (its end of the pipe is closed): the task reached none; a new one takes
        # it. Found here, where asking whether it lived before each task cost a system call per task.
        log.warning("handler process of slot %d had exited (code %s); started again", self.slot, self._reap())
        return None if self._deliver(request, control) else self._died(control)

    def _deliver(self, request: Request, control: TaskControl) -> bool:
        """Send ``request`` to the worker process, started first if there is none; False when its pipe is closed."""
        conn, pid = self._ensure_started()
        control.attach(pid, self._kill, self._rss, lowered=True)  # lowered as it started: not again per task
        try:
            send(conn, request)
        except OSError:
            return False
        return True

    def fileno(self) -> int:
        """The pipe's descriptor, to wait on (after ``begin``)."""
        if self._conn is None:
            raise RuntimeError(f"handler process of slot {self.slot} is not running")
        return self._conn.fileno()

    def ready(self, timeout_s: float) -> bool:
        """Whether the worker process said something (or went away), waiting up to ``timeout_s``."""
        return self._reader is not None and self._reader.poll(timeout_s)

    def answer(self, control: TaskControl) -> Outcome | None:
        """Read what the worker process said (something is there): the task's outcome, or None when it only
        reported progress or the rest of its message is still to come (every whole message that came is read: none
        is left waiting behind a quiet pipe; the rest of one is never waited for)."""
        reader = self._reader
        if reader is None:
            return self._died(control)
        while True:
            try:
                whole, message = reader.recv_now()
            except (EOFError, OSError):
                return self._died(control)
            if not whole:
                return None
            kind, *body = message
            if kind == "done":
                return Outcome(Verdict.OK, None, body[0])
            if kind == "invalid":
                return failed(body[0], Verdict.ERROR)
            if kind != "progress":
                return failed(body[0])
            control.progress(*body)
            if not reader.pending:
                return None

    def end(self, control: TaskControl) -> None:
        """The task is over: its process is no longer the task's; one killed or gone is reaped (its pipe closed only
        now: whoever waits on the pipe lets go of it first) and started again next time."""
        control.detach()
        if control.killed or self._gone:
            self._reap()

    def _died(self, control: TaskControl) -> Outcome:
        """The process went away during the task: the task's outcome, saying why; ``end`` reaps it."""
        self._gone = True
        return failed(control.killed or f"handler process died (exit code {self._exit_code()})")

    def start(self) -> None:
        """Start the worker process unless it runs already."""
        self._ensure_started()

    def _ensure_started(self) -> tuple[Connection, int]:
        """The worker's pipe and pid, starting a worker process when there is none (or it was reaped)."""
        process, conn = self._process, self._conn
        if process is not None and process.pid is not None and conn is not None:
            return conn, process.pid  # alive as far as the farm knows (``begin`` finds out otherwise)
        self._reap()
        context = multiprocessing.get_context("spawn")  # the same on Linux and Windows; no forked state
        parent, child = context.Pipe()
        environ = dict(self._lifeline.environ())
        process = context.Process(target=serve, args=(child, environ), name=f"xtreaming-handler-{self.slot}")
        process.start()
        child.close()
        self._process, self._conn, self._reader = process, parent, Reader(parent)
        pid = process.pid
        if pid is None:  # start() returned, so the OS gave it a pid; this keeps pid 0 from ever being used
            raise RuntimeError(f"handler process of slot {self.slot} has no pid")
        self._registration = self._lifeline.adopt(pid)
        lower_priority(pid)  # once: what it starts later inherits its priority
        try:
            self._handle = psutil.Process(pid)
        except psutil.Error:
            self._handle = None
        return parent, pid

    def _kill(self) -> None:
        if self._handle is not None:
            kill_tree(self._handle)

    def _rss(self) -> int | None:
        return None if self._handle is None else tree_rss(self._handle)

    def _reap(self) -> int | None:
        """Forget a dead (or killed) worker process; returns its exit code."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        process, code = self._process, self._exit_code()
        self._process, self._handle, self._reader, self._gone = None, None, None, False
        if process is not None and process.exitcode is not None:  # waited for: its pid may be reused from now on
            self._lifeline.release(self._registration)
        return code

    def _exit_code(self) -> int | None:
        """Wait for the worker process to end (killed if it has not within 5 s); its exit code."""
        process = self._process
        if process is None:
            return None
        process.join(timeout=5)
        if process.exitcode is None:
            process.kill()
            process.join(timeout=5)
        return process.exitcode

    def close(self) -> None:
        """Stop the worker process: asked first, killed if it does not go."""
        if self._conn is not None:
            with contextlib.suppress(OSError):
                send(self._conn, None)
        if self._process is not None:
            self._process.join(timeout=2)
            if self._process.exitcode is None:
                self._kill()
        self._reap()


def serve(conn: Connection, environ: Mapping[str, str] | None = None) -> None:
    """The worker process's loop: handle requests until the farm sends None or goes away.

    ``environ``: variables for whatever a handler starts (the farm's lifeline tag)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the farm decides when its workers stop
    if sys.platform == "win32":
        signal.signal(signal.SIGBREAK, signal.SIG_IGN)
    else:
        # A group of its own, as a command worker's: the farm's watchdog kills it whole, and a hang-up
        # of the farm's terminal (which stops the farm gracefully) does not kill a running handler.
        os.setsid()
    os.environ.update(environ or {})
    handlers: dict[str, Callable[[Batch], object]] = {}
    reader = Reader(conn)
    while True:
        try:
            request: Request | None = reader.recv()
        except (EOFError, OSError):
            return
        if request is None:
            return
        send(conn, _handle(request, handlers, conn))


def _handle(request: Request, handlers: dict[str, Callable[[Batch], object]], conn: Connection) -> tuple[Any, ...]:
    reference, context, columns = request
    try:
        handler = handlers.get(reference) or handlers.setdefault(reference, load_handler(reference))
    except Exception as exc:  # a missing module or name is the queue's configuration, not the messages
        return ("failed", f"cannot load handler {reference!r}: {type(exc).__name__}: {exc}")
    messages = from_columns(columns)
    batch = Batch(*context, messages=messages, _report=lambda done, total: send(conn, ("progress", done, total)))
    try:
        result = handler(batch)
    except Exception as exc:  # the handler's failure: retried, with what it said
        lines = traceback.format_exception(exc)[-TRACEBACK_LINES:]
        return ("failed", f"handler {reference} raised {type(exc).__name__}: {exc}; {''.join(lines).strip()}")
    try:
        return ("done", verdicts_of(result, {m.id for m in messages}))
    except InvalidOutput as exc:
        return ("invalid", str(exc))


def load_handler(reference: str) -> Callable[[Batch], object]:
    """Import ``module:function``; raises ImportError, AttributeError or TypeError saying which part failed."""
    module_name, _, name = reference.partition(":")
    if not module_name or not name:
        raise ValueError(f"handler {reference!r} is not 'module:function'")
    handler = getattr(importlib.import_module(module_name), name)
    if not callable(handler):
        raise TypeError(f"{reference} is a {type(handler).__name__}, not a function")
    return handler  # type: ignore[no-any-return]
