"""The coordinator's garbage-collector policy, applied in a child process: it changes process-wide state."""

from __future__ import annotations

import subprocess
import sys

from xtreaming.coordinator.heap import YOUNG_THRESHOLD

PROBE = """
import gc
loaded = [[n] for n in range(1000)]  # the coordinator's state, as far as the collector is concerned
from xtreaming.coordinator.heap import settle_heap
settle_heap()
print(gc.get_freeze_count() >= len(loaded), gc.get_threshold()[0], gc.get_count()[0] < 100)
"""


def test_settling_freezes_the_loaded_state_and_widens_the_young_generation() -> None:
    run = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=30)
    assert run.stdout.split() == ["True", str(YOUNG_THRESHOLD), "True"]
