"""Workers whose processes must die with their farm, for the farm-death tests. Each writes the pids it
starts to ``$TEST_PIDS_DIR/<name>.pid`` (whole or not at all), for the test to check and to clean up.

* ``busy_with_a_child``: a handler (``tests.e2e.family:busy_with_a_child``) that starts a child process
  and stays busy in its task.
* ``python tests/e2e/family.py overlap FARM``: a command worker that, on farm FARM, writes its pid and
  never ends; on any other farm, says in each message's detail which of the pids written so far are
  still running (the workers of FARM still at work on the same task), and ends ok.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil


def write_pids(name: str, *pids: int) -> None:
    folder = Path(os.environ["TEST_PIDS_DIR"])
    temporary = folder / f"{name}.tmp"
    temporary.write_text(" ".join(map(str, pids)))
    temporary.replace(folder / f"{name}.pid")


def busy_with_a_child(batch: object) -> None:
    """The fault's victim: a handler at work, with a child of its own, when its farm is killed."""
    child = subprocess.Popen(["sleep", "600"])
    write_pids("handler", os.getpid(), child.pid)
    time.sleep(600)


def running(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def overlap(farm: str) -> int:
    if os.environ["XTREAMING_FARM"] == farm:
        write_pids(os.environ["XTREAMING_TASK_ID"], os.getpid())
        while True:
            time.sleep(60)
    pids = [int(p) for path in Path(os.environ["TEST_PIDS_DIR"]).glob("*.pid") for p in path.read_text().split()]
    detail = f"running beside me: {sorted(p for p in pids if running(p))}"
    with open(os.environ["XTREAMING_INPUT"], encoding="utf-8") as source:
        ids = [json.loads(line)["id"] for line in source]
    lines = [json.dumps({"id": i, "status": "ok", "detail": detail}) + "\n" for i in ids]
    Path(os.environ["XTREAMING_OUTPUT"]).write_text("".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(overlap(sys.argv[2]) if sys.argv[1] == "overlap" else 2)
