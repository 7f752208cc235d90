"""End to end on the production path: Kafka (a tansu broker of the test's own) and PostgreSQL (a fresh
schema), the coordinator as its own process (``xtreaming coordinator``), real ``xtreaming farm``s."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.broker.contract import read_all
from tests.e2e.coordinator_process import CoordinatorProcess
from tests.farm.builders import worker
from tests.services import Tansu, fresh_postgres_schema
from tests.waiting import wait_until
from xtreaming.broker import open_broker

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

QUEUES = {"MULTCOB02.1186.IMPORTACAO.MAILING": 3000, "MULTCOB03.1189.IMPORTACAO.ATUALIZA_BUREAU": 3000}


class KafkaSite:
    """A coordinator process on Kafka + PostgreSQL that a test may SIGKILL and start again, and farm processes."""

    def __init__(self, root: Path, broker_url: str, database_url: str) -> None:
        self.root = root
        self.broker_url = broker_url
        self.coordinator = CoordinatorProcess(root, broker_url, database_url)
        self.url, self.api = self.coordinator.url, self.coordinator.api
        self.farms: list[subprocess.Popen[bytes]] = []

    def start_coordinator(self) -> None:
        self.coordinator.start()

    def kill_coordinator(self) -> None:
        self.coordinator.kill()

    def farm(self, name: str, slots: int) -> None:
        command = [sys.executable, "-m", "xtreaming", "farm", "--coordinator", self.url, "--name", name]
        command += ["--slots", str(slots), "--work-dir", str(self.root / name), "--lease-wait", "0.5"]
        with (self.root / f"{name}.log").open("wb") as log:
            env = {**os.environ, "TEST_PIDS_DIR": str(self.root)}
            self.farms.append(subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT))

    def call(self, method: str, path: str, body: Any = None) -> Any:
        return self.coordinator.call(method, path, body)

    def publish(self, topic: str, count: int, first: int = 0) -> None:
        messages = [
            {"key": f"{i:011d}", "value": json.dumps({"cpf": f"{i:011d}"})} for i in range(first, first + count)
        ]
        self.call("POST", f"/api/topics/{topic}/messages", {"messages": messages, "partitions": 4})

    def consumed(self, topic: str) -> int:
        try:
            response = self.api.get(f"/api/queues/{topic}")
        except httpx.TransportError:
            return 0
        return int(response.json()["consumed"]) if response.status_code == 200 else 0

    def wait_consumed(self, topic: str, count: int, timeout_s: float) -> None:
        wait_until(lambda: self.consumed(topic) >= count, timeout_s, f"{count} messages of {topic} finished")

    def acks(self, topic: str) -> list[dict[str, Any]]:
        log = open_broker(self.broker_url)
        try:
            return [json.loads(m.value) for ms in read_all(log, f"{topic}.ACK").values() for m in ms]
        finally:
            log.close()

    def close(self) -> None:
        for process in self.farms:
            if process.poll() is None:
                process.kill()
            process.wait()
        self.coordinator.close()


@pytest.fixture
def site(tmp_path: Path, fresh_tansu: Tansu) -> Iterator[KafkaSite]:
    with fresh_postgres_schema() as database_url:
        site = KafkaSite(tmp_path, fresh_tansu.url, database_url)
        try:
            site.start_coordinator()
            yield site
        finally:
            site.close()


def test_two_farms_finish_two_queues_on_kafka_and_postgres_each_message_acked_once(site: KafkaSite) -> None:
    site.call("POST", "/api/profiles", {"pattern": ".*", "settings": {"command": worker("ok"), "batch_size": 250}})
    for number, (topic, count) in enumerate(QUEUES.items()):
        site.publish(topic, count, first=number * 10_000)
    site.farm("farm-poa", slots=2)
    site.farm("farm-sao", slots=2)

    for topic, count in QUEUES.items():
        site.wait_consumed(topic, count, timeout_s=60)

    for topic, count in QUEUES.items():
        acks = site.acks(topic)
        assert len(acks) == count
        assert len({(a["partition"], a["offset"]) for a in acks}) == count
        assert Counter(a["status"] for a in acks) == {"ok": count}
    assert {a["farm"] for topic in QUEUES for a in site.acks(topic)} == {"farm-poa", "farm-sao"}
    log = open_broker(site.broker_url)
    try:
        wait_until(
            lambda: {topic: sum(log.committed("xtreaming", topic).values()) for topic in QUEUES} == QUEUES,
            10,
            f"the coordinator's group to commit every message's offset ({QUEUES})",
        )
    finally:
        log.close()


def test_a_coordinator_killed_mid_run_loses_nothing_and_redoes_at_most_what_was_in_flight(site: KafkaSite) -> None:
    topic, count, batch, slots = "MULTCOB03.1189.IMPORTACAO.ATUALIZA_BUREAU", 4000, 100, 4
    site.call(
        "POST",
        "/api/profiles",
        {"pattern": ".*", "settings": {"command": worker("sleep", "0.05"), "batch_size": batch}},
    )
    site.call("PATCH", "/api/bases/MULTCOB03", {"max_workers": slots})
    site.publish(topic, count)
    site.farm("farm-a", slots=2)
    site.farm("farm-b", slots=2)
    wait_until(lambda: site.consumed(topic) >= count // 4, 60, "a quarter of the messages finished")

    finished_before_kill = site.consumed(topic)
    site.kill_coordinator()
    site.start_coordinator()

    wait_until(lambda: site.consumed(topic) >= count, 90, "every message finished after the restart")
    acks = site.acks(topic)
    positions = Counter((a["partition"], a["offset"]) for a in acks)
    assert len(positions) == count, "a message was lost"
    duplicates = len(acks) - count
    assert duplicates <= slots * batch, f"{duplicates} messages redone: more than the {slots} tasks in flight"
    assert site.consumed(topic) == count
    assert finished_before_kill < count, "the kill came too late to prove anything"
