"""A worker that writes hundreds of megabytes to stdout, through a real farm process: the farm follows its
progress lines in bounded memory (its own RSS stays under 100 MB) and the task finishes with its progress."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.e2e.lease_site import LeaseSite

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

TOPIC = "MULTCOB02.1186.IMPORTACAO.SAIDA_GRANDE"
OUTPUT_MB = 600
FARM_RSS_LIMIT = 100 << 20
#: 600 MB of noise on stdout, progress lines among it, one line of 64 MB with no newline until its end.
WORKER = f"""
import sys
out = sys.stdout.buffer
noise = b"ruido " * 170_000 + b"\\n"  # about 1 MB a line
for done in range({OUTPUT_MB} - 64):
    out.write(noise)
    if done % 100 == 0:
        out.write(b"XTREAMING-PROGRESS %d/{OUTPUT_MB}\\n" % done)
out.write(b"x" * (64 << 20) + b"\\n")
out.write(b"XTREAMING-PROGRESS {OUTPUT_MB}/{OUTPUT_MB}\\n")
out.flush()
"""


@pytest.fixture
def site(tmp_path: Path) -> Iterator[LeaseSite]:
    site = LeaseSite(tmp_path, heartbeat_interval_s=0.5)
    yield site
    site.close()


class PeakRss(threading.Thread):
    """Samples a process's resident memory every 20 ms until stopped; ``peak`` is the largest seen."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.peak = 0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(0.02):
            try:
                self.peak = max(self.peak, self.process.memory_info().rss)
            except psutil.Error:
                return


def test_hundreds_of_megabytes_of_stdout_keep_the_farm_small(site: LeaseSite, tmp_path: Path) -> None:
    script = tmp_path / "talkative_worker.py"
    script.write_text(WORKER)
    site.call("POST", "/api/profiles", {"pattern": ".*", "settings": {"command": [sys.executable, str(script)]}})
    farm = site.farm("farm-a", 1)
    watch = PeakRss(farm.pid)
    watch.start()

    site.publish(TOPIC, 1)
    [ack] = site.wait_acked(TOPIC, 1, 120)
    watch.stopped.set()
    watch.join()

    assert ack["status"] == "ok", ack
    assert 0 < watch.peak < FARM_RSS_LIMIT, f"farm peak RSS {watch.peak / 2**20:.0f} MiB"
