"""A handler for the worker-priority test (imported inside the farm's handler processes)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from xtreaming.farm.batch import Batch


def busy_with_pid(batch: Batch) -> None:
    """Writes its process id to ``$TEST_PIDS_DIR/<task id>.pid``, then works until the farm kills it."""
    folder = Path(os.environ["TEST_PIDS_DIR"])
    (folder / f"{batch.task_id}.tmp").write_text(str(os.getpid()))
    (folder / f"{batch.task_id}.tmp").replace(folder / f"{batch.task_id}.pid")
    time.sleep(600)
