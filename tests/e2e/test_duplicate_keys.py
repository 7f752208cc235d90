"""One message per key across loads, end to end: the same portfolio published twice with ``xtreaming publish``
(processes writing straight to the log) to a coordinator process with a farm process; each client's work is
done once and the second copies are ACKed "duplicate", across a SIGKILL of the coordinator between the loads."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.journal import runs_per_key
from tests.e2e.lease_site import LeaseSite
from tests.waiting import wait_until

IMPORT = "MULTCOB03.1189.IMPORTACAO.CARTEIRA"
SYNC = "MULTCOB03.1189.COBSINC.LOCALIZACAO"
HEARTBEAT_S = 0.5
CLIENTS = 20


@pytest.fixture
def site(tmp_path: Path) -> Iterator[LeaseSite]:
    site = LeaseSite(tmp_path, HEARTBEAT_S)
    yield site
    site.close()


@pytest.fixture
def portfolio(tmp_path: Path) -> Path:
    csv = tmp_path / "carteira.csv"
    csv.write_text("cpf;nome\n" + "".join(f"{10_000_000_000 + i};Cliente {i}\n" for i in range(CLIENTS)))
    return csv


def publish(site: LeaseSite, topic: str, csv: Path) -> None:
    """``xtreaming publish`` as an operator runs it, straight to the site's log."""
    result = subprocess.run(
        [sys.executable, "-m", "xtreaming", "publish", topic, "--csv", str(csv)],
        env=site.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert f"published {CLIENTS} messages" in result.stdout


def pending(site: LeaseSite, topic: str) -> int | None:
    """The queue's pending messages, None while it is not registered."""
    rows = site.call("GET", "/api/queues")["items"]
    return next((row["pending"] for row in rows if row["topic"] == topic), None)


def statuses(site: LeaseSite, topic: str) -> Counter[str]:
    return Counter(ack["status"] for ack in site.acks(topic))


@pytest.mark.slow
def test_a_portfolio_published_twice_while_the_first_runs_is_done_once(site: LeaseSite, portfolio: Path) -> None:
    # Each first run of a client lasts 15 s: the first load still runs when the second is published and read.
    site.profile(first_s=15, then_s=0, batch_size=5)
    site.farm("farm-a", 4)
    publish(site, IMPORT, portfolio)
    wait_until(lambda: site.runs_once(CLIENTS), 30, "every client of the first load to start")

    publish(site, IMPORT, portfolio)
    site.wait_acked(IMPORT, 2 * CLIENTS, 60)

    assert set(runs_per_key(site.runs()).values()) == {1}
    assert statuses(site, IMPORT) == {"ok": CLIENTS, "duplicate": CLIENTS}
    assert site.queue(IMPORT)["duplicates"] == CLIENTS


def test_a_coordinator_killed_between_the_loads_loses_nothing_and_doubles_nothing(
    site: LeaseSite, portfolio: Path
) -> None:
    site.profile(first_s=0, then_s=0, batch_size=5)
    publish(site, IMPORT, portfolio)
    wait_until(lambda: pending(site, IMPORT) == CLIENTS, 30, "the first load to be registered")

    site.restart_coordinator()  # SIGKILL
    publish(site, IMPORT, portfolio)
    site.farm("farm-a", 2)
    acks = site.wait_acked(IMPORT, 2 * CLIENTS, 60)

    assert set(runs_per_key(site.runs()).values()) == {1}
    assert statuses(site, IMPORT) == {"ok": CLIENTS, "duplicate": CLIENTS}
    per_partition = Counter(a["partition"] for a in acks)  # each client's two copies share a partition
    first_load = {(p, offset) for p, count in per_partition.items() for offset in range(count // 2)}
    assert {(a["partition"], a["offset"]) for a in acks if a["status"] == "ok"} == first_load


def test_a_cobsinc_queue_runs_both_loads(site: LeaseSite, portfolio: Path) -> None:
    site.profile(first_s=0, then_s=0, batch_size=5)
    publish(site, SYNC, portfolio)
    publish(site, SYNC, portfolio)
    site.farm("farm-a", 2)

    site.wait_acked(SYNC, 2 * CLIENTS, 60)

    assert set(runs_per_key(site.runs()).values()) == {2}
    assert statuses(site, SYNC) == {"ok": 2 * CLIENTS}
