"""The worker of the lease tests, run as ``python keyed_worker.py JOURNAL FIRST_S THEN_S``.

It appends ``start <key> <pid> <monotonic ns>`` for each message of its task to the journal, works
``FIRST_S`` seconds when one of its keys never started before (per the journal) and ``THEN_S`` when
all did, then appends ``end <key> <pid> <monotonic ns>`` for each. One line a write with O_APPEND,
so that lines of concurrent workers never interleave. What a killed worker started has no ``end``:
the test times its end by watching the pid die.
"""

from __future__ import annotations

import json
import os
import sys
import time


def started_keys(journal: str) -> set[str]:
    try:
        with open(journal, encoding="utf-8") as lines:
            return {line.split()[1] for line in lines if line.startswith("start ")}
    except FileNotFoundError:
        return set()


def main() -> int:
    journal, first_s, then_s = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    with open(os.environ["XTREAMING_INPUT"], encoding="utf-8") as lines:
        keys = [json.loads(line)["key"] for line in lines]
    seen = started_keys(journal)
    fd = os.open(journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    for key in keys:
        os.write(fd, f"start {key} {os.getpid()} {time.monotonic_ns()}\n".encode())
    time.sleep(then_s if seen.issuperset(keys) else first_s)  # the work: the window a second run would overlap
    for key in keys:
        os.write(fd, f"end {key} {os.getpid()} {time.monotonic_ns()}\n".encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
