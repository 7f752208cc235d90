"""A result that would go alone while other slots run waits a moment for theirs (``node.GATHER_S``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.farm.builders import make_task
from tests.waiting import wait_until
from xtreaming.farm import node as node_module
from xtreaming.farm.config import FarmConfig
from xtreaming.farm.node import FarmNode
from xtreaming.farm.reporting import Report

#: Long enough that a test which returns before it proves the wait ended for a reason, not by its bound.
LONG_S = 30.0


@pytest.fixture
def farm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FarmNode]:
    monkeypatch.setattr(node_module, "GATHER_S", LONG_S)
    monkeypatch.setattr(node_module, "QUICK_TASK_S", LONG_S)  # every task here is quick, however slow the machine
    farm = FarmNode(FarmConfig("http://127.0.0.1:9", "farm-x", slots=3, work_dir=tmp_path / "farm-x"))
    farm.outbox.put(Report("task-0", {"default": "ok"}))  # a result waiting to go, of a quick task
    farm._quick = True
    yield farm
    farm.lifeline.close()


def gathering(farm: FarmNode, answers: list[bool] | None = None) -> threading.Thread:
    """``_gather`` on a thread of its own (its answer appended to ``answers``)."""
    thread = threading.Thread(
        target=lambda: (answers if answers is not None else []).append(farm._gather()), daemon=True
    )
    thread.start()
    return thread


def goes_at_once(farm: FarmNode) -> bool:
    """Whether ``_gather`` returns without waiting out its bound (``LONG_S``)."""
    thread = gathering(farm)
    thread.join(5)
    return not thread.is_alive()


def run(farm: FarmNode, index: int) -> None:
    """Mark slot ``index`` busy, as a task started on it now would (its thread is not needed here)."""
    farm.slots[index].task = make_task(task_id=f"task-{index}")
    farm.slots[index].started = time.monotonic()


def end(farm: FarmNode, index: int) -> None:
    """A task ends as ``FarmNode._finished`` has it: its result waits to go, then its slot frees."""
    farm.outbox.put(Report(f"task-{index}", {"default": "ok"}))
    farm._free(farm.slots[index])


def test_a_lone_result_goes_at_once(farm: FarmNode) -> None:
    assert goes_at_once(farm)


def test_a_result_waits_for_the_slots_still_running_and_goes_as_the_last_ends(farm: FarmNode) -> None:
    run(farm, 1)
    run(farm, 2)
    thread = gathering(farm)

    end(farm, 1)
    thread.join(0.3)
    still_waiting_for_slot_2 = thread.is_alive()
    end(farm, 2)
    thread.join(5)

    assert still_waiting_for_slot_2
    assert not thread.is_alive()
    assert len(farm.outbox) == 3  # one request carries all three


def test_one_thread_gathers_at_a_time_and_carries_the_others_results(farm: FarmNode) -> None:
    run(farm, 1)
    run(farm, 2)
    first: list[bool] = []
    gatherer = gathering(farm, first)
    wait_until(lambda: farm._gathering, 5, "the first thread to gather")

    end(farm, 1)  # slot 1's thread: another gathers, so it leaves its result to that one's request
    second: list[bool] = []
    gathering(farm, second).join(5)
    end(farm, 2)
    gatherer.join(5)

    assert (first, second) == ([True], [False])
    assert not farm._gathering


def test_a_result_does_not_wait_while_a_request_is_out_to_carry_it(farm: FarmNode) -> None:
    run(farm, 1)
    farm._exchanges = 1  # a lease request sent as a task ended, not answered yet

    assert goes_at_once(farm)


def test_the_result_of_a_task_that_was_not_quick_does_not_wait(farm: FarmNode) -> None:
    run(farm, 1)
    run(farm, 2)
    farm.slots[1].started -= LONG_S  # it ran a while: the others seldom end with it
    end(farm, 1)

    assert goes_at_once(farm)
    assert not farm.slots[2].idle


def test_a_stopping_farm_does_not_wait(farm: FarmNode) -> None:
    run(farm, 1)
    farm.stopping.set()

    assert goes_at_once(farm)


def test_the_wait_is_bounded(farm: FarmNode, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(node_module, "GATHER_S", 0.05)
    run(farm, 1)  # runs for good

    assert goes_at_once(farm)
    assert not farm.slots[1].idle
