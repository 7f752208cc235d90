"""A stand-in farm for the watchdog tests: ``python tests/farm/tethered_farm.py FILE COMMAND...`` takes hold
of a real lifeline, starts COMMAND as a farm starts a command worker, writes its own, its watchdog's and
the worker's pids to FILE (JSON, whole or not at all), then waits for the worker (for ever, for one that
does not end) until the test kills it. With ``TEST_LEAK_PIPE`` set, the worker inherits the write end of
the watchdog's pipe, as a worker started carelessly would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from xtreaming.farm.lifeline import WatchdogLifeline, tethered
from xtreaming.farm.processes import WorkerProcess, launch


def main() -> int:
    report, argv = Path(sys.argv[1]), sys.argv[2:]
    lifeline = WatchdogLifeline()
    lifeline.start()
    folder = report.parent
    process: WorkerProcess | subprocess.Popen[bytes]
    if os.environ.get("TEST_LEAK_PIPE"):  # the fault: a worker that inherits the watchdog's pipe, holding it open
        process = subprocess.Popen(argv, cwd=folder, pass_fds=[lifeline._pipe or -1], start_new_session=True)
        lifeline.adopt(process.pid)
    else:
        process = tethered(launch, lifeline)(
            argv, cwd=folder, env=os.environ, stdout=folder / "worker.out", stderr=folder / "worker.err"
        )
    temporary = report.with_suffix(".tmp")
    temporary.write_text(json.dumps({"farm": os.getpid(), "watchdog": lifeline.pid, "worker": process.pid}))
    temporary.replace(report)
    return process.wait()


if __name__ == "__main__":
    sys.exit(main())
