"""Workers die with their farm: a farm killed with SIGKILL takes everything it started with it (command
workers, their children, a daemon one of them double-forked, handler processes and their children, its
watchdog), before the coordinator leases their tasks elsewhere; a graceful stop is left as it was."""

from __future__ import annotations

import contextlib
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from tests.farm.builders import worker
from tests.farm.site import Farm, Site, is_alive
from tests.waiting import wait_until

COMMANDS = "MULTCOB03.1189.IMPORTACAO.ATUALIZA_BUREAU"
HANDLERS = "MULTCOB02.1186.COBSINC.LOCALIZACAO"
FAMILY = str(Path(__file__).with_name("family.py"))
#: A shell with a child in its process group (``sleep 600 &``) and a grandchild that left the group for a
#: session of its own and was orphaned at once (a double-forked daemon), whose pid it writes down.
SHELL_FAMILY = (
    "sh",
    "-c",
    '(setsid sleep 600 & echo $! > "$TEST_PIDS_DIR/daemon.tmp"); mv "$TEST_PIDS_DIR/daemon.tmp" '
    '"$TEST_PIDS_DIR/daemon.pid"; sleep 600 & sleep 600',
)


def pids_of(site: Site, name: str) -> list[int] | None:
    path = site.pids / f"{name}.pid"
    return [int(p) for p in path.read_text().split()] if path.exists() else None


def watchdog_of(farm: Farm) -> psutil.Process | None:
    for child in psutil.Process(farm.process.pid).children():
        with contextlib.suppress(psutil.Error):  # one that ended meanwhile
            if "xtreaming.farm.watchdog" in child.cmdline():
                return child
    return None


def command_names(processes: list[psutil.Process]) -> list[str]:
    return sorted(p.name() for p in processes)


@pytest.mark.slow
def test_a_farm_killed_with_sigkill_leaves_no_process_it_started_after_2_s(site: Site) -> None:
    site.profile(r".*\.COBSINC\..*", handler="tests.e2e.family:busy_with_a_child", batch_size=1, timeout_s=600)
    site.profile(".*", command=SHELL_FAMILY, batch_size=5, timeout_s=600)
    site.publish(HANDLERS, 1)
    site.publish(COMMANDS, 5)
    farm = site.farm("farm-a", slots=2)
    [daemon] = wait_until(lambda: pids_of(site, "daemon"), 20, "the command worker's daemon to start")
    handler, handler_child = wait_until(lambda: pids_of(site, "handler"), 20, "the handler to be busy in its task")
    tree = psutil.Process(farm.process.pid).children(recursive=True)
    shell = next(p for p in tree if p.name() == "sh")
    wait_until(lambda: len(shell.children()) == 2, 10, "the shell's two sleeps")
    processes = [*psutil.Process(farm.process.pid).children(recursive=True), psutil.Process(daemon)]
    pids = {p.pid for p in processes}
    assert {handler, handler_child, shell.pid} <= pids
    assert watchdog_of(farm) in processes
    assert psutil.Process(daemon).ppid() != shell.pid  # orphaned already: out of the farm's tree and group
    assert command_names(shell.children()) == ["sleep", "sleep"]

    killed_at = time.monotonic()
    farm.signal(signal.SIGKILL)

    try:
        wait_until(lambda: not [p for p in pids if is_alive(p)], 2, "the farm's processes to be gone", every_s=0.005)
    finally:
        for process in processes:  # what the test failed on, not left running (psutil never kills a reused pid)
            with contextlib.suppress(psutil.Error):
                process.kill()
    elapsed_s = time.monotonic() - killed_at
    sys.stdout.write(f"\nthe farm's {len(pids)} processes were gone {elapsed_s:.3f} s after its SIGKILL\n")
    registered = "3 worker process(es) registered, 3 still running"  # the two handler processes and the shell
    assert f"farm {farm.process.pid} ended with {registered}" in farm.output()


@pytest.mark.slow
def test_a_lost_farms_task_runs_again_elsewhere_only_once_its_worker_is_dead(make_site: Callable[..., Site]) -> None:
    site = make_site(heartbeat_interval_s=0.3)  # lost after 0.9 s of silence: the closest call
    site.profile(".*", command=(sys.executable, FAMILY, "overlap", "farm-a"), batch_size=5, backoff_s=5)
    site.publish(COMMANDS, 5, partitions=1)
    farm_a = site.farm("farm-a", slots=1)
    [[stuck]] = wait_until(site.pid_files, 20, "farm-a's worker to start")
    site.farm("farm-b", slots=1)

    farm_a.signal(signal.SIGKILL)

    acks = site.wait_acked(COMMANDS, 5)
    assert {(a["farm"], a["attempts"], a["status"]) for a in acks} == {("farm-b", 2, "ok")}
    assert {a["detail"] for a in acks} == {"running beside me: []"}, f"farm-a's worker {stuck} still ran"


@pytest.mark.slow
def test_a_first_sigterm_lets_the_task_finish_while_the_watchdog_stands_by(site: Site, tmp_path: Path) -> None:
    site.profile(".*", command=worker("sleep", "1"), batch_size=5)
    site.publish(COMMANDS, 5, partitions=1)
    farm = site.farm("farm-a", slots=1)
    tasks = tmp_path / "farm-a" / "tasks"
    wait_until(lambda: tasks.exists() and any(tasks.iterdir()), 20, "the task to start")
    watchdog = wait_until(lambda: watchdog_of(farm), 10, "the farm's watchdog")

    farm.signal(signal.SIGTERM)
    watchdog.send_signal(signal.SIGTERM)  # as a service manager stopping every process of the farm does

    assert farm.wait(20) == 0
    assert [(a["status"], a["attempts"]) for a in site.acks(COMMANDS)] == [("ok", 1)] * 5
    assert "stopping: no new tasks; 1 running will finish" in farm.output()
    assert "ended with 0 worker process(es) registered, 0 still running" in farm.output()
    assert "starting another" not in farm.output()  # the watchdog was there throughout, ignoring the SIGTERM
    wait_until(lambda: not is_alive(watchdog.pid), 2, "the watchdog to exit after its farm")
