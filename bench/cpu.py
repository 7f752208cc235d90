"""CPU seconds of the processes a benchmark starts (imported by the scripts beside it)."""

from __future__ import annotations

import contextlib

import psutil


def cpu_s(process: psutil.Process) -> float:
    """CPU seconds of a process and of its children (running ones and those it waited for)."""
    total = 0.0
    for member in [process, *process.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            times = member.cpu_times()
            total += times.user + times.system + times.children_user + times.children_system
    return total
