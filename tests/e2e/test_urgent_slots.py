"""End to end: a farm of two slots, the last one kept for priority 8 and above. A long import holds the
ordinary slot; a COBSINC request starts on the urgent slot while the import still runs, and the import's
other messages never take the urgent slot.

The handlers below run in the farm's handler processes (``tests.e2e.test_urgent_slots:…``); they mark what
they do, and wait for the test's word, in files under ``$TEST_PIDS_DIR``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.farm.site import Site
from tests.waiting import wait_until
from xtreaming.farm.batch import Batch

IMPORT = "MULTCOB03.1186.IMPORTACAO.CARGA"
URGENT = "MULTCOB02.77.COBSINC.ATUALIZA"
#: The longest a handler waits for the test's word: a test that fails never leaves one waiting for long.
MOST_S = 60.0


def _folder() -> Path:
    return Path(os.environ["TEST_PIDS_DIR"])


def _run_until(kind: str, batch: Batch) -> None:
    """Mark ``<kind>.running`` (one line per message), then wait until the test writes ``<kind>.go``."""
    with (_folder() / f"{kind}.running").open("a", encoding="utf-8") as marks:
        marks.write(f"{batch.messages[0].id}\n")
    deadline = time.monotonic() + MOST_S
    while not (_folder() / f"{kind}.go").exists() and time.monotonic() < deadline:
        time.sleep(0.02)


def long_import(batch: Batch) -> None:
    """An import that lasts until the test lets it end."""
    _run_until("import", batch)


def urgent_request(batch: Batch) -> None:
    """A COBSINC request, held until the test lets it end."""
    _run_until("urgent", batch)


def started(site: Site, kind: str) -> int:
    """How many messages of ``kind`` a handler has started."""
    path = site.pids / f"{kind}.running"
    return len(path.read_text(encoding="utf-8").splitlines()) if path.exists() else 0


def let_go(site: Site, kind: str) -> None:
    (site.pids / f"{kind}.go").touch()


@pytest.mark.slow
def test_an_urgent_request_starts_on_the_urgent_slot_while_an_import_holds_the_other(site: Site) -> None:
    site.profile(r".*\.IMPORTACAO\..*", handler=f"{__name__}:long_import", batch_size=1, priority=7, timeout_s=120)
    site.profile(r".*\.COBSINC\..*", handler=f"{__name__}:urgent_request", batch_size=1, priority=8, timeout_s=120)
    site.publish(IMPORT, 3, partitions=1)
    site.farm("farm-a", slots=2, XTREAMING_FARM_URGENT_SLOTS="1", XTREAMING_FARM_URGENT_PRIORITY="8")

    wait_until(lambda: started(site, "import") == 1, 30, "the import to start")
    [row] = site.call("GET", "/api/farms")
    assert (row["slots"], row["urgent_slots"], row["urgent_priority"]) == (2, 1, 8)
    wait_until(
        lambda: (
            site.call("GET", f"/api/queues/{IMPORT}/explain")["reason"]
            == "the idle slots are reserved for urgent work (priority ≥ 8)"
        ),
        10,
        "the import's explanation to name the urgent slot",
    )

    site.publish(URGENT, 2, partitions=1)
    wait_until(lambda: started(site, "urgent") == 1, 10, "the urgent request to start")
    assert site.call("GET", f"/api/queues/{URGENT}/explain")["reason"] == "waiting for an urgent slot"
    let_go(site, "urgent")
    urgent = site.wait_acked(URGENT, 2, timeout_s=20)

    assert started(site, "import") == 1  # the import's other messages waited for the ordinary slot
    assert site.acks(IMPORT) == []  # the import was still running
    let_go(site, "import")
    imports = site.wait_acked(IMPORT, 3, timeout_s=30)

    assert Counter((a["status"], a["worker"]) for a in urgent) == {("ok", 1): 2}
    assert Counter((a["status"], a["worker"]) for a in imports) == {("ok", 0): 3}


def test_a_farm_that_would_keep_no_ordinary_slot_does_not_start(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "xtreaming", "farm", "--coordinator", "http://127.0.0.1:9", "--slots", "2"]
    command += ["--urgent-slots", "2", "--work-dir", str(tmp_path)]

    env = {**os.environ, "COLUMNS": "250"}

    ran = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)

    assert ran.returncode == 2
    assert "Invalid value for --urgent-slots: 2 urgent slot(s) of 2: keep at least one ordinary slot" in ran.stderr
