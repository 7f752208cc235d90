"""Misbehaving workers for the farm tests, run as ``python tests/farm/workers.py MODE [ARG]``.

They read the task from the farm's ``XTREAMING_*`` variables, as any worker may:

* ``ok``: every message ok (exit 0), with progress lines.
* ``exit3``: a complaint on stderr, exit code 3.
* ``garbage``: writes a line that is not JSON to output.jsonl, exit 0.
* ``verdicts``: the first message ``error``, the second ``retry``, the others unmentioned; exit 0.
* ``hang``: starts a child that sleeps too, writes both pids, sleeps for ever.
* ``hang-once``: ``hang`` on attempt 1, ``ok`` after.
* ``stuck-once``: on attempt 1 writes its pid and sleeps for ever; ``ok`` after.
* ``stuck-on FARM``: on farm FARM writes its pid and sleeps for ever; ``ok`` on other farms.
* ``sleep ARG``: reports progress 1/N, sleeps ARG seconds, then ok.
* ``env ARG``: writes the ``XTREAMING_*`` variables it sees as JSON to the file ARG; ok.

Pids go to ``$TEST_PIDS_DIR/<task id>.pid`` (space-separated), for the test to kill or check.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path


def messages() -> list[dict[str, object]]:
    with open(os.environ["XTREAMING_INPUT"], encoding="utf-8") as file:
        return [json.loads(line) for line in file]


def write_pids(*pids: int) -> None:
    folder = Path(os.environ["TEST_PIDS_DIR"])
    temporary = folder / f"{os.environ['XTREAMING_TASK_ID']}.tmp"
    temporary.write_text(" ".join(map(str, pids)))
    temporary.replace(folder / f"{os.environ['XTREAMING_TASK_ID']}.pid")  # whole or not at all


def sleep_for_ever() -> None:
    """The fault under test: a worker that never finishes, until the farm kills it."""
    while True:
        time.sleep(60)


def main() -> int:
    mode, arg = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else "")
    attempt = int(os.environ["XTREAMING_ATTEMPT"])
    if mode == "exit3":
        sys.stderr.write("importer: base MULTCOB03 refused the connection (ORA-12541)\n")
        return 3
    if mode == "garbage":
        Path(os.environ["XTREAMING_OUTPUT"]).write_text("this is not json\n")
        return 0
    if mode == "verdicts":
        ids = [m["id"] for m in messages()]
        lines = [{"id": ids[0], "status": "error", "detail": "CPF inválido"}, {"id": ids[1], "status": "retry"}]
        Path(os.environ["XTREAMING_OUTPUT"]).write_text("".join(json.dumps(line) + "\n" for line in lines))
        return 0
    if mode == "hang" or (mode == "hang-once" and attempt == 1):
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])  # must die with it
        write_pids(os.getpid(), child.pid)
        sleep_for_ever()
    if (mode == "stuck-once" and attempt == 1) or (mode == "stuck-on" and os.environ["XTREAMING_FARM"] == arg):
        write_pids(os.getpid())
        sleep_for_ever()
    if mode == "sleep":
        sys.stdout.write(f"XTREAMING-PROGRESS 1/{len(messages())}\n")
        sys.stdout.flush()
        time.sleep(float(arg))  # simulated work: keeps the task running for as long as the test needs
    if mode == "env":
        variables = {k: v for k, v in os.environ.items() if k.startswith("XTREAMING_")}
        Path(arg).write_text(json.dumps(variables))
    total = len(messages())
    sys.stdout.write(f"XTREAMING-PROGRESS {total}/{total}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
