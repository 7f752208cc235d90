"""A farm cut off from the coordinator by the network (a relay between them stops passing anything,
as when packets are dropped) while the coordinator carries on and another farm waits for work.

By default the cut-off farm stops its tasks before the coordinator counts it lost and leases them to
the other farm: a key never runs in two processes. A farm that keeps its tasks running instead
(``--keep-running-when-unreachable``) is told by its first heartbeat after the cut heals that the
coordinator gave them up, and kills them there and then. A lease whose answer is lost on the way
back leaves the coordinator counting a task the farm never got: the farm's heartbeats show its
slots idle, and the task is released, its messages on the same attempt.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from tests.e2e.journal import overlapping
from tests.e2e.lease_site import LeaseSite, is_running
from tests.e2e.relay import Relay
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

TOPIC = "MULTCOB03.1189.IMPORTACAO.ATUALIZA_BUREAU"
HEARTBEAT_S = 1.0
LOST_S = 3 * HEARTBEAT_S


@pytest.fixture
def site(tmp_path: Path) -> Iterator[LeaseSite]:
    site = LeaseSite(tmp_path, HEARTBEAT_S)
    yield site
    site.close()


def logged_at(output: str, text: str) -> datetime:
    """When a process logged the first line containing ``text`` (its log lines start with the time)."""
    [line] = [line for line in output.splitlines() if text in line][:1]
    stamp = re.match(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})", line)
    assert stamp, f"no time on the line {line!r}"
    return datetime.strptime(stamp.group(1), "%Y-%m-%d %H:%M:%S,%f")


def test_a_partitioned_farm_stops_its_tasks_before_the_coordinator_leases_them_elsewhere(
    site: LeaseSite, relay: Relay
) -> None:
    site.profile(first_s=60, then_s=0, batch_size=5)
    site.publish(TOPIC, 10)
    farm_a = site.farm_via("farm-a", 2, relay.url)
    first = wait_until(lambda: site.runs_once(10), 20, "farm-a's two tasks to start")
    workers = {run.pid for run in first}
    farm_b = site.farm("farm-b", 2)
    wait_until(lambda: " registered at " in farm_b.output(), 20, "farm-b to register")

    relay.cut()
    gone_ns = site.wait_gone(workers, 4 * LOST_S, "farm-a to stop its workers")
    acks = site.wait_acked(TOPIC, 10, timeout_s=30)
    runs = site.runs()

    assert overlapping(runs, dict.fromkeys(workers, gone_ns)) == []
    assert Counter((a["status"], a["farm"]) for a in acks) == {("ok", "farm-b"): 10}
    stopped = logged_at(farm_a.output(), "stopping the running tasks before it counts this farm lost")
    last_heard = datetime.fromisoformat(site.farm_row("farm-a")["last_heartbeat_at"])
    assert site.farm_row("farm-a")["lost"]
    # The coordinator counts the farm lost LOST_S after it last heard it; the farm stopped before.
    assert (stopped - last_heard.astimezone().replace(tzinfo=None)).total_seconds() < LOST_S


def test_a_farm_back_from_a_partition_kills_the_tasks_the_coordinator_gave_up_at_its_first_heartbeat(
    site: LeaseSite, relay: Relay
) -> None:
    site.profile(first_s=60, then_s=0, batch_size=5)
    site.publish(TOPIC, 10)
    farm = site.farm_via("farm-a", 2, relay.url, "--keep-running-when-unreachable")
    first = wait_until(lambda: site.runs_once(10), 20, "two tasks to start")
    workers = {run.pid for run in first}

    relay.cut()
    wait_until(lambda: site.farm_row("farm-a")["lost"], 4 * LOST_S, "the coordinator to count farm-a lost")
    # "lost" in the farm listing is worked out as the listing is read; the farm's tasks are given up by the
    # coordinator's next background pass. A heartbeat that got through before that pass would find them still
    # leased to farm-a (rightly left running: nobody else has them), so heal only once they are given up: their
    # messages are no longer in flight (no other farm, and farm-a's slots are busy: nothing leases them again).
    wait_until(lambda: site.queue(TOPIC)["in_flight"] == 0, 4 * LOST_S, "the coordinator to give up farm-a's tasks")
    assert all(is_running(pid) for pid in workers)  # kept running, as asked
    relay.heal()
    # The first heartbeat through the healed link: one sent into the cut may wait out its timeout (an interval), the
    # next goes an interval later at most; then the kill, on a machine the CI loads. Still well before a restart.
    site.wait_gone(workers, 5 * HEARTBEAT_S, "farm-a to kill the tasks the coordinator gave up")
    acks = site.wait_acked(TOPIC, 10, timeout_s=30)

    assert "no longer leases task(s)" in farm.output()
    assert len(acks) == 10
    assert Counter(a["status"] for a in acks) == {"ok": 10}


def test_a_task_whose_lease_answer_was_lost_is_released_when_heartbeats_show_the_slot_idle(
    site: LeaseSite, relay: Relay
) -> None:
    site.profile(first_s=0, then_s=0, batch_size=5)
    farm = site.farm_via("farm-a", 1, relay.url)
    wait_until(lambda: " registered at " in farm.output(), 20, "farm-a to register")

    relay.drop_answers()  # the farm's requests arrive, the answers do not
    site.publish(TOPIC, 5)
    wait_until(lambda: site.queue(TOPIC)["in_flight"] == 5, 10, "the task leased in an answer that is lost")
    leased = time.monotonic()
    wait_until(lambda: site.queue(TOPIC)["in_flight"] == 0, 5 * HEARTBEAT_S, "the task to be released")
    released_after_s = time.monotonic() - leased
    relay.heal()
    acks = site.wait_acked(TOPIC, 5, timeout_s=30)

    assert released_after_s < 4 * HEARTBEAT_S  # two heartbeats that leave it out, after it was an interval old
    assert "released (its farm's slot is not running it)" in site.coordinator.output()
    assert Counter((a["status"], a["attempts"], a["farm"]) for a in acks) == {("ok", 1, "farm-a"): 5}
