"""A farm process SIGKILLed with its workers and started again at once under the same name: the new
process registers as a new instance, the tasks of the one before are released there and then, their
messages run again with no attempt counted, and the farm never shows more busy slots than it has."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from tests.e2e.journal import Run, overlapping, runs_per_key
from tests.e2e.lease_site import LeaseSite, kill_worker
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

TOPIC = "MULTCOB03.1189.IMPORTACAO.ATUALIZA_BUREAU"
#: Long enough that the farm's restart (a Python process starting, on a busy machine) is over well before
#: the coordinator would count it lost (three intervals), which would retry its tasks as attempts.
HEARTBEAT_S = 2.0


def test_a_farm_restarted_at_once_gets_its_tasks_back_at_once_with_no_attempt_counted(tmp_path: Path) -> None:
    site = LeaseSite(tmp_path, HEARTBEAT_S)
    try:
        site.profile(first_s=600, then_s=0, batch_size=5)  # the first run of a key would outlast the test
        site.publish(TOPIC, 10)
        farm = site.farm("farm-a", 2)
        first = wait_until(lambda: site.runs_once(10), 20, "the farm's two tasks to start")
        workers = {run.pid for run in first}

        farm.kill()  # the crash: the farm and its worker trees die at once
        for pid in workers:
            kill_worker(pid)
        gone_ns = site.wait_gone(workers, 10, "the killed workers to be gone")
        farm.start()  # the same name, within a second
        wait_until(lambda: farm.output().count(" registered at ") == 2, 20, "the new farm process to register")
        registered_ns = time.monotonic_ns()

        def rerun_within_its_slots() -> list[Run] | None:
            row = site.farm_row("farm-a")
            assert row["busy"] <= row["slots"] == 2, f"farm-a shows {row['busy']} busy slots of {row['slots']}"
            return site.runs_once(20)

        runs = wait_until(rerun_within_its_slots, 10, "the previous process's messages to run again")
        acks = site.wait_acked(TOPIC, 10, timeout_s=20)
    finally:
        site.close()

    assert "farm farm-a lost" not in site.coordinator.output(), "the restart took longer than the lost threshold"
    reruns = [run for run in runs if run.pid not in workers]
    assert max(run.start_ns for run in reruns) - registered_ns <= HEARTBEAT_S * 1e9, "released later than at once"
    assert set(runs_per_key(runs).values()) == {2}
    assert overlapping(runs, dict.fromkeys(workers, gone_ns)) == []
    assert len(acks) == 10
    assert Counter((a["status"], a["attempts"], a["farm"]) for a in acks) == {("ok", 1, "farm-a"): 10}
    assert "released (its farm restarted)" in site.coordinator.output()


def test_a_second_process_under_a_farms_name_takes_its_tasks_and_the_first_kills_them_and_stops(
    tmp_path: Path,
) -> None:
    site = LeaseSite(tmp_path, HEARTBEAT_S)
    try:
        site.profile(first_s=600, then_s=0, batch_size=5)
        site.publish(TOPIC, 10)
        first = site.farm("farm-a", 2)
        workers = {run.pid for run in wait_until(lambda: site.runs_once(10), 20, "the first process's tasks")}

        second = site.farm("farm-a", 2)  # e.g. started by hand while the service still ran
        wait_until(lambda: " registered at " in second.output(), 20, "the second process to register")
        registered = time.monotonic()
        site.wait_gone(workers, 3 * HEARTBEAT_S, "the first process to kill its workers")
        killed_after_s = time.monotonic() - registered
        assert first.process is not None
        code = first.process.wait(20)
        acks = site.wait_acked(TOPIC, 10, timeout_s=20)
    finally:
        site.close()

    assert killed_after_s <= 2 * HEARTBEAT_S  # at its next heartbeat
    assert code == 1
    assert "another process registered as farm farm-a since this one did" in first.output()
    assert Counter((a["status"], a["attempts"]) for a in acks) == {("ok", 1): 10}
