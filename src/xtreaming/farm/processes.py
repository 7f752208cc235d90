"""Worker processes on Linux and Windows: launching in their own process group, killing whole
process trees (psutil), memory of a tree, and asking a child to stop gracefully.

Workers start in a new session (POSIX) or a new process group (Windows), so the Ctrl-C an
operator types at the farm's console reaches the farm only: the farm decides whether running
workers finish (first signal) or die (second signal).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Final, Protocol

import psutil

#: How long a killed tree may take to disappear before the kill is considered done anyway.
KILL_WAIT_S = 5.0


class WorkerProcess(Protocol):
    """A launched worker, as the runner sees it."""

    @property
    def pid(self) -> int: ...

    def wait(self) -> int:
        """Block until the process exits; returns its exit code (negative: killed by that signal, on POSIX)."""
        ...

    def kill_tree(self) -> None:
        """Kill the process and every descendant; safe to call after it exited."""
        ...

    def rss_bytes(self) -> int | None:
        """Resident memory of the process and its descendants, None when it is gone."""
        ...


class Launcher(Protocol):
    """Starts a worker process; raises OSError when the program cannot be started."""

    def __call__(
        self, argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], stdout: Path, stderr: Path
    ) -> WorkerProcess: ...


def isolated_group() -> dict[str, Any]:
    """``Popen`` keywords that start a child in its own process group (no shared Ctrl-C)."""
    if sys.platform == "win32":
        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
    return {"start_new_session": True}


def request_stop(process: subprocess.Popen[Any]) -> None:
    """Ask a child started with ``isolated_group()`` to stop as if Ctrl-C had been typed at its console."""
    if sys.platform == "win32":
        process.send_signal(signal.CTRL_BREAK_EVENT)
    else:
        process.send_signal(signal.SIGTERM)


class PopenProcess:
    """A worker started with ``subprocess.Popen``; psutil's handle guards against pid reuse."""

    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self._popen = popen
        try:
            self._handle: psutil.Process | None = psutil.Process(popen.pid)
        except psutil.Error:  # already gone: nothing to kill or measure
            self._handle = None

    @property
    def pid(self) -> int:
        return self._popen.pid

    def wait(self) -> int:
        return self._popen.wait()

    def kill_tree(self) -> None:
        if self._handle is not None:
            kill_tree(self._handle)
        if sys.platform != "win32":  # descendants that outlived their parent still share its session's group
            with contextlib.suppress(OSError):
                os.killpg(self._popen.pid, signal.SIGKILL)

    def rss_bytes(self) -> int | None:
        return None if self._handle is None else tree_rss(self._handle)


def launch(argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], stdout: Path, stderr: Path) -> PopenProcess:
    """The default launcher: ``argv`` in ``cwd`` with ``env``, output to the two files, no console input."""
    with stdout.open("wb") as out, stderr.open("wb") as err:
        popen = subprocess.Popen(
            list(argv), cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=out, stderr=err, **isolated_group()
        )
    return PopenProcess(popen)


def kill_tree(root: psutil.Process) -> None:
    """Kill ``root`` and all its descendants (see ``kill_trees``)."""
    kill_trees([root])


def kill_trees(roots: Iterable[psutil.Process]) -> None:
    """Kill each root and all its descendants. Each is suspended as it is found, so none can fork
    or be orphaned out of sight between looking and killing; then all are killed together."""
    victims: list[psutil.Process] = []
    for root in roots:
        if root in victims:
            continue
        victims.append(root)
        _signal(root, psutil.Process.suspend)
        for _ in range(5):
            try:
                found = [p for p in root.children(recursive=True) if p not in victims]
            except psutil.Error:
                break
            if not found:
                break
            for process in found:
                _signal(process, psutil.Process.suspend)
            victims.extend(found)
    for process in victims:
        _signal(process, psutil.Process.kill)
    _wait_gone(victims, KILL_WAIT_S)


def _wait_gone(processes: list[psutil.Process], timeout_s: float) -> None:
    """Wait until each process is gone or a zombie. Not ``psutil.wait_procs``: it would reap the
    root, taking its exit code from its owner (``Popen``), and wait out zombies an init that does
    not reap (some containers' pid 1) leaves behind."""
    deadline = time.monotonic() + timeout_s
    while [p for p in processes if _running(p)] and time.monotonic() < deadline:
        time.sleep(0.005)


def _running(process: psutil.Process) -> bool:
    try:
        return bool(process.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def _signal(process: psutil.Process, action: Callable[[psutil.Process], None]) -> None:
    with contextlib.suppress(psutil.Error):  # gone already, or a zombie: both fine
        action(process)


def tree_rss(root: psutil.Process) -> int | None:
    try:
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return None
    total = 0
    for process in processes:
        try:
            total += process.memory_info().rss
        except psutil.Error:
            continue
    return total


def read_tail(path: Path, limit: int) -> str:
    """The last ``limit`` bytes of a file as text (undecodable bytes replaced); '' when it is missing."""
    try:
        with path.open("rb") as file:
            file.seek(0, os.SEEK_END)
            size = file.tell()
            file.seek(max(0, size - limit))
            data = file.read()
    except OSError:
        return ""
    text = data.decode("utf-8", "replace")
    return ("…" + text) if size > limit else text


#: The worker's stdout is read this much at a time, and a line longer than ``MAX_LINE_BYTES`` is passed
#: over (it cannot be a progress line): a worker printing hundreds of megabytes costs the farm no more.
READ_CHUNK_BYTES: Final = 1 << 16
MAX_LINE_BYTES: Final = 1 << 12


class LineFollower:
    """Reads the lines appended to a file since the last call (the worker's stdout, for progress)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._partial = b""
        #: The line being read grew past ``MAX_LINE_BYTES``: the rest of it, up to its newline, is dropped.
        self._overlong = False
        self._file: IO[bytes] | None = None

    def new_lines(self) -> Iterator[bytes]:
        """Each complete line appended since the last call, read a chunk at a time; overlong lines skipped."""
        try:
            if self._file is None:
                self._file = self.path.open("rb")
            self._file.seek(self._offset)
            while chunk := self._file.read(READ_CHUNK_BYTES):
                self._offset += len(chunk)
                lines = chunk.split(b"\n")
                lines[0] = self._partial + lines[0]
                self._partial = lines.pop()
                for line in lines:
                    if self._overlong:  # the end of a line already passed over
                        self._overlong = False
                        continue
                    yield line
                if len(self._partial) > MAX_LINE_BYTES:
                    self._partial, self._overlong = b"", True
        except OSError:
            return

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
