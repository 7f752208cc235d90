"""Handler tasks waited on together (``handler_hub``): real handler processes, one thread reading all their pipes;
outcomes to the right task, progress read with the answer it came with, time limits kept per task (a shorter one
submitted while the hub waits on a longer one), a kill from another thread, a process that dies, a task that
cannot go."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from tests.farm.builders import IDS, make_task
from xtreaming.farm import handler_hub
from xtreaming.farm.control import TaskControl
from xtreaming.farm.handler_hub import WAITS_TOGETHER
from xtreaming.farm.handlers import HandlerPool
from xtreaming.farm.protocol import Outcome, Task
from xtreaming.wire.verdict import Verdict

pytestmark = pytest.mark.skipif(not WAITS_TOGETHER, reason="handler pipes are waited on by each slot here")

H = "tests.farm.handlers"
SLOTS = 4


class Outcomes:
    """Where ``done`` puts each task's outcome, with the thread it came on."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[tuple[str, Outcome, str]] = queue.SimpleQueue()

    def done(self, task: Task) -> Callable[[Outcome], None]:
        return lambda outcome: self._queue.put((task.task_id, outcome, threading.current_thread().name))

    def next(self, timeout_s: float = 30) -> tuple[str, Outcome, str]:
        return self._queue.get(timeout=timeout_s)


@pytest.fixture
def pool() -> Iterator[HandlerPool]:
    pool = HandlerPool(SLOTS)
    yield pool
    pool.close()


def submit(pool: HandlerPool, slot: int, task: Task, outcomes: Outcomes) -> TaskControl:
    control = TaskControl()
    pool.submit(slot, task, control, outcomes.done(task))
    return control


def test_each_outcome_reaches_its_task_from_the_hub_thread_with_the_progress_that_came_before_it(
    pool: HandlerPool,
) -> None:
    outcomes = Outcomes()
    controls = {}
    for round_ in range(3):  # the same processes, task after task
        for slot in range(SLOTS):
            task = make_task(handler=f"{H}:echo", task_id=f"t{round_}-{slot}")
            controls[task.task_id] = submit(pool, slot, task, outcomes)
        got = {task_id: (outcome, thread) for task_id, outcome, thread in (outcomes.next() for _ in range(SLOTS))}
        assert sorted(got) == sorted(f"t{round_}-{slot}" for slot in range(SLOTS))
        for task_id, (outcome, thread) in got.items():
            assert thread == "handler-hub"
            assert outcome.default is Verdict.OK
            assert set(outcome.verdicts) == set(IDS)
            assert (controls[task_id].done, controls[task_id].total) == (2, 3)  # sent just before the answer
            assert controls[task_id].pid is not None


def test_a_hanging_task_is_killed_at_its_time_limit_while_the_others_run_and_end(
    pool: HandlerPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(handler_hub, "CHECK_S", 5.0)  # the hub's own checks far apart, however slow the machine
    outcomes = Outcomes()
    submit(pool, 0, make_task(handler=f"{H}:hangs", task_id="long", timeout_s=30), outcomes)
    submit(pool, 1, make_task(handler=f"{H}:echo", task_id="quick"), outcomes)  # starts the process of slot 1
    assert outcomes.next()[0] == "quick"  # ended while the long one runs on
    time.sleep(0.1)  # the hub waits now, its next check (of the long one) seconds away
    started = time.monotonic()
    submit(pool, 1, make_task(handler=f"{H}:hangs", task_id="short", timeout_s=0.1), outcomes)

    short = outcomes.next()
    assert short[:2] == ("short", Outcome(Verdict.RETRY, "timed out after 0.1 s: handler process tree killed"))
    assert time.monotonic() - started < 0.6  # at its own limit, not at the hub's next check of the long one
    # the slot's process was killed and is started again for its next task
    submit(pool, 1, make_task(handler=f"{H}:second_retried", task_id="after"), outcomes)
    assert outcomes.next()[:2] == ("after", Outcome(Verdict.OK, None, {IDS[1]: (Verdict.RETRY, None)}))


def test_a_task_killed_from_another_thread_ends_with_the_reason_given(pool: HandlerPool) -> None:
    outcomes = Outcomes()
    control = submit(pool, 0, make_task(handler=f"{H}:hangs", task_id="stopped", timeout_s=60), outcomes)
    time.sleep(0.2)
    control.kill("the coordinator says the task is no longer this farm's")

    assert outcomes.next(10)[:2] == (
        "stopped",
        Outcome(Verdict.RETRY, "the coordinator says the task is no longer this farm's"),
    )


def test_a_process_that_dies_ends_its_task_and_is_replaced(pool: HandlerPool) -> None:
    outcomes = Outcomes()
    submit(pool, 3, make_task(handler=f"{H}:dies", task_id="died"), outcomes)
    assert outcomes.next()[:2] == ("died", Outcome(Verdict.RETRY, "handler process died (exit code 7)"))
    submit(pool, 3, make_task(handler=f"{H}:echo", task_id="next"), outcomes)
    task_id, outcome, _ = outcomes.next()
    assert (task_id, outcome.default) == ("next", Verdict.OK)


def test_a_task_that_cannot_go_ends_at_once_on_the_submitting_thread(pool: HandlerPool) -> None:
    outcomes = Outcomes()
    submit(pool, 0, make_task(handler=None, task_id="none"), outcomes)
    task_id, outcome, thread = outcomes.next(0)
    assert (task_id, thread) == ("none", threading.current_thread().name)
    assert outcome == Outcome(Verdict.RETRY, f"queue {make_task().topic} has no handler")


def test_a_closed_hub_takes_no_more_tasks(pool: HandlerPool) -> None:
    outcomes = Outcomes()
    submit(pool, 0, make_task(handler=f"{H}:echo", task_id="before"), outcomes)
    assert outcomes.next()[0] == "before"
    pool.close()
    with pytest.raises(RuntimeError, match="closed"):
        submit(pool, 0, make_task(handler=f"{H}:echo", task_id="after"), outcomes)


def test_a_process_stopped_in_the_middle_of_a_message_holds_up_no_other_task(pool: HandlerPool) -> None:
    outcomes = Outcomes()
    for slot in (0, 1):  # both processes started first: a start under load takes a good part of a second
        submit(pool, slot, make_task(handler=f"{H}:echo", task_id=f"warm-{slot}"), outcomes)
        assert outcomes.next()[1].default is Verdict.OK
    submit(pool, 0, make_task(handler=f"{H}:half_a_message_then_hangs", task_id="stalled", timeout_s=3), outcomes)
    time.sleep(0.3)  # the hub has read the start of its message
    submit(pool, 1, make_task(handler=f"{H}:echo", task_id="other"), outcomes)

    other_id, other, _ = outcomes.next(10)  # the hub read the other task's answer meanwhile
    assert (other_id, other.default) == ("other", Verdict.OK)
    assert outcomes.next(10)[:2] == (  # and kept the stalled task's time limit
        "stalled",
        Outcome(Verdict.RETRY, "timed out after 3 s: handler process tree killed"),
    )


def test_a_call_asked_of_the_hub_is_made_on_its_thread_once_due_in_place_of_one_asked_before(
    pool: HandlerPool,
) -> None:
    outcomes = Outcomes()
    submit(pool, 0, make_task(handler=f"{H}:echo", task_id="starts-the-hub"), outcomes)
    assert outcomes.next()[2] == "handler-hub"
    assert not pool.on_hub_thread
    calls: queue.SimpleQueue[tuple[str, str, float]] = queue.SimpleQueue()

    def call(name: str) -> Callable[[], None]:
        return lambda: calls.put((name, threading.current_thread().name, time.monotonic()))

    asked = time.monotonic()
    pool.call_on_hub(0.3, call("replaced"))
    pool.call_on_hub(0.2, call("made"))  # asked from this thread while the hub waits with nothing to do

    name, thread, at = calls.get(timeout=10)
    assert (name, thread) == ("made", "handler-hub")
    assert at - asked >= 0.2
    with pytest.raises(queue.Empty):
        calls.get(timeout=0.5)  # the call it replaced is never made


def test_the_hub_knows_its_own_thread(pool: HandlerPool) -> None:
    seen: queue.SimpleQueue[bool] = queue.SimpleQueue()
    task = make_task(handler=f"{H}:echo", task_id="t")
    pool.submit(0, task, TaskControl(), lambda _: seen.put(pool.on_hub_thread))
    assert seen.get(timeout=30)
    assert not pool.on_hub_thread
