"""A farm's watchdog process (POSIX): when the farm dies, by any signal, it kills what the farm started.

The farm starts it (``python -m xtreaming.farm.watchdog FARM_PID TAG``) with the read end of a pipe as
its standard input, and starts no worker before it says it is ready; only the farm holds the write end.
The farm writes a line for each worker process it starts (``+ID PID``) and one when that process has
been waited for (``-ID``), so a worker that ends leaves nothing registered. The pipe reaches end of file
when the farm is gone, whatever ended it: the kernel closes a dead process's descriptors, SIGKILL
included. The watchdog then kills

* each registered process, with its descendants found while they are still attached to it (each
  frozen as it is found), and its process group: a command worker leads its own session, a handler
  process makes one, and its children stay in it unless they leave;
* each process whose environment carries the farm's tag (``TAG_VARIABLE``), which every worker gets
  and passes on: this finds what escaped both, such as a daemon a worker double-forked into a session
  of its own, or a child that a worker which ended on its own left behind;

and exits: it never outlives the farm by more than that. It acts within milliseconds of the farm's
death (``tests/farm/test_watchdog.py`` measures it), while the coordinator counts a farm as lost only
after three heartbeat intervals (15 s by default) and only then leases its tasks elsewhere: by then
nothing the dead farm started still runs them.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
from collections.abc import Iterator
from typing import Final

import psutil

from xtreaming.farm.lifeline import READY_LINE, TAG_VARIABLE
from xtreaming.farm.processes import kill_trees

if sys.platform == "win32":
    raise ImportError("the watchdog is for POSIX systems: a Windows farm's workers are in its job object")

#: How often a quiet watchdog checks that its farm is still its parent. End of file on the pipe is
#: what it waits for; this is the fallback should a process have inherited the write end by mistake
#: (the pipe would then stay open after the farm's death).
PARENT_CHECK_S: Final = 1.0


class Registry:
    """The farm's live worker processes, by registration number (a pid alone could be reused)."""

    def __init__(self) -> None:
        self.processes: dict[int, psutil.Process | None] = {}

    def apply(self, line: bytes) -> None:
        """Apply one line from the farm (``lifeline.adopt_line``, ``lifeline.release_line``); a line it
        cannot read is ignored (it came from no farm)."""
        try:
            if line.startswith(b"+"):
                registration, pid = (int(field) for field in line[1:].split())
                self.processes[registration] = _handle(pid)
            elif line.startswith(b"-"):
                self.processes.pop(int(line[1:]), None)
        except ValueError:
            return

    def kill_all(self, tag: str) -> tuple[int, int]:
        """Kill every registered process tree and group, and every process tagged ``tag``; returns how
        many registered processes were still alive, and how many tagged ones were left after them."""
        alive = [h for h in self.processes.values() if h is not None and h.is_running()]
        # Each live worker's group is the one it leads (its pid); a dead one's is left to the tag, as
        # its number could by now be another process's.
        groups = [h.pid for h in alive]
        for group in groups:  # frozen at once: nothing in them forks or exits while the trees are walked
            _killpg(group, signal.SIGSTOP)
        kill_trees(alive)
        for group in groups:  # what is left of each group: members whose parent had already gone
            _killpg(group, signal.SIGKILL)
        others = list(tagged(tag))  # last, as it reads every process's environment (tens of ms)
        kill_trees(others)
        return len(alive), len(others)


def tagged(tag: str) -> Iterator[psutil.Process]:
    """This user's processes whose environment carries ``tag`` (other users' cannot be read)."""
    me = os.getpid()
    for process in psutil.process_iter():
        if process.pid == me:
            continue
        with contextlib.suppress(psutil.Error):
            if process.environ().get(TAG_VARIABLE) == tag:
                yield process


def watch(farm_pid: int, tag: str, fd: int = 0) -> None:
    """Read the farm's lines from ``fd`` until it is gone, then kill what it started."""
    registry = Registry()
    pending = b""
    while True:
        ready, _, _ = select.select([fd], [], [], PARENT_CHECK_S)
        if not ready:
            if os.getppid() != farm_pid:
                break
            continue
        data = os.read(fd, 1 << 16)
        if not data:
            break
        *lines, pending = (pending + data).split(b"\n")
        for line in lines:
            registry.apply(line)
    registered = len(registry.processes)
    alive, others = registry.kill_all(tag)
    sys.stderr.write(  # the farm's own stderr: its log
        f"xtreaming farm watchdog: farm {farm_pid} ended with {registered} worker process(es) registered, "
        f"{alive} still running; killed with their descendants, and {others} other process(es) of the farm\n"
    )
    sys.stderr.flush()


def main() -> int:
    """``python -m xtreaming.farm.watchdog FARM_PID TAG`` with the farm's pipe as standard input."""
    # The farm's stop signals are the farm's: during a graceful stop (a first SIGTERM, Ctrl-C, or a
    # service manager signalling every process of the farm) the watchdog must stay, to act if the farm
    # is killed before its tasks finish. It ends once the farm has, whatever the farm was told.
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, signal.SIG_IGN)
    farm_pid, tag = int(sys.argv[1]), sys.argv[2]
    with contextlib.suppress(BrokenPipeError):  # the farm died as it started us: the pipe's end says so
        os.write(1, READY_LINE)  # the farm starts no worker before this
    watch(farm_pid, tag)
    return 0


def _handle(pid: int) -> psutil.Process | None:
    """A handle that knows the process's start time, so that a reused pid is never killed."""
    try:
        return psutil.Process(pid)
    except psutil.Error:
        return None


def _killpg(group: int, number: int) -> None:
    with contextlib.suppress(OSError):  # no such group (any more), or not ours
        os.killpg(group, number)


if __name__ == "__main__":
    sys.exit(main())
