"""A broker outage mid-run (tansu frozen with SIGSTOP, then resumed) against Kafka and PostgreSQL:
the API keeps answering and shows the broker down, and the run finishes without losing a message."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.broker.contract import read_all
from tests.coordinator.server import RunningCoordinator
from tests.coordinator.test_api import TOPIC, queue_row, register
from tests.coordinator.workers import WORKER
from tests.services import Tansu, fresh_postgres_schema
from tests.waiting import wait_until
from xtreaming.broker import Message, open_broker

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

MESSAGES = 2000
BATCH = 100
#: How long one broker call may wait (the URL's ``timeout_s``): the first call that finds the broker
#: frozen holds the coordinator that long, so a status request may wait as much once.
BROKER_TIMEOUT_S = 2
#: Once the broker is known down, calls fail at once but for a short probe now and then.
STATUS_WHILE_KNOWN_DOWN_S = 1.0


class ScriptedFarm(threading.Thread):
    """One slot: lease, "work" a moment, complete; a refused or failed request is retried later,
    as the real farm keeps its results in an outbox until the coordinator takes them."""

    def __init__(self, url: str, farm_id: str) -> None:
        super().__init__(daemon=True)
        self.api = httpx.Client(base_url=url, timeout=10)
        self.farm_id = farm_id
        self.stop = threading.Event()
        self.refused = 0
        self.completed: list[dict[str, Any]] = []

    def run(self) -> None:
        waiting: list[str] = []
        while not self.stop.is_set():
            try:
                if waiting:
                    answer = self.api.post(f"/api/tasks/{waiting[0]}/complete", json={"default": "ok"})
                    if answer.status_code == 200:
                        self.completed.append(answer.json())
                        waiting.pop(0)
                        continue
                else:
                    answer = self.api.post(f"/api/farms/{self.farm_id}/lease", json={"slots": [0], "wait_s": 0.2})
                    if answer.status_code == 200:
                        waiting += [task["task_id"] for task in answer.json()["tasks"]]
                        self.stop.wait(0.02)
                        continue
                assert answer.status_code == 503, answer.text
            except httpx.HTTPError:
                pass
            self.refused += 1
            self.stop.wait(0.1)
        self.api.close()


@pytest.fixture
def server(tmp_path: Path, fresh_tansu: Tansu) -> Iterator[RunningCoordinator]:
    with fresh_postgres_schema() as database_url:
        running = RunningCoordinator(
            tmp_path, broker_url=f"{fresh_tansu.url}?timeout_s={BROKER_TIMEOUT_S}", database_url=database_url
        ).start()
        yield running
        running.stop()


def ack(message: Message) -> dict[str, Any]:
    record: dict[str, Any] = json.loads(message.value)
    return record


def test_a_broker_outage_is_shown_and_the_run_resumes_without_loss(
    server: RunningCoordinator, fresh_tansu: Tansu
) -> None:
    api = httpx.Client(base_url=server.url, timeout=10)
    settings = {"batch_size": BATCH, "command": list(WORKER)}
    assert api.post("/api/profiles", json={"pattern": ".*", "settings": settings}).status_code == 201
    body = {
        "messages": [{"key": f"{i:011d}", "value": f"<cliente n='{i}'/>"} for i in range(MESSAGES)],
        "partitions": 2,
    }
    published = api.post(f"/api/topics/{TOPIC}/messages", json=body)
    assert published.status_code == 200, published.text
    farm = ScriptedFarm(server.url, register(api))
    farm.start()
    wait_until(lambda: queue_row(api)["consumed"] >= 3 * BATCH, 30, "some progress")

    fresh_tansu.pause()
    slowest_s = slowest_known_down_s = 0.0
    down: dict[str, Any] = {}
    try:
        outage_ends = time.monotonic() + 2 * BROKER_TIMEOUT_S + 1
        while time.monotonic() < outage_ends:
            started = time.monotonic()
            status = api.get("/api/status")
            took_s = time.monotonic() - started
            slowest_s = max(slowest_s, took_s)
            if down:
                slowest_known_down_s = max(slowest_known_down_s, took_s)
            assert status.status_code == 200
            if not status.json()["broker_ok"]:
                down = status.json()
            time.sleep(0.1)
        consumed_during_outage = queue_row(api)["consumed"]
    finally:
        fresh_tansu.resume()
    wait_until(lambda: queue_row(api)["consumed"] == MESSAGES, 30, "the run to finish")
    wait_until(lambda: api.get("/api/status").json()["broker_ok"], 30, "the broker to be shown up")
    farm.stop.set()
    farm.join(timeout=10)
    api.close()

    assert down, "the status never showed the broker down"
    assert "kafka 127.0.0.1" in down["broker_error"]
    assert slowest_s < BROKER_TIMEOUT_S + 1, f"a status request took {slowest_s:.1f} s during the outage"
    assert slowest_known_down_s < STATUS_WHILE_KNOWN_DOWN_S, f"status took {slowest_known_down_s:.1f} s"
    assert consumed_during_outage < MESSAGES, "the outage came too late to prove anything"
    assert farm.refused > 0, "no farm request met the outage"
    log = open_broker(server.settings().broker_url)
    found = Counter(
        (a["partition"], a["offset"]) for ms in read_all(log, f"{TOPIC}.ACK").values() for a in map(ack, ms)
    )
    log.close()
    assert len(found) == MESSAGES, "a message has no ACK"
    duplicates = sum(found.values()) - MESSAGES
    assert duplicates <= BATCH, f"{duplicates} duplicate ACKs: more than the one task in flight"
