"""Running a task as an external command: task directory, ``input.jsonl``, the rendered command
with ``XTREAMING_*`` variables, the timeout (the whole process tree killed), and the verdicts.

Verdicts come from ``output.jsonl`` where the worker wrote one; messages it does not mention
take the exit code's: 0 = ok, anything else = retry, with the stderr tail as the detail (it
reaches the DLQ record). Garbage in ``output.jsonl`` makes every message an ``error`` saying
what is wrong. A task's directory is removed when every message is ok, and kept otherwise
(the newest ``keep_failed`` of them) so that someone can look at what the worker saw.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Final

from xtreaming.farm.config import DEFAULT_KEEP_FAILED
from xtreaming.farm.control import TaskControl
from xtreaming.farm.lifeline import UNBOUND, Lifeline, tethered
from xtreaming.farm.processes import Launcher, LineFollower, WorkerProcess, launch, read_tail
from xtreaming.farm.protocol import (
    InvalidCommand,
    InvalidOutput,
    Outcome,
    Task,
    failed,
    parse_output,
    parse_progress,
    render_command,
)
from xtreaming.wire.verdict import Verdict

log = logging.getLogger("xtreaming.farm")

#: Bytes of the worker's stderr (or stdout, when stderr is empty) kept with a failed result.
TAIL_BYTES: Final = 2000
#: An ``output.jsonl`` larger than this is refused rather than read into memory.
MAX_OUTPUT_BYTES: Final = 64 << 20
#: Failed task directories kept for inspection; older ones are removed.
#: Variables of the farm that its workers must not see.
PRIVATE_VARIABLES: Final = frozenset({"XTREAMING_TOKEN", "XTREAMING_TOKEN_FILE", "XTREAMING_TOKENS"})

Clock = Callable[[], float]


class TaskDirs:
    """The farm's task directories under ``root``: one per running task, failed ones kept a while."""

    def __init__(self, root: Path, keep_failed: int = DEFAULT_KEEP_FAILED) -> None:
        self.root = root.absolute()  # workers run inside their task directory: relative paths would break
        self.keep_failed = keep_failed
        self._active: set[str] = set()
        self._lock = threading.Lock()

    def create(self, task_id: str) -> Path:
        path = self.root / task_id
        with self._lock:
            self._active.add(task_id)
        if path.exists():  # the same task again (a retried report of a restarted farm): start clean
            shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return path

    def finish(self, path: Path, *, keep: bool) -> None:
        """Remove a finished task's directory, or keep it and trim the kept ones to ``keep_failed``."""
        with self._lock:
            self._active.discard(path.name)
        if not keep:
            shutil.rmtree(path, ignore_errors=True)
            return
        self.prune()

    def prune(self) -> None:
        """Remove the oldest kept directories beyond ``keep_failed`` (running tasks' are never touched)."""
        with self._lock:
            active = set(self._active)
        try:
            kept = [p for p in self.root.iterdir() if p.is_dir() and p.name not in active]
        except OSError:
            return
        kept.sort(key=_mtime, reverse=True)
        for stale in kept[self.keep_failed :]:
            shutil.rmtree(stale, ignore_errors=True)


class CommandRunner:
    """Runs tasks as external commands (see the module docstring). Thread-safe: one call per slot."""

    def __init__(
        self,
        dirs: TaskDirs,
        *,
        farm: str = "",
        launcher: Launcher = launch,
        clock: Clock = time.monotonic,
        python: str = sys.executable,
        environ: Mapping[str, str] | None = None,
        lifeline: Lifeline = UNBOUND,
    ) -> None:
        self.dirs = dirs
        self.farm = farm
        self._launch = tethered(launcher, lifeline)  # each worker, and what it starts, dies with the farm
        self._clock = clock
        self._python = python
        base = os.environ if environ is None else environ
        self._environ = {k: v for k, v in base.items() if k not in PRIVATE_VARIABLES}

    def run(self, task: Task, control: TaskControl) -> Outcome:
        """Run ``task`` to its outcome; never raises for anything the worker does."""
        directory = self.dirs.create(task.task_id)
        outcome = self._run_in(directory, task, control)
        self.dirs.finish(directory, keep=not outcome.is_success)
        return outcome

    def _run_in(self, directory: Path, task: Task, control: TaskControl) -> Outcome:
        input_path, output_path = directory / "input.jsonl", directory / "output.jsonl"
        with input_path.open("w", encoding="utf-8", newline="\n") as file:
            file.writelines(task.messages.lines())
        try:
            argv = render_command(task.command, task.placeholders(str(input_path), str(output_path), self._python))
            argv[0] = _resolve(argv[0])
        except InvalidCommand as exc:
            return failed(f"queue {task.topic}: {exc}")
        stdout, stderr = directory / "stdout.log", directory / "stderr.log"
        env = self._env(task, directory, input_path, output_path)
        try:
            process = self._launch(argv, cwd=directory, env=env, stdout=stdout, stderr=stderr)
        except OSError as exc:
            return failed(f"cannot start {argv[0]!r}: {exc}")
        code = self._supervise(process, task, control, LineFollower(stdout))
        return self._outcome(task, code, control.killed, output_path, stdout, stderr)

    def _supervise(self, process: WorkerProcess, task: Task, control: TaskControl, follower: LineFollower) -> int:
        """Wait for the process; a watchdog kills its tree at the task's timeout."""
        lock = threading.Lock()

        def refresh() -> None:
            with lock:
                for line in follower.new_lines():
                    progress = parse_progress(line)
                    if progress is not None:
                        control.progress(*progress)

        exited = threading.Event()
        deadline = self._clock() + task.timeout_s
        watchdog = threading.Thread(
            target=self._watch, args=(deadline, exited, control, task.timeout_s), daemon=True, name="watchdog"
        )
        control.attach(process.pid, process.kill_tree, process.rss_bytes, refresh)
        watchdog.start()
        try:
            code = process.wait()
        finally:
            exited.set()
            control.detach()
            refresh()
            follower.close()
        watchdog.join()
        return code

    def _watch(self, deadline: float, exited: threading.Event, control: TaskControl, timeout_s: float) -> None:
        while not exited.wait(max(0.0, deadline - self._clock())):
            if self._clock() >= deadline:
                control.kill(f"timed out after {timeout_s:g} s: worker process tree killed")
                return

    def _outcome(self, task: Task, code: int, killed: str | None, output: Path, stdout: Path, stderr: Path) -> Outcome:
        tail = _tail(stderr, "stderr") or _tail(stdout, "stdout")
        ended = killed or f"worker exited with code {code}"
        try:
            verdicts = _read_output(output, task)
        except InvalidOutput as exc:
            if killed:  # a worker killed while writing leaves a cut line: not its fault
                return failed(_with_tail(f"{killed} ({exc})", tail))
            return failed(_with_tail(f"{exc} ({ended})", tail), Verdict.ERROR)
        if code == 0 and not killed:
            return Outcome(Verdict.OK, None, verdicts)
        return Outcome(Verdict.RETRY, _with_tail(ended, tail), verdicts)

    def _env(self, task: Task, directory: Path, input_path: Path, output_path: Path) -> dict[str, str]:
        return {
            **self._environ,
            "XTREAMING_TASK_ID": task.task_id,
            "XTREAMING_TOPIC": task.topic,
            "XTREAMING_BASE": task.base,
            "XTREAMING_CONVENIO": task.convenio,
            "XTREAMING_KIND": task.kind,
            "XTREAMING_PROCESS": task.process,
            "XTREAMING_ATTEMPT": str(task.attempt),
            "XTREAMING_MESSAGES": str(len(task.messages)),
            "XTREAMING_INPUT": str(input_path),
            "XTREAMING_OUTPUT": str(output_path),
            "XTREAMING_TASK_DIR": str(directory),
            "XTREAMING_TIMEOUT_S": f"{task.timeout_s:g}",
            "XTREAMING_FARM": self.farm,
            "XTREAMING_SLOT": str(task.slot),
        }


def _read_output(path: Path, task: Task) -> dict[str, tuple[Verdict, str | None]]:
    """The verdicts a worker wrote; the task's message ids are gathered only then (most write none)."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return {}
    if size > MAX_OUTPUT_BYTES:
        raise InvalidOutput(f"output.jsonl is {size:,} bytes, more than the {MAX_OUTPUT_BYTES:,} a farm reads")
    return parse_output(path.read_bytes(), task.message_ids())


def _resolve(program: str) -> str:
    """The program to start: relative paths from the farm's directory (the worker runs in its task
    directory), bare names from PATH; left as given when not found (the launch then says so)."""
    if os.path.isabs(program):
        return program
    if os.sep in program or (os.altsep and os.altsep in program):
        return os.path.abspath(program)
    return shutil.which(program) or program


def _tail(path: Path, name: str) -> str:
    text = read_tail(path, TAIL_BYTES).strip()
    return f"{name} tail: {text}" if text else ""


def _with_tail(detail: str, tail: str) -> str:
    return f"{detail}; {tail}" if tail else detail


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
