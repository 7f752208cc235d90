"""Reading the journal ``keyed_worker.py`` writes: each run of a key, and the runs of one key that overlapped."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Run:
    """One worker process working on one key, from ``start_ns`` to ``end_ns`` (None: it never wrote its end)."""

    key: str
    pid: int
    start_ns: int
    end_ns: int | None


def read_runs(path: Path) -> list[Run]:
    """Every run the journal records, in the order they started."""
    starts: dict[tuple[str, int], int] = {}
    ends: dict[tuple[str, int], int] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            event, key, pid, ns = line.split()
            (starts if event == "start" else ends)[(key, int(pid))] = int(ns)
    runs = [Run(key, pid, start, ends.get((key, pid))) for (key, pid), start in starts.items()]
    return sorted(runs, key=lambda run: run.start_ns)


def runs_per_key(runs: list[Run]) -> Counter[str]:
    return Counter(run.key for run in runs)


def overlapping(runs: list[Run], gone_ns: Mapping[int, int] | None = None) -> list[tuple[Run, Run]]:
    """The pairs of runs of the same key that were running at the same time.

    A run with no end lasted until its pid was seen gone (``gone_ns``: pid → a moment the test saw it
    dead, so at or after its death); with no such moment it counts as never ending: nothing is missed."""
    gone = gone_ns or {}

    def end(run: Run) -> float:
        if run.end_ns is not None:
            return run.end_ns
        return gone.get(run.pid, math.inf)

    found = []
    for position, run in enumerate(runs):
        for later in runs[position + 1 :]:
            if later.key == run.key and later.start_ns < end(run):
                found.append((run, later))
    return found
