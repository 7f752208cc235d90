"""The command runner with real worker processes (and, for time itself, an injected clock and launcher)."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import psutil
import pytest

from tests.farm.builders import IDS, make_task, worker
from xtreaming.farm.control import TaskControl
from xtreaming.farm.protocol import Outcome
from xtreaming.farm.runner import CommandRunner, TaskDirs
from xtreaming.wire.verdict import Verdict


@pytest.fixture
def dirs(tmp_path: Path) -> TaskDirs:
    return TaskDirs(tmp_path / "tasks", keep_failed=10)


@pytest.fixture
def runner(dirs: TaskDirs, tmp_path: Path) -> CommandRunner:
    pids = tmp_path / "pids"
    pids.mkdir()
    environ = {**os.environ, "TEST_PIDS_DIR": str(pids), "XTREAMING_TOKEN": "farm-secret"}
    return CommandRunner(dirs, farm="farm-test", environ=environ)


def test_exit_code_0_makes_every_message_ok_and_the_directory_goes(runner: CommandRunner, dirs: TaskDirs) -> None:
    control = TaskControl()

    outcome = runner.run(make_task(command=worker("ok")), control)

    assert outcome == Outcome(Verdict.OK, None, {})
    assert (control.done, control.total) == (3, 3)
    assert list(dirs.root.iterdir()) == []


def test_exit_code_3_retries_with_the_stderr_tail_and_keeps_the_directory(
    runner: CommandRunner, dirs: TaskDirs
) -> None:
    outcome = runner.run(make_task(command=worker("exit3")), TaskControl())

    assert outcome == Outcome(
        Verdict.RETRY,
        "worker exited with code 3; stderr tail: importer: base MULTCOB03 refused the connection (ORA-12541)",
    )
    kept = dirs.root / "task-1"
    assert sorted(p.name for p in kept.iterdir()) == ["input.jsonl", "stderr.log", "stdout.log"]
    assert [json.loads(line)["id"] for line in (kept / "input.jsonl").read_text().splitlines()] == IDS


def test_output_verdicts_name_messages_and_the_exit_code_decides_the_rest(runner: CommandRunner) -> None:
    outcome = runner.run(make_task(command=worker("verdicts")), TaskControl())

    assert outcome == Outcome(
        Verdict.OK, None, {IDS[0]: (Verdict.ERROR, "CPF inválido"), IDS[1]: (Verdict.RETRY, None)}
    )


def test_garbage_in_output_jsonl_is_an_error_for_every_message_saying_why(runner: CommandRunner) -> None:
    outcome = runner.run(make_task(command=worker("garbage")), TaskControl())

    assert outcome.default is Verdict.ERROR
    assert outcome.verdicts == {}
    assert outcome.detail is not None
    assert outcome.detail.startswith(
        "output.jsonl line 1: not JSON (Expecting value: line 1 column 1 (char 0)): 'this is not json' "
        "(worker exited with code 0)"
    )


def test_a_hanging_worker_and_its_child_are_killed_at_the_timeout(runner: CommandRunner, tmp_path: Path) -> None:
    started = time.monotonic()

    outcome = runner.run(make_task(command=worker("hang"), timeout_s=1), TaskControl())

    assert time.monotonic() - started < 5
    assert outcome.default is Verdict.RETRY
    assert outcome.detail == "timed out after 1 s: worker process tree killed"
    pids = [int(p) for p in (tmp_path / "pids" / "task-1.pid").read_text().split()]
    assert len(pids) == 2
    assert not [pid for pid in pids if _alive(pid)]


def test_the_worker_sees_its_task_in_variables_but_not_the_farm_token(runner: CommandRunner, tmp_path: Path) -> None:
    seen = tmp_path / "env.json"

    runner.run(make_task(command=worker("env", str(seen))), TaskControl())

    variables = json.loads(seen.read_text())
    task_dir = runner.dirs.root / "task-1"
    assert "XTREAMING_TOKEN" not in variables
    assert (
        variables
        | {
            "XTREAMING_TASK_ID": "task-1",
            "XTREAMING_TOPIC": "MULTCOB03.1189.IMPORTACAO.ATUALIZA_BUREAU",
            "XTREAMING_BASE": "MULTCOB03",
            "XTREAMING_CONVENIO": "1189",
            "XTREAMING_KIND": "IMPORTACAO",
            "XTREAMING_PROCESS": "ATUALIZA_BUREAU",
            "XTREAMING_ATTEMPT": "2",
            "XTREAMING_MESSAGES": "3",
            "XTREAMING_INPUT": str(task_dir / "input.jsonl"),
            "XTREAMING_OUTPUT": str(task_dir / "output.jsonl"),
            "XTREAMING_TASK_DIR": str(task_dir),
            "XTREAMING_TIMEOUT_S": "30",
            "XTREAMING_FARM": "farm-test",
            "XTREAMING_SLOT": "0",
        }
        == variables
    )


def test_a_program_that_cannot_start_is_retried_saying_so(runner: CommandRunner) -> None:
    outcome = runner.run(make_task(command=("no-such-worker-xyz", "{input}")), TaskControl())

    assert outcome.default is Verdict.RETRY
    assert outcome.detail is not None
    assert outcome.detail.startswith("cannot start 'no-such-worker-xyz': [Errno 2] No such file or directory")


def test_a_queue_without_command_is_retried_saying_what_to_set(runner: CommandRunner) -> None:
    outcome = runner.run(make_task(command=()), TaskControl())

    assert outcome == Outcome(
        Verdict.RETRY,
        "queue MULTCOB03.1189.IMPORTACAO.ATUALIZA_BUREAU: the queue has no worker command "
        "(set 'command' or 'handler' in its settings)",
    )


def test_kept_directories_are_trimmed_to_the_newest(tmp_path: Path) -> None:
    dirs = TaskDirs(tmp_path / "tasks", keep_failed=2)
    for number in range(4):
        path = dirs.create(f"t{number}")
        os.utime(path, (1_000_000 + number, 1_000_000 + number))
        dirs.finish(path, keep=True)
    running = dirs.create("running")
    os.utime(running, (1, 1))
    dirs.prune()

    assert sorted(p.name for p in dirs.root.iterdir()) == ["running", "t2", "t3"]


class FakeProcess:
    """A worker that runs until it is killed."""

    pid = 4242

    def __init__(self) -> None:
        self.killed = threading.Event()

    def wait(self) -> int:
        self.killed.wait(10)
        return -9

    def kill_tree(self) -> None:
        self.killed.set()

    def rss_bytes(self) -> int | None:
        return 1 << 20


class FakeLauncher:
    def __init__(self) -> None:
        self.process = FakeProcess()
        self.argv: list[str] = []

    def __call__(
        self, argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], stdout: Path, stderr: Path
    ) -> FakeProcess:
        self.argv = list(argv)
        return self.process


def test_the_timeout_follows_the_injected_clock(dirs: TaskDirs) -> None:
    moments = iter([0.0])  # the task starts at 0; the watchdog looks at 1000
    launcher = FakeLauncher()
    runner = CommandRunner(dirs, launcher=launcher, clock=lambda: next(moments, 1_000.0), python="py")

    outcome = runner.run(make_task(command=("{python}", "w.py", "{base}"), timeout_s=600), TaskControl())

    assert outcome == Outcome(Verdict.RETRY, "timed out after 600 s: worker process tree killed")
    assert launcher.argv[1:] == ["w.py", "MULTCOB03"]


def test_a_task_killed_before_its_process_started_is_killed_as_it_starts(dirs: TaskDirs) -> None:
    control = TaskControl()
    control.kill("farm stopped")
    runner = CommandRunner(dirs, launcher=FakeLauncher())

    outcome = runner.run(make_task(command=("w.exe",)), control)

    assert outcome == Outcome(Verdict.RETRY, "farm stopped")


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
