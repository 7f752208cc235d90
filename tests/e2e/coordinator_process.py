"""A coordinator as its own process (``xtreaming coordinator``) on the log and state store a test names,
and a scripted farm talking to it as farms do: each result sent with the next lease request, sent again
while it is refused (a farm keeps its results until the coordinator takes them)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from tests.broker.contract import read_all
from tests.waiting import wait_until
from xtreaming.broker import open_broker
from xtreaming.localhost import free_port

TOPIC = "MULTCOB03.1189.IMPORTACAO.ATUALIZA_BUREAU"


class CoordinatorProcess:
    """``xtreaming coordinator`` on ``broker_url`` and ``database_url``, answering on a free port; its
    output goes to ``coordinator.log`` under ``root``."""

    def __init__(self, root: Path, broker_url: str, database_url: str) -> None:
        port = free_port()
        self.broker_url = broker_url
        self.log_path = root / "coordinator.log"
        self.env = {
            **os.environ,
            "XTREAMING_BROKER_URL": broker_url,
            "XTREAMING_DATABASE_URL": database_url,
            "XTREAMING_PORT": str(port),
            "XTREAMING_POLL_INTERVAL_S": "0.02",
            "XTREAMING_DISCOVERY_INTERVAL_S": "0.2",
        }
        self.url = f"http://127.0.0.1:{port}"
        self.api = httpx.Client(base_url=self.url, timeout=30)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, role: str = "leader") -> CoordinatorProcess:
        """Start (or start again, after ``kill``) and wait until it answers as ``role`` (``/healthz``: a standby
        beside a leader on the same PostgreSQL store answers ``standby``); the log keeps every start's lines."""
        with self.log_path.open("ab") as log:
            command = [sys.executable, "-m", "xtreaming", "coordinator"]
            self.process = subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        wait_until(lambda: self.health() == role, 30, f"the coordinator to answer as {role}")
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def health(self) -> str | None:
        """What ``/healthz`` says (``leader`` with 200, else ``standby``, ``starting`` or ``down``); None: no answer."""
        assert self.process is not None
        assert self.process.poll() is None, f"the coordinator exited:\n{self.log()}"
        try:
            response = self.api.get("/healthz", timeout=2)
        except httpx.TransportError:
            return None
        status: str = response.json()["status"]
        assert (response.status_code == 200) == (status == "leader"), response.text
        return status

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def call(self, method: str, path: str, body: Any = None) -> Any:
        response = self.api.request(method, path, json=body)
        assert response.status_code < 400, f"{response.status_code} {response.text}\n{self.log()}"
        return response.json() if response.content else None

    def publish(self, topic: str, count: int) -> None:
        messages = [{"key": f"{i:011d}", "value": json.dumps({"cpf": f"{i:011d}"})} for i in range(count)]
        self.call("POST", f"/api/topics/{topic}/messages", {"messages": messages, "partitions": 1})
        # A queue with no worker is never scheduled: the tests here play the farm, so any command will do.
        self.call("PATCH", f"/api/queues/{topic}/settings", {"command": ["worker.exe", "{input}"]})

    def register(self, name: str, slots: int) -> str:
        farm_id: str = self.call("POST", "/api/farms/register", {"name": name, "slots": slots})["farm_id"]
        return farm_id

    def lease(self, farm_id: str, slots: list[int]) -> list[dict[str, Any]]:
        """Tasks for ``slots``, long-polling as a farm does (answered at once when there is work)."""
        body = {"slots": slots, "wait_s": 10}
        tasks: list[dict[str, Any]] = self.call("POST", f"/api/farms/{farm_id}/lease", body)["tasks"]
        return tasks

    def report(self, farm_id: str, task: dict[str, Any], slot: int) -> httpx.Response:
        """Send ``task``'s result ("ok") with a lease request for ``slot``, as a farm does; the answer as it came."""
        body = {"slots": [slot], "wait_s": 0, "completions": [{"task_id": task["task_id"], "default": "ok"}]}
        return self.api.post(f"/api/farms/{farm_id}/lease", json=body)

    def queue(self, topic: str) -> dict[str, Any]:
        row: dict[str, Any] = self.call("GET", f"/api/queues/{topic}")
        return row

    def acked(self, topic: str) -> Counter[int]:
        """How many ACK records each offset of ``topic`` (one partition) has."""
        log = open_broker(self.broker_url)
        try:
            records = [json.loads(m.value) for ms in read_all(log, f"{topic}.ACK").values() for m in ms]
        finally:
            log.close()
        return Counter(r["offset"] for r in records if r["status"] == "ok")

    def kill(self) -> None:
        """SIGKILL, as a crash would; ``start`` runs it again on the same log, state store and port."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        assert self.process.wait(10) == -signal.SIGKILL

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.api.close()


def settled(answer: httpx.Response) -> list[tuple[bool, int]]:
    """``(accepted, ok)`` of each completion a lease answer settled."""
    assert answer.status_code == 200, answer.text
    return [(s["accepted"], s["ok"]) for s in answer.json()["settled"]]
