"""Two coordinators on one PostgreSQL store, over real HTTP: the standby answers 503 naming the leader,
``/healthz`` tells them apart, ``/api/status`` says who leads, and clients given both follow the leader."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.coordinator.server import RunningCoordinator
from tests.services import fresh_postgres_schema
from tests.waiting import wait_until
from xtreaming.client import CoordinatorClient
from xtreaming.defaults import DEFAULT_LEADER_LEASE_S
from xtreaming.localhost import free_port

pytestmark = pytest.mark.postgres

#: The default lease. Both coordinators run in this test process: a stall of the whole process longer than the lease
#: (a loaded CI machine) lapses the leader's lead, and the standby may rightly take over before the leader renews, in
#: the middle of a test that asks each which it is. No test here waits for a lease to lapse (a stopped leader lets go
#: of the lead: the standby takes over at its next look, a third of the lease later), so a long one costs nothing.
LEASE_S = DEFAULT_LEADER_LEASE_S


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[RunningCoordinator, RunningCoordinator]]:
    with fresh_postgres_schema() as database_url:
        first = RunningCoordinator(tmp_path, database_url=database_url, leader_lease_s=LEASE_S).start()
        second = RunningCoordinator(tmp_path, database_url=database_url, leader_lease_s=LEASE_S).start()
        try:
            yield first, second
        finally:
            second.stop()
            first.stop()


def test_the_standby_answers_503_naming_the_leader_and_health_tells_them_apart(
    pair: tuple[RunningCoordinator, RunningCoordinator],
) -> None:
    leader, standby = pair

    refused = httpx.get(f"{standby.url}/api/queues")
    health = httpx.get(f"{standby.url}/healthz")
    leader_health = httpx.get(f"{leader.url}/healthz")
    status = httpx.get(f"{leader.url}/api/status").json()

    assert refused.status_code == 503
    assert refused.json()["detail"] == f"this coordinator is a standby, not the leader: the leader is at {leader.url}"
    assert refused.json()["leader"]["url"] == leader.url
    assert refused.headers["x-xtreaming-leader"] == leader.url
    assert (health.status_code, health.json()["status"]) == (503, "standby")
    assert (leader_health.status_code, leader_health.json()["status"]) == (200, "leader")
    assert (status["leader"]["url"], status["leader"]["epoch"]) == (leader.url, 1)
    assert status["leader"]["since"] is not None


def test_a_client_given_several_coordinators_follows_the_leader(
    pair: tuple[RunningCoordinator, RunningCoordinator],
) -> None:
    leader, standby = pair
    nobody = f"http://127.0.0.1:{free_port()}"

    with CoordinatorClient(f"{nobody},{standby.url}") as api:
        api.get("/api/queues")  # nobody answers there; the standby names the leader
        followed = api.url
        leader.stop()  # lets go of the lead: the standby takes over at its next look
        wait_until(lambda: httpx.get(f"{standby.url}/healthz").status_code == 200, 10, "the standby to take over")
        queues = api.get("/api/queues")  # the old leader is gone, nobody still is: the new leader answers

    assert followed == leader.url
    assert queues["items"] == []
    assert api.url == standby.url
    status = httpx.get(f"{standby.url}/api/status").json()
    assert (status["leader"]["url"], status["leader"]["epoch"]) == (standby.url, 2)
