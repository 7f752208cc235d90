"""The farm's watchdog, with real processes: how soon it kills a killed farm's workers, its own
replacement when it is killed, and nothing left registered, or left running, by workers that end."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.farm.builders import make_task
from tests.farm.site import is_alive
from tests.waiting import wait_until
from xtreaming.farm.control import TaskControl
from xtreaming.farm.handlers import HandlerWorker
from xtreaming.farm.lifeline import WatchdogLifeline
from xtreaming.farm.processes import kill_tree
from xtreaming.farm.runner import CommandRunner, TaskDirs
from xtreaming.farm.watchdog import PARENT_CHECK_S

STAND_IN = str(Path(__file__).with_name("tethered_farm.py"))
#: A worker with a child in its group, which never ends.
SHELL_FAMILY = ("sh", "-c", "sleep 600 & sleep 600")
#: The most the watchdog may take. The coordinator leases a silent farm's tasks elsewhere after three
#: heartbeat intervals: 15 s by default, 0.9 s at the shortest interval the tests use.
KILL_WITHIN_S = 0.5


class StandIn:
    """A stand-in farm process (``tethered_farm.py``) running one worker under a real watchdog."""

    def __init__(self, folder: Path, *argv: str, **env: str) -> None:
        self.report, self.log = folder / "pids.json", folder / "farm.log"
        command = [sys.executable, STAND_IN, str(self.report), *argv]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(command, stderr=log, env={**os.environ, **env})
        self.seen: set[psutil.Process] = set()
        self.pids: dict[str, int] = wait_until(self._read, 20, "the stand-in farm to start its worker")
        self.worker = psutil.Process(self.pids["worker"])

    def _read(self) -> dict[str, Any] | None:
        assert self.process.poll() is None, "the stand-in farm exited"
        return json.loads(self.report.read_text()) if self.report.exists() else None

    def output(self) -> str:
        return self.log.read_text()

    def family(self) -> list[psutil.Process]:
        """The farm's processes but itself: the watchdog, the worker and the worker's children."""
        family = psutil.Process(self.process.pid).children(recursive=True)
        self.seen.update(family)
        return family

    def close(self) -> None:
        """Kill whatever of the farm is left, should the test have failed and left it running."""
        kill_tree(self.worker)
        for process in self.seen:
            with contextlib.suppress(psutil.Error):  # gone: as it should be (psutil never kills a reused pid)
                process.kill()
        self.process.kill()
        self.process.wait()


@pytest.fixture
def stand_ins(tmp_path: Path) -> Iterator[list[StandIn]]:
    started: list[StandIn] = []
    yield started
    for stand_in in started:
        stand_in.close()


def test_a_killed_farms_worker_and_its_children_die_well_before_the_farm_counts_as_lost(
    tmp_path: Path, stand_ins: list[StandIn]
) -> None:
    farm = StandIn(tmp_path, *SHELL_FAMILY)
    stand_ins.append(farm)
    wait_until(lambda: len(farm.family()) == 4, 10, "the watchdog, the shell and its two sleeps")
    family = [p.pid for p in farm.family()]

    killed_at = time.monotonic()
    farm.process.send_signal(signal.SIGKILL)
    wait_until(lambda: not [p for p in family if is_alive(p)], 5, "the farm's processes to die", every_s=0.002)
    elapsed_s = time.monotonic() - killed_at

    sys.stdout.write(f"\nworker, children and watchdog gone {elapsed_s * 1000:.1f} ms after the farm's SIGKILL\n")
    assert elapsed_s < KILL_WITHIN_S


def test_a_watchdog_killed_while_the_farm_runs_is_replaced_and_still_kills_its_workers(
    tmp_path: Path, stand_ins: list[StandIn]
) -> None:
    farm = StandIn(tmp_path, *SHELL_FAMILY)
    stand_ins.append(farm)
    first = farm.pids["watchdog"]

    psutil.Process(first).kill()
    wait_until(lambda: "watches 1 worker process(es)" in farm.output(), 10, "another watchdog, told of the worker")
    family = [p.pid for p in farm.family()]
    assert len(family) == 4  # the new watchdog, the shell and its two sleeps
    assert first not in family
    farm.process.send_signal(signal.SIGKILL)

    wait_until(lambda: not [p for p in family if is_alive(p)], 2, "the farm's processes to die")
    assert "ended with 1 worker process(es) registered, 1 still running" in farm.output()


def test_a_watchdog_whose_pipe_a_worker_holds_open_still_acts_once_the_farm_is_gone(
    tmp_path: Path, stand_ins: list[StandIn]
) -> None:
    farm = StandIn(tmp_path, *SHELL_FAMILY, TEST_LEAK_PIPE="1")
    stand_ins.append(farm)
    wait_until(lambda: len(farm.family()) == 4, 10, "the watchdog, the shell and its two sleeps")
    family = [p.pid for p in farm.family()]

    farm.process.send_signal(signal.SIGKILL)

    timeout_s = PARENT_CHECK_S + 1  # no end of file: it finds out by looking at its parent
    wait_until(lambda: not [p for p in family if is_alive(p)], timeout_s, "the farm's processes to die")


@pytest.fixture
def lifeline() -> Iterator[WatchdogLifeline]:
    lifeline = WatchdogLifeline()
    lifeline.start()
    yield lifeline
    lifeline.close()


def test_workers_that_end_on_their_own_leave_nothing_registered(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    lifeline = WatchdogLifeline()
    lifeline.start()  # under capfd: its stderr, where it says what it held at the end, is captured
    runner = CommandRunner(TaskDirs(tmp_path / "tasks"), lifeline=lifeline)
    for number in range(200):
        outcome = runner.run(make_task(command=("sh", "-c", "exit 0"), task_id=f"t{number}"), TaskControl())
        assert outcome.is_success
    handlers = HandlerWorker(0, lifeline=lifeline)
    for number in range(3):  # each one kills its process, which is started again for the next
        handlers.run(make_task(handler="tests.farm.handlers:dies", task_id=f"h{number}"), TaskControl())
    handlers.close()

    lifeline.close()

    assert "ended with 0 worker process(es) registered, 0 still running" in capfd.readouterr().err


def test_a_child_left_running_by_a_worker_that_ended_dies_with_the_farm(
    lifeline: WatchdogLifeline, tmp_path: Path
) -> None:
    runner = CommandRunner(TaskDirs(tmp_path / "tasks"), lifeline=lifeline)
    left = tmp_path / "left.pid"
    outcome = runner.run(make_task(command=("sh", "-c", f"sleep 600 & echo $! > {left}")), TaskControl())
    assert outcome.is_success
    child = psutil.Process(int(left.read_text()))
    assert is_alive(child.pid)

    lifeline.close()

    try:
        wait_until(lambda: not is_alive(child.pid), 2, "the child left running to die")
    finally:
        with contextlib.suppress(psutil.Error):
            child.kill()
