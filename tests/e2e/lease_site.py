"""A site of real processes for the lease tests: an ``xtreaming coordinator`` process and ``xtreaming farm``
processes on one embedded log and state, which a test may SIGKILL, freeze (SIGSTOP) and start again,
and the journal their workers (``keyed_worker.py``) keep of when each key ran."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from tests.e2e.journal import Run, read_runs
from tests.waiting import wait_until
from xtreaming.broker import open_broker
from xtreaming.farm.processes import isolated_group
from xtreaming.localhost import free_port

WORKER = str(Path(__file__).with_name("keyed_worker.py"))


class Process:
    """A ``python -m xtreaming …`` process writing to its log; ``start`` again runs the same arguments."""

    def __init__(self, log: Path, args: list[str], env: dict[str, str]) -> None:
        self.log, self.args, self.env = log, args, env
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "xtreaming", *self.args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                **isolated_group(),
            )

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def signal(self, number: int) -> None:
        assert self.process is not None
        self.process.send_signal(number)

    def kill(self) -> None:
        """SIGKILL, and wait until it is gone (a frozen process dies too)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


class LeaseSite:
    """A coordinator process with a short heartbeat, the farms a test starts, and their workers' journal."""

    def __init__(self, root: Path, heartbeat_interval_s: float) -> None:
        self.root = root
        self.heartbeat_interval_s = heartbeat_interval_s
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.env = {
            **os.environ,
            "XTREAMING_BROKER_URL": f"sqlite:///{root}/log.db",
            "XTREAMING_DATABASE_URL": f"sqlite:///{root}/state.db",
            "XTREAMING_PORT": str(port),
            "XTREAMING_HEARTBEAT_INTERVAL_S": str(heartbeat_interval_s),
            "XTREAMING_DISCOVERY_INTERVAL_S": "0.2",
            "XTREAMING_POLL_INTERVAL_S": "0.02",
        }
        self.journal = root / "journal.log"
        self.api = httpx.Client(base_url=self.url, timeout=30)
        self.farms: list[Process] = []
        self.coordinator = Process(root / "coordinator.log", ["coordinator"], self.env)
        try:
            self.wait_ready()
        except BaseException:  # no site to close: its coordinator must not outlive the failed test
            self.coordinator.kill()
            self.api.close()
            raise

    def wait_ready(self) -> None:
        wait_until(
            lambda: self.api.get("/healthz").status_code == 200,
            30,
            f"the coordinator to answer on {self.url}",
            ignoring=(httpx.TransportError,),
        )

    def restart_coordinator(self) -> None:
        self.coordinator.kill()
        self.coordinator.start()
        self.wait_ready()

    def farm(self, name: str, slots: int, *options: str) -> Process:
        return self.farm_via(name, slots, self.url, *options)

    def farm_via(self, name: str, slots: int, url: str, *options: str) -> Process:
        """A farm that reaches the coordinator at ``url`` (e.g. through a ``Relay``)."""
        args = ["farm", "--coordinator", url, "--name", name, "--slots", str(slots)]
        args += ["--work-dir", str(self.root / name), "--lease-wait", "0.5", *options]
        farm = Process(self.root / f"{name}-{len(self.farms)}.log", args, self.env)
        self.farms.append(farm)
        return farm

    def profile(self, *, first_s: float, then_s: float, batch_size: int, **settings: Any) -> None:
        """Every queue runs ``keyed_worker.py``: ``first_s`` seconds on a task with a key never run, else ``then_s``."""
        command = [sys.executable, WORKER, str(self.journal), str(first_s), str(then_s)]
        body = {"command": command, "batch_size": batch_size, "backoff_s": 0, **settings}
        self.call("POST", "/api/profiles", {"pattern": ".*", "settings": body})

    def publish(self, topic: str, count: int, partitions: int = 1) -> None:
        messages = [{"key": f"{i:011d}", "value": json.dumps({"cpf": f"{i:011d}"})} for i in range(count)]
        self.call("POST", f"/api/topics/{topic}/messages", {"messages": messages, "partitions": partitions})

    def call(self, method: str, path: str, body: Any = None) -> Any:
        response = self.api.request(method, path, json=body)
        assert response.status_code < 400, response.text
        return response.json() if response.content else None

    def queue(self, topic: str) -> dict[str, Any]:
        row: dict[str, Any] = self.call("GET", f"/api/queues/{topic}")
        return row

    def farm_row(self, name: str) -> dict[str, Any]:
        rows: list[dict[str, Any]] = self.call("GET", "/api/farms")
        [row] = [f for f in rows if f["id"] == name]
        return row

    def acks(self, topic: str) -> list[dict[str, Any]]:
        log = open_broker(f"sqlite:///{self.root}/log.db")
        try:
            if f"{topic}.ACK" not in log.list_topics():
                return []
            return [
                json.loads(message.value)
                for partition in range(log.partition_count(f"{topic}.ACK"))
                for message in log.read(f"{topic}.ACK", partition, 0, max_records=1_000_000, max_bytes=1 << 30)
            ]
        finally:
            log.close()

    def wait_acked(self, topic: str, count: int, timeout_s: float) -> list[dict[str, Any]]:
        wait_until(lambda: self.queue(topic)["consumed"] >= count, timeout_s, f"{count} messages of {topic} finished")
        return self.acks(topic)

    def runs(self) -> list[Run]:
        return read_runs(self.journal)

    def runs_once(self, count: int) -> list[Run] | None:
        """The journal's runs once it has at least ``count`` of them, else None (for ``wait_until``)."""
        runs = self.runs()
        return runs if len(runs) >= count else None

    def wait_gone(self, pids: set[int], timeout_s: float, what: str) -> int:
        """Wait until none of ``pids`` runs; returns a moment (monotonic ns) at which all were gone."""
        wait_until(lambda: not any(is_running(pid) for pid in pids), timeout_s, what, every_s=0.005)
        return time.monotonic_ns()

    def close(self) -> None:
        for farm in self.farms:
            farm.kill()
        for run in self.runs():  # workers of a killed farm may outlive it
            if run.end_ns is None:
                kill_worker(run.pid)
        self.api.close()
        self.coordinator.kill()


def is_running(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def kill_worker(pid: int) -> None:
    """Kill ``pid`` if it is still one of our workers (a pid may have been given to another process since)."""
    with contextlib.suppress(psutil.Error):
        process = psutil.Process(pid)
        if WORKER in process.cmdline():
            process.kill()


def freeze(process: Process) -> None:
    process.signal(signal.SIGSTOP)


def thaw(process: Process) -> None:
    process.signal(signal.SIGCONT)
