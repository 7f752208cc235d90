"""Workers die with their farm, whatever ends it, SIGKILL included: the farm's lifeline.

On POSIX the farm starts a watchdog process (``watchdog.py``) and registers with it each worker
process it starts: command workers (a process per task) and handler processes (one per slot); the
watchdog kills them, with their children and grandchildren, as soon as the farm is gone. On Windows
the farm puts itself in a job object that kills every process in it when the farm's handle closes
(``job_object.py``): whatever it starts is in the job from its first instruction.

Either way the workers are dead within milliseconds of the farm, well before the coordinator counts
the farm as lost (three heartbeat intervals of silence) and leases their tasks to another farm.
A farm's graceful stop is not affected: the watchdog ignores stop signals and acts only once the
farm has exited, when whatever still runs is left over.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import secrets
import select
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final, Protocol

from xtreaming.errors import XtreamingError
from xtreaming.farm.processes import Launcher, WorkerProcess

log = logging.getLogger("xtreaming.farm")

#: The variable, in every worker's environment, whose value tags the processes of one farm's run.
TAG_VARIABLE: Final = "XTREAMING_FARM_TREE"
#: What a watchdog writes to its standard output once it is ready to watch.
READY_LINE: Final = b"ready\n"
#: How long a starting watchdog may take to say it is ready (an interpreter start and a few imports).
READY_WAIT_S: Final = 30.0
#: After the farm closes the pipe, how long it waits for its watchdog to finish and exit.
CLOSE_WAIT_S: Final = 10.0


def adopt_line(registration: int, pid: int) -> bytes:
    """The line telling the watchdog of process ``pid``, under ``registration`` (a number never reused)."""
    return b"+%d %d\n" % (registration, pid)


def release_line(registration: int) -> bytes:
    """The line telling the watchdog that the process of ``registration`` has ended."""
    return b"-%d\n" % registration


class WatchdogFailed(XtreamingError, RuntimeError):
    """The farm's watchdog cannot be started: the farm does not run workers that would outlive it."""


class Lifeline(Protocol):
    """What binds a farm's worker processes to the farm (see the module docstring)."""

    def start(self) -> None:
        """Take hold: from now on, adopted processes die with the farm."""
        ...

    def environ(self) -> Mapping[str, str]:
        """Variables every worker is started with (its descendants inherit them)."""
        ...

    def adopt(self, pid: int) -> int:
        """Bind the process ``pid`` (just started by the farm); returns its registration number."""
        ...

    def release(self, registration: int) -> None:
        """The adopted process has ended (and was waited for)."""
        ...

    def close(self) -> None:
        """The farm is stopping: what is still running will die, now or as the farm exits."""
        ...


class Unbound:
    """No lifeline: for runners and handler pools used on their own (in tests, for instance)."""

    def start(self) -> None:
        return None

    def environ(self) -> Mapping[str, str]:
        return {}

    def adopt(self, pid: int) -> int:
        return 0

    def release(self, registration: int) -> None:
        return None

    def close(self) -> None:
        return None


UNBOUND: Final = Unbound()


def farm_lifeline() -> Lifeline:
    """The lifeline of this platform, not started yet."""
    if sys.platform == "win32":
        from xtreaming.farm.job_object import JobLifeline

        return JobLifeline()
    return WatchdogLifeline()


class WatchdogLifeline:
    """POSIX: the farm's watchdog process, told of each worker process over a pipe only the farm
    can write to. Thread-safe; a watchdog that dies is replaced and told of the live workers again."""

    def __init__(self, python: str = sys.executable) -> None:
        self.tag = secrets.token_hex(16)
        self._python = python
        self._lock = threading.Lock()
        self._live: dict[int, int] = {}
        self._numbers = itertools.count(1)
        self._process: subprocess.Popen[bytes] | None = None
        self._pipe: int | None = None
        self._closed = False

    @property
    def pid(self) -> int | None:
        """The watchdog's pid while one runs."""
        process = self._process
        return None if process is None else process.pid

    def start(self) -> None:
        with self._lock:
            if self._process is None and not self._closed:
                self._spawn()

    def environ(self) -> Mapping[str, str]:
        return {TAG_VARIABLE: self.tag}

    def adopt(self, pid: int) -> int:
        with self._lock:
            registration = next(self._numbers)
            self._live[registration] = pid
            self._send(adopt_line(registration, pid))
        return registration

    def release(self, registration: int) -> None:
        with self._lock:
            if self._live.pop(registration, None) is not None:
                self._send(release_line(registration))

    def close(self) -> None:
        """Close the pipe: the watchdog kills what is left (nothing, after a clean stop) and exits."""
        with self._lock:
            self._closed = True
            process, pipe = self._process, self._pipe
            self._process = self._pipe = None
        if pipe is not None:
            os.close(pipe)
        if process is not None:
            try:
                process.wait(CLOSE_WAIT_S)
            except subprocess.TimeoutExpired:
                log.error("the farm's watchdog did not exit within %g s of the farm's stop: killed", CLOSE_WAIT_S)
                process.kill()
                process.wait()

    def _spawn(self) -> None:
        """Start a watchdog, wait until it is ready, and tell it of the live workers (under the lock).
        Raises ``WatchdogFailed`` when it cannot be started or does not get ready."""
        if sys.platform == "win32":
            raise NotImplementedError("the watchdog is for POSIX; Windows farms use a job object")
        read, write = os.pipe()  # neither end is inherited by anything else the farm starts (PEP 446)
        argv = [self._python, "-m", "xtreaming.farm.watchdog", str(os.getpid()), self.tag]
        try:
            # Its own session: a Ctrl-C typed at the farm's console or a signal to the farm's process
            # group does not reach it.
            process = subprocess.Popen(argv, stdin=read, stdout=subprocess.PIPE, start_new_session=True)
        except OSError as exc:
            os.close(write)
            raise WatchdogFailed(f"cannot start the farm's watchdog ({argv[0]}): {exc}") from exc
        finally:
            os.close(read)
        if not _is_ready(process):  # it ignores the farm's stop signals only from then on
            process.kill()
            process.wait()
            os.close(write)
            raise WatchdogFailed(f"the farm's watchdog did not get ready within {READY_WAIT_S:g} s")
        os.set_blocking(write, False)  # a watchdog that stopped reading must not block a slot: it is replaced
        self._process, self._pipe = process, write
        threading.Thread(target=self._monitor, args=(process,), name="watchdog-monitor", daemon=True).start()
        with contextlib.suppress(OSError):  # should this one die at once, its monitor starts another
            os.write(write, b"".join(adopt_line(registration, pid) for registration, pid in self._live.items()))

    def _send(self, line: bytes) -> None:
        """Write one line (under the lock); lines are shorter than PIPE_BUF, so each is written whole or not at all."""
        if self._pipe is None:
            return
        try:
            os.write(self._pipe, line)
        except OSError as exc:  # BrokenPipeError: it died; BlockingIOError: it stopped reading
            log.error("the farm's watchdog does not read its pipe (%s): starting another", exc)
            self._replace()

    def _replace(self) -> None:
        """Start a new watchdog, then kill the old one before closing its pipe (under the lock): the old
        one would take the end of its pipe for the farm's death and kill every worker."""
        old, pipe = self._process, self._pipe
        try:
            self._spawn()
        except WatchdogFailed as exc:
            log.error("%s: from now on the farm's workers would outlive it", exc)
            self._process = self._pipe = None
        else:
            log.warning("the farm's new watchdog (pid %d) watches %d worker process(es)", self.pid, len(self._live))
        if old is not None:
            old.kill()
            old.wait()
        if pipe is not None:
            os.close(pipe)

    def _monitor(self, process: subprocess.Popen[bytes]) -> None:
        """Wait for ``process``, the current watchdog; if it dies while the farm runs, start another."""
        code = process.wait()
        with self._lock:
            if self._process is process and not self._closed:
                log.error("the farm's watchdog exited (code %s) while the farm runs: starting another", code)
                self._replace()


def _is_ready(process: subprocess.Popen[bytes]) -> bool:
    """Whether a starting watchdog wrote its ready line within ``READY_WAIT_S``; its stdout is closed then."""
    stdout = process.stdout
    if stdout is None:
        return False
    with stdout:
        ready, _, _ = select.select([stdout], [], [], READY_WAIT_S)
        return bool(ready) and stdout.read(len(READY_LINE)) == READY_LINE


def tethered(launcher: Launcher, lifeline: Lifeline) -> Launcher:
    """``launcher``, with each process it starts bound to the farm by ``lifeline``."""

    def launch(argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], stdout: Path, stderr: Path) -> WorkerProcess:
        process = launcher(argv, cwd=cwd, env={**env, **lifeline.environ()}, stdout=stdout, stderr=stderr)
        return TetheredProcess(process, lifeline, lifeline.adopt(process.pid))

    return launch


class TetheredProcess:
    """A worker process bound to the farm, released from the lifeline once it has been waited for."""

    def __init__(self, process: WorkerProcess, lifeline: Lifeline, registration: int) -> None:
        self._process = process
        self._lifeline = lifeline
        self._registration = registration

    @property
    def pid(self) -> int:
        return self._process.pid

    def wait(self) -> int:
        try:
            return self._process.wait()
        finally:
            self._lifeline.release(self._registration)

    def kill_tree(self) -> None:
        self._process.kill_tree()

    def rss_bytes(self) -> int | None:
        return self._process.rss_bytes()
