"""The coordinator SIGKILLed or frozen (SIGSTOP) for longer than it takes to count a farm lost, while long
tasks run on one farm and another waits for work.

A farm that keeps its tasks running through the outage (``--keep-running-when-unreachable``) keeps
them: the coordinator counts no farm lost until it has listened for three heartbeat intervals since it
started or came back, so nothing is leased twice, every message runs once, and a key never runs in two
processes. A farm as it is by default stops its tasks before the coordinator could count it lost, and
they run again, once, after. A coordinator whose state store refuses writes still hears its farms: it
counts none lost, and none stops its tasks.
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.broker.refused_writes import writes_refused
from tests.e2e.journal import overlapping, runs_per_key
from tests.e2e.lease_site import LeaseSite, is_running
from tests.e2e.relay import Relay
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

TOPIC = "MULTCOB03.1189.IMPORTACAO.ATUALIZA_BUREAU"
HEARTBEAT_S = 0.5
#: The coordinator counts a farm lost after three silent intervals: the outage lasts longer.
OUTAGE_S = 5 * HEARTBEAT_S
#: Long enough for the tasks to outlast the outage and the coordinator's restart.
TASK_S = 10.0


@pytest.fixture
def site(tmp_path: Path) -> Iterator[LeaseSite]:
    site = LeaseSite(tmp_path, HEARTBEAT_S)
    yield site
    site.close()


def sigkill_then_restart(site: LeaseSite, relay: Relay, outage: Callable[[], None]) -> None:
    site.coordinator.kill()
    outage()
    site.coordinator.start()
    site.wait_ready()


def sigstop_then_sigcont(site: LeaseSite, relay: Relay, outage: Callable[[], None]) -> None:
    """Frozen, and the farm's requests of the meantime lost with the network: the coordinator looks at its
    farms first when it runs again (else the farm's requests, queued, may come first)."""
    relay.cut()
    site.coordinator.signal(signal.SIGSTOP)
    outage()
    site.coordinator.signal(signal.SIGCONT)
    site.call("GET", "/api/farms")  # answered once it has looked at its farms
    relay.heal()


@pytest.mark.parametrize("fault", [sigkill_then_restart, sigstop_then_sigcont], ids=["sigkill", "sigstop"])
def test_tasks_kept_running_through_a_long_coordinator_outage_run_once_and_never_overlap(
    site: LeaseSite, relay: Relay, fault: Callable[[LeaseSite, Relay, Callable[[], None]], None]
) -> None:
    site.profile(first_s=TASK_S, then_s=0, batch_size=5)
    site.publish(TOPIC, 10)
    farm = site.farm_via("farm-a", 2, relay.url, "--keep-running-when-unreachable")
    wait_until(lambda: site.runs_once(10), 20, "farm-a's two tasks to start")
    down = time.monotonic()

    def outage() -> None:  # the fault itself lasts OUTAGE_S
        wait_until(lambda: time.monotonic() - down >= OUTAGE_S, OUTAGE_S + 5, f"a {OUTAGE_S:g} s outage")

    fault(site, relay, outage)
    site.farm("farm-b", 2)  # asks for work at once: it would take at once whatever was leased again
    acks = site.wait_acked(TOPIC, 10, timeout_s=30)
    runs = site.runs()
    logged = said(site.coordinator.output() + farm.output())  # on failure: what led to it

    assert overlapping(runs) == [], logged
    assert set(runs_per_key(runs).values()) == {1}, f"a message ran twice; {logged}"
    assert Counter((a["status"], a["attempts"], a["farm"]) for a in acks) == {("ok", 1, "farm-a"): 10}, logged
    assert "stopping the running tasks" not in farm.output()


def said(output: str) -> str:
    """The lines of a log that tell why a farm's tasks were taken from it: a farm lost, a task released or expired,
    a pause noticed, a farm unreachable or restarted."""
    words = ("lost", "released", "expired", "did not run", "unreachable", "restarted", "no longer leases")
    return "logged:\n" + "\n".join(line for line in output.splitlines() if any(w in line for w in words))


def test_by_default_a_farm_stops_its_tasks_when_the_coordinator_is_away_and_they_run_once_more_after(
    site: LeaseSite,
) -> None:
    site.profile(first_s=TASK_S, then_s=0, batch_size=5)
    site.publish(TOPIC, 10)
    farm = site.farm("farm-a", 4)
    first = wait_until(lambda: site.runs_once(10), 20, "two tasks to start")
    workers = {run.pid for run in first}

    site.coordinator.kill()
    down = time.monotonic()
    gone_ns = site.wait_gone(workers, 5, "the farm to stop its workers")
    stopped_after_s = time.monotonic() - down
    wait_until(lambda: time.monotonic() - down >= OUTAGE_S, OUTAGE_S + 5, f"a {OUTAGE_S:g} s outage")
    site.coordinator.start()
    site.wait_ready()
    acks = site.wait_acked(TOPIC, 10, timeout_s=30)
    runs = site.runs()

    # Two intervals after the last answer, which came at most an interval before the coordinator died.
    assert stopped_after_s < 2.5 * HEARTBEAT_S + 0.5
    assert "stopping the running tasks before it counts this farm lost" in farm.output()
    assert overlapping(runs, dict.fromkeys(workers, gone_ns)) == []
    assert set(runs_per_key(runs).values()) == {2}
    assert Counter((a["status"], a["attempts"]) for a in acks) == {("ok", 2): 10}  # reported for retry


def test_a_state_store_refusing_writes_neither_loses_a_farm_nor_makes_it_stop_its_tasks(site: LeaseSite) -> None:
    site.profile(first_s=TASK_S, then_s=0, batch_size=5)
    site.publish(TOPIC, 10)
    farm = site.farm("farm-a", 2)
    first = wait_until(lambda: site.runs_once(10), 20, "two tasks to start")
    workers = {run.pid for run in first}

    start = time.monotonic()
    with writes_refused(site.coordinator.pid):  # its disk takes no write: neither the store nor the log
        wait_until(lambda: time.monotonic() - start >= OUTAGE_S, OUTAGE_S + 5, f"a {OUTAGE_S:g} s fault")
        alive = all(is_running(pid) for pid in workers)
        lost = site.farm_row("farm-a")["lost"]
    acks = site.wait_acked(TOPIC, 10, timeout_s=30)
    runs = site.runs()

    assert alive, "the farm stopped its tasks"
    assert not lost
    assert "stopping the running tasks" not in farm.output()
    assert set(runs_per_key(runs).values()) == {1}, "a message ran twice"
    assert Counter((a["status"], a["attempts"]) for a in acks) == {("ok", 1): 10}
