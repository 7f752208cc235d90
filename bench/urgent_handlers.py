"""The handlers of ``bench/urgent.py``, run in the farms' handler processes as ``urgent_handlers:…`` (the
benchmark puts this folder on the farms' ``PYTHONPATH``).

``slow_import`` is the load: every task it runs lasts ``IMPORT_TASK_S`` seconds, whatever its batch holds,
except the first one of each handler process, which lasts a random share of it. Without that, every slot
would start its first import at the same moment and all of them would end together every ``IMPORT_TASK_S``
seconds, in step, which a long-running import load never does: spread out, some slot ends a task every
``IMPORT_TASK_S / slots`` seconds on average, as in production.
``mark_start`` is the urgent request: at entry it appends ``<key> <time.time()>`` per message to the file
named by ``STARTS_FILE``, one write per call (``O_APPEND``: lines of several processes never mix), so the
benchmark can subtract the time it called publish, on the same clock of the same machine.
"""

from __future__ import annotations

import os
import random
import time
from typing import Final

from xtreaming.farm.batch import Batch

#: The variable naming the file where ``mark_start`` appends each urgent message's start.
STARTS_FILE: Final = "URGENT_BENCH_STARTS"
#: The variable holding the seconds each import task lasts.
IMPORT_TASK_S: Final = "URGENT_BENCH_IMPORT_TASK_S"


#: Whether this handler process has run an import task yet (the first one sets the slot's phase).
_phased = False


def slow_import(batch: Batch) -> None:
    """An import task that keeps its slot for ``$URGENT_BENCH_IMPORT_TASK_S`` seconds (2 when unset); the
    first one in this process for a random share of that."""
    global _phased
    task_s = float(os.environ.get(IMPORT_TASK_S, "2"))
    if not _phased:
        _phased = True
        task_s *= random.random()
    time.sleep(task_s)


def mark_start(batch: Batch) -> None:
    """An urgent request: records when it started, per message, and is done."""
    started = time.time()
    keys = [(message.key or b"-").decode() for message in batch.messages]
    lines = "".join(f"{key} {started:.6f}\n" for key in keys).encode()
    fd = os.open(os.environ[STARTS_FILE], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, lines)
    finally:
        os.close(fd)
