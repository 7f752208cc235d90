"""A queue without a worker is never run, and profiles reach queues already registered: a real
coordinator, a real ``xtreaming farm`` process and real ``xtreaming`` CLI processes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.farm.site import Site

BULK = "MULTCOB03.1189.IMPORTACAO.ATUALIZA_BUREAU"
URGENT = "MULTCOB03.1189.COBSINC.LOCALIZACAO"
NOOP = "xtreaming.demo.worker:noop"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    site = Site(tmp_path)
    yield site
    site.close()


def cli(site: Site, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XTREAMING_URL": site.url, "COLUMNS": "250", "XTREAMING_LANG": "en"}
    return subprocess.run(
        [sys.executable, "-m", "xtreaming", *args], env=env, capture_output=True, text=True, timeout=60
    )


def test_a_queue_on_kind_defaults_is_never_leased_until_a_profile_added_later_gives_it_a_worker(site: Site) -> None:
    site.publish(BULK, 20, partitions=1)  # IMPORTACAO's defaults: no command, no handler
    site.publish(URGENT, 1, partitions=1)
    site.call("PATCH", f"/api/queues/{URGENT}/settings", {"handler": NOOP})
    site.farm("farm-a", slots=2)

    # The farm ran the urgent queue's task: it asked for work, and the bulk queue got none of it.
    site.wait_acked(URGENT, 1)
    bulk = site.queue(BULK)
    assert (bulk["state"], bulk["workers"], bulk["in_flight"], bulk["consumed"], bulk["failures"]) == (
        "no-worker",
        0,
        0,
        0,
        0,
    )
    assert site.call("GET", f"/api/queues/{BULK}/explain")["reason"] == "no worker configured"
    explained = cli(site, "explain", BULK)
    assert explained.stdout.strip() == f"{BULK}: no worker configured", explained.stderr

    added = cli(site, "profile", "add", r"MULTCOB03\..*\.IMPORTACAO\..*", "--handler", NOOP, "--batch-size", "5")
    assert added.returncode == 0, added.stderr

    acks = site.wait_acked(BULK, 20)
    assert sorted(a["status"] for a in acks) == ["ok"] * 20
    assert site.dlq(BULK) == []
    assert site.call("GET", f"/api/queues/{BULK}/settings")["batch_size"] == 5
