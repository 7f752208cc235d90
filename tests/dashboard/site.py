"""Arranging a coordinator's state over HTTP, as producers and farms would: queues, farms, tasks."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from tests.coordinator.workers import give_workers_over

#: Three queues as on the design's examples: an import, the urgent sync lane, and a paused import.
BUREAU = "MULTCOB03.1189.IMPORTACAO.ATUALIZA_BUREAU"
SYNC = "MULTCOB02.1186.COBSINC.LOCALIZACAO"
BAIXA = "MULTCOB09.1186.IMPORTACAO.BAIXA_SQL"


def publish(api: httpx.Client, topic: str, count: int, first: int = 0, *, worker: bool = True) -> None:
    """``count`` messages on ``topic``; with ``worker``, its queue gets one (an admin's call)."""
    messages = [{"key": f"{first + i:011d}", "value": f"<cliente n='{first + i}'/>"} for i in range(count)]
    response = api.post(f"/api/topics/{topic}/messages", json={"messages": messages, "partitions": 1})
    assert response.status_code == 200, response.text
    if worker:
        give_workers_over(api)  # a queue with no worker is never scheduled; these tests lease as its farm


def register(api: httpx.Client, name: str = "farm-a", slots: int = 4, **labels: str) -> str:
    body = {"name": name, "labels": labels or {"os": "windows"}, "slots": slots}
    response = api.post("/api/farms/register", json=body)
    assert response.status_code == 200, response.text
    farm_id: str = response.json()["farm_id"]
    return farm_id


def lease(api: httpx.Client, farm_id: str, slots: list[int]) -> list[dict[str, Any]]:
    response = api.post(f"/api/farms/{farm_id}/lease", json={"slots": slots, "wait_s": 0})
    assert response.status_code == 200, response.text
    tasks: list[dict[str, Any]] = response.json()["tasks"]
    return tasks


def complete(api: httpx.Client, task: dict[str, Any]) -> None:
    response = api.post(f"/api/tasks/{task['task_id']}/complete", json={"default": "ok"})
    assert response.status_code == 200, response.text


def queue(api: httpx.Client, topic: str) -> dict[str, Any]:
    response = api.get(f"/api/queues/{topic}")
    assert response.status_code == 200, response.text
    row: dict[str, Any] = response.json()
    return row


def base(api: httpx.Client, name: str) -> dict[str, Any]:
    response = api.get(f"/api/bases/{name}")
    assert response.status_code == 200, response.text
    row: dict[str, Any] = response.json()
    return row


def arrange_three_queues(api: httpx.Client) -> list[dict[str, Any]]:
    """30 messages on BUREAU, 5 on SYNC, 12 on BAIXA (paused); one farm runs one SYNC task (priority 8)."""
    publish(api, BUREAU, 30)
    publish(api, SYNC, 5)
    publish(api, BAIXA, 12)
    assert api.post(f"/api/queues/{BAIXA}/pause").status_code == 200
    return lease(api, register(api), [0])


@contextmanager
def heartbeating(url: str, name: str, interval_s: float = 0.05) -> Iterator[str]:
    """A farm registered as ``name`` and kept alive from a thread while the block runs; yields its id."""
    stop = threading.Event()
    with httpx.Client(base_url=url, timeout=30) as api:
        farm_id = register(api, name)

        def beat() -> None:
            while not stop.wait(interval_s):
                api.post(f"/api/farms/{farm_id}/heartbeat", json={"slots": []})

        thread = threading.Thread(target=beat, name=f"heartbeat-{name}", daemon=True)
        thread.start()
        try:
            yield farm_id
        finally:
            stop.set()
            thread.join(timeout=5)
