"""A site for farm tests: a real coordinator over real HTTP, real ``xtreaming farm`` processes,
and readers of what the coordinator wrote to the log (``.ACK`` / ``.DLQ``)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import psutil

from tests.broker.contract import read_all
from tests.coordinator.server import RunningCoordinator
from tests.waiting import wait_until
from xtreaming.broker import Message, open_broker
from xtreaming.config import Token
from xtreaming.farm.processes import isolated_group


class Farm:
    """An ``xtreaming farm`` process with its log file."""

    def __init__(self, site: Site, name: str, slots: int, labels: Mapping[str, str], env: Mapping[str, str]) -> None:
        self.name = name
        self.log = site.root / f"{name}.log"
        command = [sys.executable, "-m", "xtreaming", "farm", "--coordinator", site.url, "--name", name]
        command += ["--slots", str(slots), "--work-dir", str(site.root / name), "--lease-wait", "0.5"]
        for key, value in labels.items():
            command += ["--label", f"{key}={value}"]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                command, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT, **isolated_group()
            )

    def signal(self, number: int) -> None:
        self.process.send_signal(number)

    def wait(self, timeout_s: float) -> int:
        return self.process.wait(timeout=timeout_s)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


class Site:
    """One coordinator (in this process, on a free port) and the farms a test starts."""

    def __init__(self, root: Path, tokens: list[Token] | None = None, **settings: object) -> None:
        self.root = root
        self.pids = root / "pids"
        self.pids.mkdir()
        self.coordinator = RunningCoordinator(root, tokens, **settings).start()
        self.url = self.coordinator.url
        self.api = httpx.Client(base_url=self.url, timeout=30)
        self.farms: list[Farm] = []

    def farm(self, name: str, slots: int = 2, labels: Mapping[str, str] | None = None, **env: str) -> Farm:
        farm = Farm(self, name, slots, labels or {}, {"TEST_PIDS_DIR": str(self.pids), **env})
        self.farms.append(farm)
        return farm

    def profile(self, pattern: str, **settings: Any) -> None:
        self.call("POST", "/api/profiles", {"pattern": pattern, "settings": settings})

    def publish(self, topic: str, count: int, *, partitions: int = 4, first: int = 0) -> None:
        """``count`` messages keyed ``first`` onwards, each a JSON portfolio row, in requests of 5,000."""
        for start in range(first, first + count, 5000):
            messages = [
                {"key": f"{i:011d}", "value": json.dumps({"cpf": f"{i:011d}", "nome": f"Cliente {i}"})}
                for i in range(start, min(first + count, start + 5000))
            ]
            self.call("POST", f"/api/topics/{topic}/messages", {"messages": messages, "partitions": partitions})

    def call(self, method: str, path: str, body: Any = None) -> Any:
        response = self.api.request(method, path, json=body)
        assert response.status_code < 400, response.text
        return response.json() if response.content else None

    def queue(self, topic: str) -> dict[str, Any]:
        row: dict[str, Any] = self.call("GET", f"/api/queues/{topic}")
        return row

    def acks(self, topic: str) -> list[dict[str, Any]]:
        return [json.loads(m.value) for m in self.read(f"{topic}.ACK")]

    def dlq(self, topic: str) -> list[Message]:
        return self.read(f"{topic}.DLQ")

    def read(self, topic: str) -> list[Message]:
        log = open_broker(f"sqlite:///{self.root}/log.db")
        try:
            if topic not in log.list_topics():
                return []
            return [message for messages in read_all(log, topic).values() for message in messages]
        finally:
            log.close()

    def wait_acked(self, topic: str, count: int, timeout_s: float = 30) -> list[dict[str, Any]]:
        wait_until(lambda: self.queue(topic)["consumed"] >= count, timeout_s, f"{count} messages of {topic} finished")
        return self.acks(topic)

    def pid_files(self) -> list[list[int]]:
        return [[int(p) for p in path.read_text().split()] for path in sorted(self.pids.glob("*.pid"))]

    def close(self) -> None:
        for farm in self.farms:
            farm.close()
        for pids in self.pid_files():  # workers of a farm killed by the test outlive it
            for pid in pids:
                kill_quietly(pid)
        self.api.close()
        self.coordinator.stop()


def kill_quietly(pid: int) -> None:
    with contextlib.suppress(psutil.Error):
        psutil.Process(pid).kill()


def is_alive(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def once_each(acks: list[dict[str, Any]]) -> bool:
    """Whether every source position is acknowledged exactly once."""
    return len(acks) == len({(a["topic"], a["partition"], a["offset"]) for a in acks})
