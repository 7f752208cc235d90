"""A site with every state the screen shows at once, arranged over HTTP as producers and farms would: a queue
running on a farm that reports its slots, one finished, one whose every attempt fails, a paused one and one
without a worker."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from tests.dashboard.site import BAIXA, BUREAU, SYNC, complete, lease, publish, queue

#: A queue whose every task fails, with this detail.
FAILING = "MULTCOB05.1190.IMPORTACAO.ENRIQUECE"
FAILURE = "timeout ao consultar o bureau (30 s)"
#: A queue no profile or setting gives a worker.
ORPHAN = "MULTCOB07.1200.IMPORTACAO.SEM_WORKER"
FARM = "farm-a"
#: The slot the running task is reported on, its progress and memory.
SLOT_DONE, SLOT_TOTAL, SLOT_RSS = 12, 30, 48 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class BusySite:
    farm_id: str
    running: dict[str, Any]


def fail(api: httpx.Client, task: dict[str, Any]) -> None:
    """Report every message of ``task`` for another attempt, saying why."""
    response = api.post(f"/api/tasks/{task['task_id']}/complete", json={"default": "retry", "detail": FAILURE})
    assert response.status_code == 200, response.text


def arrange_busy_site(api: httpx.Client) -> BusySite:
    """SYNC finished (5 ok), FAILING's 4 messages failed once, BUREAU's 30 running on slot 0 of ``farm-a`` (4
    slots, the last kept for urgent work) which reports its progress, BAIXA paused, ORPHAN without a worker."""
    publish(api, SYNC, 5)
    publish(api, FAILING, 4)
    publish(api, BAIXA, 12)
    assert api.post(f"/api/queues/{BAIXA}/pause").status_code == 200
    assert api.post(f"/api/queues/{FAILING}/priority", json={"priority": 9}).status_code == 200
    body = {"name": FARM, "labels": {"os": "windows"}, "slots": 4, "urgent_slots": 1, "urgent_priority": 8}
    response = api.post("/api/farms/register", json=body)
    assert response.status_code == 200, response.text
    farm_id: str = response.json()["farm_id"]
    [failing] = lease(api, farm_id, [0])  # priority 9 first
    assert failing["topic"] == FAILING, failing
    fail(api, failing)
    while queue(api, SYNC)["pending"]:  # COBSINC's tasks are small: one message each
        [sync] = lease(api, farm_id, [0])
        assert sync["topic"] == SYNC, sync
        complete(api, sync)
    publish(api, BUREAU, 30)
    assert api.post(f"/api/queues/{FAILING}/pause").status_code == 200  # keeps it failing, not leased again
    [running] = lease(api, farm_id, [0])
    assert running["topic"] == BUREAU, running
    assert api.post(f"/api/queues/{FAILING}/resume").status_code == 200
    publish(api, ORPHAN, 7, worker=False)
    heartbeat(api, farm_id, running["task_id"])
    return BusySite(farm_id=farm_id, running=running)


def heartbeat(api: httpx.Client, farm_id: str, task_id: str) -> None:
    """``farm_id`` reports its slot 0 running ``task_id`` with its progress and memory, the others idle."""
    slots: list[dict[str, Any]] = [
        {
            "index": 0,
            "state": "running",
            "task_id": task_id,
            "done": SLOT_DONE,
            "total": SLOT_TOTAL,
            "rss_bytes": SLOT_RSS,
        }
    ]
    slots += [{"index": index, "state": "idle"} for index in (1, 2, 3)]
    response = api.post(f"/api/farms/{farm_id}/heartbeat", json={"slots": slots})
    assert response.status_code == 200, response.text
