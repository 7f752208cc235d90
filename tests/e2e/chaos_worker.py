"""The worker of the chaos test, run as ``python chaos_worker.py JOURNAL WORK_MS``.

For each message of its task it appends ``start`` then, ``WORK_MS`` later, ``end`` to the journal:
``<event> <pid> <topic> <base> <key> <partition>/<offset> <monotonic ns>``, one line a write with
O_APPEND, so that lines of concurrent workers never interleave. What a killed worker started has no
``end``: the test times its end by watching the pid die.
"""

from __future__ import annotations

import json
import os
import sys
import time


def main() -> int:
    journal, work_s = sys.argv[1], float(sys.argv[2]) / 1000
    topic, base = os.environ["XTREAMING_TOPIC"], os.environ["XTREAMING_BASE"]
    fd = os.open(journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    with open(os.environ["XTREAMING_INPUT"], encoding="utf-8") as lines:
        for line in lines:
            message = json.loads(line)
            where = f"{os.getpid()} {topic} {base} {message['key']} {message['partition']}/{message['offset']}"
            os.write(fd, f"start {where} {time.monotonic_ns()}\n".encode())
            time.sleep(work_s)  # the message's work: the window in which a second run would overlap
            os.write(fd, f"end {where} {time.monotonic_ns()}\n".encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
