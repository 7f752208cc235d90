"""One message per key across loads, end to end: the same portfolio published twice with ``xtreaming publish``
(processes writing straight to the log) to a coordinator process with a farm process; each client's work is
done once and the second copies are ACKed "duplicate", however far behind the read-ahead the second load
is, and across a SIGKILL of the coordinator between the loads or while the first load runs."""

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
#: A portfolio far larger than the read-ahead (batches of 100 on 4 partitions: 64 messages a partition).
LARGE = 5_000


@pytest.fixture
def site(tmp_path: Path) -> Iterator[LeaseSite]:
    site = LeaseSite(tmp_path, HEARTBEAT_S)
    yield site
    site.close()


@pytest.fixture
def patient_site(tmp_path: Path) -> Iterator[LeaseSite]:
    """A site whose farms wait out a coordinator restart (heartbeats of 5 s) rather than stop their tasks."""
    site = LeaseSite(tmp_path, 5.0)
    yield site
    site.close()


def write_portfolio(csv: Path, clients: int) -> Path:
    csv.write_text("cpf;nome\n" + "".join(f"{10_000_000_000 + i};Cliente {i}\n" for i in range(clients)))
    return csv


@pytest.fixture
def portfolio(tmp_path: Path) -> Path:
    return write_portfolio(tmp_path / "carteira.csv", CLIENTS)


@pytest.fixture
def large_portfolio(tmp_path: Path) -> Path:
    return write_portfolio(tmp_path / "carteira-grande.csv", LARGE)


def publish(site: LeaseSite, topic: str, csv: Path, clients: int = CLIENTS) -> None:
    """``xtreaming publish`` as an operator runs it, straight to the site's log."""
    result = subprocess.run(
        [sys.executable, "-m", "xtreaming", "publish", topic, "--csv", str(csv)],
        env=site.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert f"published {clients:,} messages" in result.stdout


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


@pytest.mark.slow
def test_a_portfolio_far_larger_than_the_read_ahead_published_twice_is_done_once_and_a_third_time_again(
    site: LeaseSite, large_portfolio: Path
) -> None:
    site.profile(first_s=0, then_s=0, batch_size=100)
    publish(site, IMPORT, large_portfolio, LARGE)
    publish(site, IMPORT, large_portfolio, LARGE)
    site.farm("farm-a", 2)
    site.wait_acked(IMPORT, 2 * LARGE, 120)

    assert set(runs_per_key(site.runs()).values()) == {1}
    assert statuses(site, IMPORT) == {"ok": LARGE, "duplicate": LARGE}

    publish(site, IMPORT, large_portfolio, LARGE)  # after both were done: new work
    site.wait_acked(IMPORT, 3 * LARGE, 120)

    assert set(runs_per_key(site.runs()).values()) == {2}
    assert statuses(site, IMPORT) == {"ok": 2 * LARGE, "duplicate": LARGE}


@pytest.mark.slow
def test_a_coordinator_killed_while_the_first_of_two_large_loads_runs_loses_nothing_and_doubles_nothing(
    patient_site: LeaseSite, large_portfolio: Path
) -> None:
    site = patient_site
    # Each first run of a client lasts 2 s: the first tasks still run when the coordinator is killed.
    # Batches of 250: 125 messages a partition read ahead, a tenth of the load.
    site.profile(first_s=2, then_s=0, batch_size=250)
    publish(site, IMPORT, large_portfolio, LARGE)
    publish(site, IMPORT, large_portfolio, LARGE)
    site.farm("farm-a", 2)
    wait_until(lambda: site.runs_once(1), 30, "the first task to start")

    site.restart_coordinator()  # SIGKILL: the index of keys is rebuilt from the watermarks
    acks = site.wait_acked(IMPORT, 2 * LARGE, 180)

    assert set(runs_per_key(site.runs()).values()) == {1}
    assert statuses(site, IMPORT) == {"ok": LARGE, "duplicate": LARGE}
    per_partition = Counter(a["partition"] for a in acks)  # each client's two copies share a partition
    first_load = {(p, offset) for p, count in per_partition.items() for offset in range(count // 2)}
    assert {(a["partition"], a["offset"]) for a in acks if a["status"] == "ok"} == first_load
