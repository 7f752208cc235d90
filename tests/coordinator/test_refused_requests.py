"""Requests carrying what the state store could not hold are refused with 422 before anything changes: a
lease for a slot the farm did not register (negative, past its slots, past 2^31, past 2^63), integers
past 64 bits in a heartbeat or a progress report. Through real HTTP, on SQLite state and on PostgreSQL
(whose slot column is 32-bit: such a lease used to fail with 500 once its task was made in memory)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.coordinator.server import RunningCoordinator
from tests.coordinator.test_api import TOPIC, lease, publish, queue_row, register
from tests.services import fresh_postgres_schema

MESSAGES = 10
#: Slot indexes no farm registered with 2 slots has; 2^31 does not fit PostgreSQL's slot column, 2^63
#: no 64-bit integer.
ABSURD_SLOTS = [-1, 2, 1024, 2**31, 10**12, 2**63]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[httpx.Client]:
    """A coordinator on the embedded log, its state on SQLite or PostgreSQL, with ``MESSAGES`` published."""
    with fresh_postgres_schema() if request.param == "postgres" else nullcontext("") as database_url:
        state = {"database_url": database_url} if database_url else {}
        server = RunningCoordinator(tmp_path, None, **state).start()
        try:
            with httpx.Client(base_url=server.url, timeout=30) as client:
                publish(client, TOPIC, [f"{i:011d}" for i in range(MESSAGES)])
                yield client
        finally:
            server.stop()


def picture(api: httpx.Client) -> tuple[Any, ...]:
    """What a refused request must leave as it was: the queue's figures and each farm's busy slots."""
    row = queue_row(api)
    farms = [(farm["id"], farm["busy"]) for farm in api.get("/api/farms").json()]
    return row["consumed"], row["pending"], row["in_flight"], row["workers"], farms


@pytest.mark.parametrize("slot", ABSURD_SLOTS)
def test_a_lease_for_a_slot_the_farm_does_not_have_is_refused_with_422_and_changes_nothing(
    api: httpx.Client, slot: int
) -> None:
    farm_id = register(api, slots=2)
    before = picture(api)

    refused = api.post(f"/api/farms/{farm_id}/lease", json={"slots": [slot], "wait_s": 0})

    assert refused.status_code == 422, refused.text
    assert picture(api) == before
    [task] = lease(api, farm_id, [0])  # the messages were never held: the next lease gets them all
    assert (task["slot"], task["messages"]["offsets"]) == (0, list(range(MESSAGES)))


def test_a_refused_lease_settles_none_of_the_completions_it_carries(api: httpx.Client) -> None:
    farm_id = register(api, slots=2)
    [task] = lease(api, farm_id, [0])
    completion = {"task_id": task["task_id"], "default": "ok"}
    before = picture(api)

    refused = api.post(f"/api/farms/{farm_id}/lease", json={"slots": [2], "wait_s": 0, "completions": [completion]})

    assert refused.status_code == 422, refused.text
    assert "farm 'farm-a' registered slots 0..1: it has no slot 2" in refused.text
    assert picture(api) == before
    answer = api.post(f"/api/farms/{farm_id}/lease", json={"slots": [0], "wait_s": 0, "completions": [completion]})
    assert answer.status_code == 200, answer.text
    assert [(s["accepted"], s["ok"]) for s in answer.json()["settled"]] == [(True, MESSAGES)]


@pytest.mark.parametrize("field", ["pid", "done", "total", "rss_bytes"])
def test_a_heartbeat_with_an_integer_past_64_bits_is_refused_with_422(api: httpx.Client, field: str) -> None:
    farm_id = register(api, slots=2)
    [task] = lease(api, farm_id, [0])
    slot = {"index": 0, "state": "running", "task_id": task["task_id"], "pid": 4242, "done": 1, "total": 10}
    slot["rss_bytes"] = 1 << 20

    refused = api.post(f"/api/farms/{farm_id}/heartbeat", json={"slots": [{**slot, field: 2**63}]})
    largest = api.post(f"/api/farms/{farm_id}/heartbeat", json={"slots": [{**slot, field: 2**63 - 1}]})

    assert refused.status_code == 422, refused.text
    assert field in refused.text
    assert largest.status_code < 400, largest.text


@pytest.mark.parametrize("field", ["done", "total"])
def test_a_progress_report_with_an_integer_past_64_bits_is_refused_with_422(api: httpx.Client, field: str) -> None:
    farm_id = register(api, slots=2)
    [task] = lease(api, farm_id, [0])
    progress = {"done": 1, "total": MESSAGES}

    refused = api.post(f"/api/tasks/{task['task_id']}/progress", json={**progress, field: 2**63})
    largest = api.post(f"/api/tasks/{task['task_id']}/progress", json={**progress, field: 2**63 - 1})

    assert refused.status_code == 422, refused.text
    assert largest.status_code == 200, largest.text
