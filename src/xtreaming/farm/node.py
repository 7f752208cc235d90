"""The farm agent: registers, heartbeats, long-polls for tasks for its idle slots, runs them, reports.

Threads: the dispatcher (``run`` / ``run_once``: long-polls for tasks for idle slots), one per slot running command
tasks (``slots.Slot``), one waiting on every running handler task's process (``handler_hub``, which also sends their
results while nothing else runs) and the two exchangers that send them otherwise, the heartbeat, the reporter
(``reporting.Outbox``: results that cannot ride on a lease request) and the renewal watch (``links``).

One request for many slots. When a task ends, its result goes to the outbox and its thread (for a handler task, the
hub once no slot runs a task, else an exchanger), unless ``MAX_EXCHANGES`` lease requests are out already, sends one
request carrying every result waiting and asking work for every idle slot; it goes on while more are ready (the hub
sends one and goes back to reading). Results that end while requests are out wait for the next one, so the busier the
farm, the more each request carries: at one message a task, eight slots cost the coordinator one request per several
tasks, not one per task; and a result that would go alone while other slots run waits a moment for theirs
(``GATHER_S``; ``HOLD_S`` on the hub). A second request goes out beside a first whose answer has not come for a while
(``SECOND_EXCHANGE_AFTER_S``): a slow answer (a large batch settled and leased) then does not keep a slot that ended
waiting for it; not once the answer came and its tasks are being started (what ends meanwhile goes in the next
request of the thread starting them, together).
Once the coordinator has no work for a slot, the slot waits in the dispatcher's long-poll, not in a loop of requests.

The coordinator may go away at any moment: every call is retried with back-off, and results are
kept until it answers again; running tasks carry on until it would count the farm lost, and are
stopped then (``links`` says when; ``--keep-running-when-unreachable`` keeps them). A
task the coordinator says is no longer this farm's is killed at once. A first stop request (SIGTERM,
Ctrl-C) takes no new tasks and lets running ones finish; a second kills them and reports them for retry.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import replace
from types import FrameType
from typing import Any, Final

from xtreaming.client import ApiError, CoordinatorClient, CoordinatorUnreachable, NoLeader
from xtreaming.errors import XtreamingError
from xtreaming.farm.config import FarmConfig
from xtreaming.farm.control import TaskControl
from xtreaming.farm.handlers import HandlerPool
from xtreaming.farm.lifeline import farm_lifeline
from xtreaming.farm.links import Links
from xtreaming.farm.protocol import InvalidTask, Outcome, Task, read_lease
from xtreaming.farm.reporting import Backoff, Outbox, Report
from xtreaming.farm.runner import CommandRunner, TaskDirs
from xtreaming.farm.slots import Slot
from xtreaming.wire import lease_frame

log = logging.getLogger("xtreaming.farm")

#: While every coordinator answers as a standby (a takeover under way), the farm asks again at least this often:
#: the new leader serves seconds later, and every slot waits until it is asked.
NO_LEADER_RETRY_S: Final = 0.5
#: Extra seconds the HTTP call of a long-poll may take beyond its wait.
LEASE_MARGIN_S: Final = 10.0
#: Lease requests sent as tasks end that may be out at once (the dispatcher's long-poll aside).
MAX_EXCHANGES: Final = 2
#: A second of them goes only once the first has waited this long for its answer: quick answers (tasks of one
#: message) let results gather for one request; slow ones (large batches) do not keep a slot that ended waiting.
SECOND_EXCHANGE_AFTER_S: Final = 0.005
#: A task that ends while other slots run, and no request is out to carry its result, waits at most this long for
#: them to end too: tasks of one message leased together end within a millisecond or two of each other, and one
#: request then settles them all and leases their slots again, where it would otherwise settle one, then the rest.
GATHER_S: Final = 0.002
#: The hub holds a quick handler task's result at most this long for those of tasks begun with it (``_handler_ended``).
#: Tasks of one message leased together ended up to several milliseconds apart on two cores with eight slots
#: (their processes take turns): at ``GATHER_S`` a farm's requests split into groups of about five, which kept
#: apart; from ten milliseconds on, each carried every slot's result (measured).
HOLD_S: Final = 0.01
#: Only results of tasks this quick gather: a longer task's fellows seldom end within ``GATHER_S`` of it, and its
#: result would wait for nothing.
QUICK_TASK_S: Final = 0.05

ClientFactory = Callable[[str, str | None], CoordinatorClient]


def _freeze_heap() -> None:
    """Exempt what the farm holds by now (imports, clients, threads) from garbage collection.

    It lives as long as the process; yet each lease of thousands of messages allocates enough to
    set off a full collection every few tasks, and each walked all of it again (about 15 ms a time,
    measured). Frozen, a full collection walks only what came after.
    """
    gc.freeze()


class FarmNode:
    """One farm agent (see the module docstring)."""

    def __init__(
        self,
        config: FarmConfig,
        *,
        runner: CommandRunner | None = None,
        handlers: HandlerPool | None = None,
        client_factory: ClientFactory = CoordinatorClient,
    ) -> None:
        self.config = config
        dirs = TaskDirs(config.work_dir / "tasks", config.keep_failed)
        dirs.prune()  # directories left by an earlier run count as kept ones
        self.lifeline = farm_lifeline()  # taken hold of at start: from then on its workers die with the farm
        self.runner = runner or CommandRunner(dirs, farm=config.name, lifeline=self.lifeline)
        self.handlers = handlers or HandlerPool(config.slots, lifeline=self.lifeline)
        self.slots = [Slot(index) for index in range(config.slots)]
        self.outbox = Outbox()
        self.stopping = threading.Event()
        self.aborting = threading.Event()
        self.links = Links(config, self.outbox, self.slots, client_factory, self.stopping, self.stop_tasks)
        self._api = client_factory(config.coordinator_url, config.token)
        self._backoff = Backoff()
        self._wake = threading.Event()
        self._signals = 0
        self._ended = threading.Condition()  # notified as a task ends while a thread gathers (``_gather``)
        self._gathering = False
        self._quick = False  # the task that ended last ran under QUICK_TASK_S
        self._exchange = threading.Lock()  # guards the five below
        self._exchanges = 0  # lease requests out, sent as tasks ended
        self._first_sent = 0.0  # when the oldest of them was sent (time.monotonic)
        self._awaiting = 0  # of them, those whose answer has not come yet
        self._asked: set[int] = set()  # idle slots a request out asks work for
        self._holding = False  # the hub holds results for those of other quick tasks (``_handler_ended``)
        self._starved = False  # the last answer had no task for some slot it was asked for
        self._exchangers: list[threading.Thread] = []  # send the results of handler tasks (``_handler_ended``)
        self._results: queue.SimpleQueue[bool] = queue.SimpleQueue()  # wakes an exchanger: gather first?

    # -- lifecycle ------------------------------------------------------------------------------

    def run(self) -> int:
        """Register, then lease and run tasks until stopped; returns the exit code: 0, or 1 when another
        process registered under this farm's name (it took the farm over)."""
        restore = self._install_signals()
        try:
            self.lifeline.start()
            if self.links.register(self.stopping):
                self.links.start()
                self.handlers.start()
                _freeze_heap()
                while self._step():
                    pass
            self.finish()
            return 1 if self.links.superseded.is_set() else 0
        finally:
            restore()

    def _step(self) -> bool:
        try:
            return self.run_once()
        except Exception:  # the dispatcher must outlive anything; the log says what happened
            log.exception("farm dispatcher failed; carrying on")
            self.stopping.wait(self._backoff.next_delay())
            return True

    def run_once(self, wait_s: float | None = None) -> bool:
        """One step of the dispatcher: lease tasks for idle slots and start them, or wait for a slot
        to free up. Returns False once the farm has stopped and every slot is idle."""
        self._wake.clear()
        if self.aborting.is_set():
            self._kill_all()
        if not self.stopping.is_set() and self._exchange_ready(None):  # what the threads of tasks that ended left
            return True  # a step made: results delivered, tasks started
        if self.stopping.is_set():
            self.outbox.handoff(True)
            if self.busy == 0:
                return False
            self._wake.wait(1.0)
            return True
        if not self._lease(self.config.lease_wait_s if wait_s is None else wait_s):
            self.outbox.handoff(False)  # the slot that frees up first carries the results
            self._wake.wait(1.0)
        return True

    def stop(self) -> None:
        """Take no new tasks; running ones finish and are reported."""
        if not self.stopping.is_set():
            log.warning("stopping: no new tasks; %d running will finish (stop again to kill them)", self.busy)
        self.stopping.set()
        self._wake.set()
        self._results.put(True)

    def abort(self) -> None:
        """Kill running tasks and report them for retry, then stop."""
        log.warning("stopping now: killing %d running task(s); they are reported for retry", self.busy)
        self.stopping.set()
        self.aborting.set()
        self._kill_all()
        self._wake.set()
        self._results.put(True)

    def stop_tasks(self, task_ids: Collection[str] | None, reason: str) -> None:
        """Kill the running tasks ``task_ids`` (None: all); their results report them for retry."""
        for slot in self.slots:
            task, control = slot.task, slot.control
            if task is not None and (task_ids is None or task.task_id in task_ids) and control.killed is None:
                control.kill(reason)
        self._wake.set()

    def finish(self) -> None:
        """After the last task: deliver the results still waiting, then stop the other threads."""
        self.outbox.handoff(True)
        if not self.outbox.wait_empty(self.config.flush_s):
            log.error(
                "coordinator unreachable: %d result(s) not delivered; their leases will expire and "
                "their messages will be retried",
                len(self.outbox),
            )
        self.links.stop()
        self.handlers.close()
        self.lifeline.close()
        self._api.close()

    @property
    def busy(self) -> int:
        return sum(1 for slot in self.slots if not slot.idle)

    # -- leasing --------------------------------------------------------------------------------

    def _unasked(self) -> list[int]:
        """The idle slots no request out asks work for (``_exchange`` held): read and marked asked under one
        hold of the lock, so that a slot is never asked for, and given a task, twice."""
        return [slot.index for slot in self.slots if slot.idle and slot.index not in self._asked]

    def _carried(self) -> bool:
        """Whether a request out, or one a thread gathering results (``_gather``) or the hub holding them
        (``_handler_ended``) is about to send, will carry the results waiting and ask work for the idle slots
        (``_exchange`` held); not once the coordinator had no work for a slot: the idle slots are then the
        dispatcher's."""
        return bool(self._exchanges or self._gathering or self._holding) and not self._starved

    def _lease(self, wait_s: float) -> bool:
        """Long-poll for the idle slots no request asks for, while no request sent as a task ended may ask for
        them (none is out, or the coordinator had no work for the last); False when there were none."""
        with self._exchange:
            idle = [] if self._carried() else self._unasked()
            self._asked.update(idle)
        if not idle:
            return False
        try:
            self._request(idle, wait_s, self.outbox.take_piggyback(), pause_on_failure=True)
        finally:
            with self._exchange:
                self._asked.difference_update(idle)
        return True

    def _request(
        self,
        idle: list[int],
        wait_s: float,
        reports: list[Report],
        *,
        pause_on_failure: bool,
        answered: Callable[[], None] = lambda: None,
    ) -> bool:
        """One lease request: ``reports`` delivered and work asked for the ``idle`` slots (each task started on
        one of them); True when it was answered. ``answered`` is called as the answer (or the failure) comes, before
        its tasks start."""
        body = {"slots": idle, "wait_s": wait_s, "completions": [{"task_id": r.task_id, **r.body} for r in reports]}
        sent = time.monotonic()
        try:
            answer = self._post_lease(body, wait_s + LEASE_MARGIN_S)
        except (CoordinatorUnreachable, ApiError) as exc:
            self._lease_failed(exc, reports, pause=pause_on_failure)
            return False
        finally:
            self.outbox.done(len(reports))
            answered()
        self._backoff.reset()
        self.links.reachable()
        self.links.renewed(sent)  # a lease request renews the farm's leases as a heartbeat does
        self.outbox.handoff(self.stopping.is_set())  # results ride on lease requests again
        started = self._take(answer, set(idle))
        if idle:
            self._starved = started < len(idle)
        return True

    def _post_lease(self, body: Mapping[str, Any], timeout_s: float) -> bytes:
        path = f"/api/farms/{self.links.farm_id}/lease"
        return self._api.post_for(path, body, accept=lease_frame.MEDIA_TYPE, timeout_s=timeout_s)

    def _take(self, body: bytes, free: set[int]) -> int:
        """Log what a lease answer settled and start its tasks on the ``free`` slots; the tasks started."""
        try:
            answer = read_lease(body)
        except InvalidTask as exc:
            log.error("ignoring a lease answer the farm cannot read (its tasks' leases will expire): %s", exc)
            return 0
        for settled in answer.settled:
            self.links.log_settled(settled)
        return sum(self._start(data, columns, free) for data, columns in answer.tasks)

    def _lease_failed(self, exc: XtreamingError, reports: list[Report], *, pause: bool) -> None:
        """Put ``reports`` back for a later request; the dispatcher (``pause``) waits its back-off, re-registering
        first when the coordinator forgot the farm."""
        if isinstance(exc, ApiError) and exc.status == 404:
            self.outbox.put_back(reports)
            if pause:
                self.links.register(self.stopping)  # the coordinator forgot us (its state was reset)
            return
        if isinstance(exc, NoLeader):  # a takeover under way: results kept, asked again soon
            self.outbox.put_back(reports)
            self.links.unreachable(exc)
            self.outbox.handoff(True)
            if pause:
                self.stopping.wait(min(self._backoff.next_delay(), NO_LEADER_RETRY_S))
            return
        if isinstance(exc, ApiError):
            log.error("lease refused: %s", exc)
            # one of the results may be what the coordinator refuses: they go on their own from now on
            self.outbox.put_back([replace(r, solo=True) for r in reports])
        else:
            self.outbox.put_back(reports)
            self.links.unreachable(exc)
        self.outbox.handoff(True)  # the reporter takes them from here
        if pause:
            self.stopping.wait(self._backoff.next_delay())

    def _start(self, data: Mapping[str, Any], columns: lease_frame.MessageColumns, free: set[int]) -> bool:
        try:
            task = Task.from_json(data, columns)
        except InvalidTask as exc:
            log.error("ignoring a task the farm cannot read (its lease will expire): %s", exc)
            return False
        if not free:
            log.error("task %s came for no idle slot; ignored (its lease will expire)", task.task_id)
            return False
        index = task.slot if task.slot in free else min(free)
        free.discard(index)
        if not self.slots[index].idle:  # never: only idle slots are asked for, by one request at a time
            log.error(
                "task %s came for slot %d, which runs a task; ignored (its lease will expire)", task.task_id, index
            )
            return False
        if self.stopping.is_set():
            log.info("task %s arrived while stopping: it was leased already, so it runs", task.task_id)
        slot = self.slots[index]
        if task.handler and self.handlers.waits_together:
            self.handlers.submit(
                index, task, slot.begin(task), lambda outcome: self._handler_ended(slot, task, outcome)
            )
        else:
            slot.start(task, self._execute, self._finished)
        return True

    def _execute(self, slot: int, task: Task, control: TaskControl) -> Outcome:
        if task.handler:
            return self.handlers.run(slot, task, control)
        return self.runner.run(task, control)

    def _finished(self, slot: Slot, task: Task, outcome: Outcome) -> None:
        """A task ended on its slot's thread, which then sends its result and asks for the slot's next task."""
        self._settle(slot, task, outcome)
        self._exchange_ready(slot)
        self._wake_dispatcher()

    def _handler_ended(self, slot: Slot, task: Task, outcome: Outcome) -> None:
        """A handler task ended, on the hub's thread (``handler_hub``; on the thread that submitted it when it could
        not be sent). Once no slot runs a task and no long-poll is out, the hub sends the results itself and asks work
        for the idle slots: no pipe has anything to say meanwhile, and handing the request to another thread cost a
        wake and hand-offs of the GIL per result (measured: a quarter of the farm's CPU at one message a task). While
        tasks begun under ``QUICK_TASK_S`` ago still run and this one was quick, the hub holds its result for
        theirs, up to ``HOLD_S`` (seeing each end as it reads it); then, or when only longer tasks run, an exchanger
        sends the results at once, and the hub reads on."""
        self._settle(slot, task, outcome)
        if self.stopping.is_set():
            self._wake_dispatcher()
            return
        if not self.handlers.on_hub_thread:
            self._wake_exchanger(gather=True)
            return
        now = time.monotonic()
        with self._exchange:
            alone = not self.busy and not self._asked
            hold = not alone and self._quick and any(not s.idle and now - s.started < QUICK_TASK_S for s in self.slots)
            holding, self._holding = self._holding, hold
        if alone:  # one request: the tasks it starts are the hub's to read
            self._exchange_ready(None, gather=False, once=True)
            self._wake_dispatcher()
        elif not hold:
            self._wake_exchanger(gather=False)
        elif not holding:
            self.handlers.call_on_hub(HOLD_S, self._held_long)

    def _held_long(self) -> None:
        """``HOLD_S`` after the hub began to hold results, on its thread: an exchanger sends them at once (they
        waited for the other slots' already), unless they went meanwhile."""
        with self._exchange:
            holding, self._holding = self._holding, False
        if holding and len(self.outbox):
            self._wake_exchanger(gather=False)

    def _wake_exchanger(self, *, gather: bool) -> None:
        """Wake an exchanger (started at the first wake) to send the results waiting, after gathering them
        (``_gather``) or not."""
        with self._exchange:
            if not self._exchangers:
                self._exchangers = [
                    threading.Thread(target=self._exchanging, name=f"exchanger-{index}", daemon=True)
                    for index in range(MAX_EXCHANGES)
                ]
                for thread in self._exchangers:
                    thread.start()
        self._results.put(gather)

    def _exchanging(self) -> None:
        """An exchanger's loop: what ``_exchange_ready`` does on a slot's thread as its task ends, for the handler
        tasks that end on none (``_handler_ended``); until the farm stops. There are ``MAX_EXCHANGES`` of them: while
        one waits for an answer (a large batch settled and leased), another sends what ended meanwhile beside it, as
        the slots' threads of command tasks do."""
        while True:
            gather = self._results.get()
            with contextlib.suppress(queue.Empty):
                while True:  # the wakes of results that ended together: one pass carries them all
                    gather = self._results.get_nowait() and gather
            if self.stopping.is_set():
                self._wake_dispatcher()
                self._results.put(True)  # the next exchanger stops too
                return
            self._exchange_ready(None, gather=gather)
            self._wake_dispatcher()

    def _settle(self, slot: Slot, task: Task, outcome: Outcome) -> None:
        """The task's result waits in the outbox, and its slot is free."""
        if not outcome.is_success:
            log.warning("task %s (%s): %s", task.task_id, task.topic, outcome.summary(len(task.messages)))
        self.links.finished(task.task_id)  # before the slot frees: heartbeats always account for the task
        self.outbox.put(Report(task.task_id, outcome.completion()))
        self._free(slot)

    def _free(self, slot: Slot) -> None:
        """The slot is idle again (its result in the outbox): a thread gathering results for a request is told once
        no slot runs a task (what it waits for; woken at each task's end, it would only wait again)."""
        self._quick = time.monotonic() - slot.started < QUICK_TASK_S
        slot.release()
        with self._ended:
            if self._gathering and not self.busy:
                self._ended.notify()

    def _gather(self, wait: bool = True) -> bool:
        """While results wait, other slots run and no request is out to carry them, wait up to ``GATHER_S`` for
        those slots to end as well (``GATHER_S`` says why), if the task that ended last was quick
        (``QUICK_TASK_S``) and the results did not wait already (``wait``); a lone task's result goes at once. One
        thread gathers at a time: False for another, whose result the gathering thread's request carries."""
        with self._ended:
            if self._gathering:
                return False
            self._gathering = True
            try:
                deadline = time.monotonic() + GATHER_S
                while (
                    wait
                    and self._quick
                    and not self.stopping.is_set()
                    and not self._exchanges
                    and self.busy
                    and len(self.outbox)
                ):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._ended.wait(left)
            finally:
                self._gathering = False
        return True

    def _exchange_ready(self, slot: Slot | None, *, gather: bool = True, once: bool = False) -> bool:
        """Send the results waiting and ask work for the idle slots in one request, and again while more are
        ready, unless ``MAX_EXCHANGES`` requests are out (one of them carries these when it is answered). Idle
        slots are asked for only while the coordinator has work; once it has none they are the dispatcher's,
        whose long-poll waits for work. On the thread of ``slot``, whose task just ended, only until the slot has
        its next task (it runs on this thread): the dispatcher sends what is left. The results are gathered first
        (``_gather``) unless they waited already (not ``gather``); ``once``: one request at most. True when a request
        was answered."""
        sent = False
        while not self.stopping.is_set() and self.links.is_reachable and (slot is None or slot.idle):
            if not self._gather(gather or sent):
                return sent  # the thread gathering carries these results and asks work for these slots
            with self._exchange:
                if self._exchanges >= MAX_EXCHANGES or (
                    self._exchanges
                    and (not self._awaiting or time.monotonic() - self._first_sent < SECOND_EXCHANGE_AFTER_S)
                ):
                    return sent  # a second goes only beside one whose answer is slow: not while one starts its tasks
                idle = [] if self._starved else self._unasked()
                reports = self.outbox.take_piggyback()
                if not idle and not reports:
                    return sent
                if not self._exchanges:
                    self._first_sent = time.monotonic()
                self._exchanges += 1
                self._awaiting += 1
                self._asked.update(idle)
            try:
                answered = self._request(idle, 0, reports, pause_on_failure=False, answered=self._answered)
            finally:
                with self._exchange:
                    self._exchanges -= 1
                    self._asked.difference_update(idle)
                self._wake_dispatcher()  # slots still idle are the dispatcher's
            if not answered or once:
                return answered
            sent = True
        return sent

    def _answered(self) -> None:
        """A request sent as tasks ended was answered (or failed): the thread that sent it starts its tasks now."""
        with self._exchange:
            self._awaiting -= 1

    def _wake_dispatcher(self) -> None:
        """Wake the dispatcher when it has something to do: a stop, results no request out or being gathered will
        carry, or idle slots no such request asks work for (``_carried``). A task of one message ends hundreds of times
        a second on a busy farm, and a wake for nothing costs a thread switch each time."""
        if self.stopping.is_set():
            self._wake.set()
            return
        with self._exchange:
            needed = not self._carried() and (bool(self._unasked()) or len(self.outbox) > 0)
        if needed:
            self._wake.set()

    def _kill_all(self) -> None:
        for slot in self.slots:
            if not slot.idle and slot.control.killed is None:
                slot.control.kill("farm stopped by a second signal: task killed, reported for retry")

    # -- signals --------------------------------------------------------------------------------

    def _install_signals(self) -> Callable[[], None]:
        """First signal: stop; second: abort. Only the main thread may install handlers."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        names = ["SIGINT", "SIGTERM", "SIGBREAK" if sys.platform == "win32" else "SIGHUP"]
        previous = {}
        for name in names:
            number = getattr(signal, name, None)
            if number is not None:
                previous[number] = signal.signal(number, self._on_signal)

        def restore() -> None:
            for number, handler in previous.items():
                signal.signal(number, handler)

        return restore

    def _on_signal(self, number: int, _: FrameType | None) -> None:
        self._signals += 1
        if self._signals == 1:
            self.stop()
        else:
            self.abort()
