"""A worker for the queues of tests that play the farm themselves: a queue with none is never scheduled."""

from __future__ import annotations

from typing import Final

import httpx

from xtreaming.coordinator.service import Coordinator

#: Never run: these tests lease and report over the API or in process, as a farm would.
WORKER: Final = ("worker.exe", "--entrada", "{input}")


def give_workers(coordinator: Coordinator) -> None:
    """Set ``WORKER`` on every queue that has neither a command nor a handler (its other settings stay)."""
    for queue in coordinator.store.list_queues():
        if not (queue.settings.command or queue.settings.handler):
            coordinator.controls.configure_queue(queue.topic, "test", {"command": WORKER})


def give_workers_over(api: httpx.Client) -> None:
    """``give_workers`` through the API (a coordinator with no tokens, or ``api`` holding an admin's)."""
    for row in api.get("/api/queues").raise_for_status().json()["items"]:
        if row["state"] == "no-worker":
            api.patch(f"/api/queues/{row['topic']}/settings", json={"command": list(WORKER)}).raise_for_status()
