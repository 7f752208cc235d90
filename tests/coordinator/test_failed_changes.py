"""A change cut short by a real fault changes nothing for good: the embedded log refusing the ACK
append of a completion (its disk refusing writes), then taking writes again. The completion fails with
BrokerUnavailable, its task stays leased (memory is rebuilt from the store, which still has it), the
farm's retry is accepted, and every message is ACKed once."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.broker.refused_writes import writes_refused
from tests.coordinator.test_service import TOPIC, Site, farm, keys, ok
from xtreaming.coordinator.records import WorkSettings
from xtreaming.coordinator.service import Assignment, Settled
from xtreaming.errors import BrokerUnavailable

BATCH = 5
MESSAGES = 3 * BATCH


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    """The embedded log and SQLite state, with ``MESSAGES`` published in tasks of ``BATCH``."""
    site = Site(f"sqlite:///{tmp_path}/log.db", f"sqlite:///{tmp_path}/state.db")
    site.store.add_profile(".*", WorkSettings(batch_size=BATCH))
    site.publish(TOPIC, keys(MESSAGES))
    yield site
    site.store.close()
    site.broker.close()


def complete(site: Site, farm_id: str, task: Assignment) -> Settled:
    return site.coordinator.complete(task.task_id, ok(task))


def settle_and_lease(site: Site, farm_id: str, task: Assignment) -> Settled:
    [settled], _ = site.coordinator.settle_and_lease(farm_id, [(task.task_id, ok(task))], [0])
    return settled


@pytest.mark.parametrize("report", [complete, settle_and_lease])
def test_a_completion_the_log_refuses_is_accepted_when_sent_again_and_each_message_is_acked_once(
    site: Site, report: Callable[[Site, str, Assignment], Settled]
) -> None:
    farm_id = farm(site, slots=3)
    first, second, third = site.coordinator.lease(farm_id, [0, 1, 2])
    report(site, farm_id, first)  # the ACK topic exists: what the disk refuses next is an ACK append

    with writes_refused():
        for _ in range(2):  # the farm keeps its result and sends it again while the disk is still full
            with pytest.raises(BrokerUnavailable, match="disk I/O error"):
                report(site, farm_id, second)
        leased_while_refused = {t.id for t in site.store.active_tasks()}
        shown_while_refused = site.coordinator.broker_health.error
    again = report(site, farm_id, second)
    last = report(site, farm_id, third)

    assert leased_while_refused == {second.task_id, third.task_id}
    assert "disk I/O error" in (shown_while_refused or "")  # the status said so at once
    assert (again.accepted, again.ok, last.accepted, last.ok) == (True, BATCH, True, BATCH)
    acked = Counter(a["offset"] for a in site.results(f"{TOPIC}.ACK"))
    assert acked == dict.fromkeys(range(MESSAGES), 1)
    [row], _ = site.coordinator.figures()
    assert (row.consumed, row.pending, row.in_flight) == (MESSAGES, 0, 0)
