"""The coordinator through its real HTTP API: lease+complete round trips, heartbeats, and its memory with a deep
backlog.

Run: .venv/bin/python bench/coordinator.py [--round-trips 5000] [--heartbeats 2000] [--pending 10000000]

The coordinator runs as its own process (``xtreaming coordinator``) on the embedded log and
state; farms are client processes with keep-alive HTTP connections. Each request settles the
tasks a farm finished and leases its idle slots (a farm may also call ``/complete`` on its own).
Runs use a COBSINC queue (batch size 1: the urgent lane, the worst case for per-task overhead):
one farm with one slot, two such farms, one farm with 32 slots. Heartbeats: the coordinator's CPU
per heartbeat of a farm of 32 slots (its whole process's, background threads included: a few
percent at this rate). Memory: the log is filled with ``--pending`` messages over 20 IMPORTACAO
topics *before* the coordinator starts, and the coordinator's peak RSS (VmHWM) is read once it
has discovered them all and read ahead.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from multiprocessing import Process, Queue
from pathlib import Path

import httpx
import psutil
from rich.console import Console
from rich.table import Table

from cpu import cpu_s
from xtreaming.broker import Record
from xtreaming.broker.sqlite import SqliteBroker
from xtreaming.localhost import free_port

URGENT = "MULTCOB02.1186.COBSINC.LOCALIZACAO"
#: The queues' worker: the farms here are the benchmark itself, but a queue with none is never scheduled.
NOOP = "xtreaming.demo.worker:noop"


def start_coordinator(root: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "XTREAMING_BROKER_URL": f"sqlite:///{root}/log.db",
        "XTREAMING_DATABASE_URL": f"sqlite:///{root}/state.db",
        "XTREAMING_PORT": str(port),
    }
    return subprocess.Popen([sys.executable, "-m", "xtreaming", "coordinator"], env=env, stdout=subprocess.DEVNULL)


def wait_for(url: str, check: str, deadline_s: float) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=60)
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            if client.get(check).status_code == 200:
                return client
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"coordinator at {url} did not answer {check} in {deadline_s} s")


def high_water_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def farm_loop(url: str, name: str, count: int, slots: int, results: Queue[tuple[int, float, list[float]]]) -> None:
    """One farm: each request settles the tasks of the previous answer and leases its idle slots."""
    api = httpx.Client(base_url=url, timeout=60)
    farm = api.post("/api/farms/register", json={"name": name, "slots": slots}).json()["farm_id"]
    latencies = []
    done = 0
    completions: list[dict[str, str]] = []
    started = time.perf_counter()
    while done < count:
        t0 = time.perf_counter()
        body = {"slots": list(range(slots)), "wait_s": 1, "completions": completions}
        answer = api.post(f"/api/farms/{farm}/lease", json=body).json()
        done += sum(s["ok"] for s in answer["settled"])
        completions = [{"task_id": t["task_id"], "default": "ok"} for t in answer["tasks"]]
        latencies.append(time.perf_counter() - t0)
    api.post(f"/api/farms/{farm}/lease", json={"slots": [0], "wait_s": 0, "completions": completions})
    results.put((done, time.perf_counter() - started, latencies))
    api.close()


def round_trips(root: Path, count: int, farms: int, slots: int) -> tuple[float, list[float]]:
    """Tasks settled per second (batch size 1) and each request's latency."""
    log = SqliteBroker(root / "log.db")
    log.create_topic(URGENT, 1)
    total = (count + slots) * farms
    for start in range(0, total, 10_000):
        log.append(URGENT, [Record(f"{i:011d}".encode(), b"<sinc/>") for i in range(start, min(total, start + 10_000))])
    log.close()
    port = free_port()
    server = start_coordinator(root, port)
    try:
        url = f"http://127.0.0.1:{port}"
        api = wait_for(url, f"/api/queues/{URGENT}", 30)
        api.patch("/api/bases/MULTCOB02", json={"max_workers": farms * slots})  # the default of 4 would cap it
        api.patch(f"/api/queues/{URGENT}/settings", json={"handler": NOOP})  # no worker: never scheduled
        api.close()
        results: Queue[tuple[int, float, list[float]]] = Queue()
        clients = [Process(target=farm_loop, args=(url, f"farm-{i}", count, slots, results)) for i in range(farms)]
        started = time.perf_counter()
        for client in clients:
            client.start()
        outcomes = [results.get(timeout=600) for _ in clients]
        elapsed = time.perf_counter() - started
        for client in clients:
            client.join()
        return sum(done for done, _, _ in outcomes) / elapsed, [lat for _, _, lats in outcomes for lat in lats]
    finally:
        server.terminate()
        server.wait(30)


def heartbeat_cost(root: Path, count: int, slots: int) -> float:
    """Microseconds of the coordinator's CPU per heartbeat of a farm of ``slots`` idle slots (sent one at a time)."""
    port = free_port()
    server = start_coordinator(root, port)
    try:
        api = wait_for(f"http://127.0.0.1:{port}", "/healthz", 30)
        farm = api.post("/api/farms/register", json={"name": "bench", "slots": slots}).json()["farm_id"]
        body = {"slots": [{"index": i, "state": "idle"} for i in range(slots)], "reporting": []}
        for _ in range(50):  # connections, caches and the first statements warmed up
            api.post(f"/api/farms/{farm}/heartbeat", json=body).raise_for_status()
        coordinator = psutil.Process(server.pid)
        before = cpu_s(coordinator)
        for _ in range(count):
            api.post(f"/api/farms/{farm}/heartbeat", json=body).raise_for_status()
        spent = cpu_s(coordinator) - before
        api.close()
        return spent / count * 1e6
    finally:
        server.terminate()
        server.wait(30)


def backlog_memory(root: Path, pending: int, topics: int = 20) -> tuple[float, float, float]:
    """Seconds to fill the log, seconds until the coordinator is serving, its peak RSS in MB."""
    log = SqliteBroker(root / "log.db")
    started = time.perf_counter()
    per_topic = pending // topics
    value = b'{"cpf":"00000000000","nome":"Fulano de Tal","valor":"1234.56"}'
    for t in range(topics):
        topic = f"MULTCOB{t % 5:02d}.{1000 + t}.IMPORTACAO.CARGA"
        log.create_topic(topic, 4)
        for start in range(0, per_topic, 10_000):
            end = min(per_topic, start + 10_000)
            log.append(topic, [Record(f"{t:02d}{i:09d}".encode(), value) for i in range(start, end)])
    fill_s = time.perf_counter() - started
    log.close()
    port = free_port()
    server = start_coordinator(root, port)
    try:
        started = time.perf_counter()
        api = wait_for(f"http://127.0.0.1:{port}", "/healthz", 60)
        while api.get("/api/queues").json()["total"] < topics:
            time.sleep(0.2)
        rows = api.get("/api/queues").json()["items"]
        ready_s = time.perf_counter() - started
        assert sum(r["pending"] for r in rows) == per_topic * topics, "pending must come from offsets"
        api.post("/api/profiles", json={"pattern": ".*", "settings": {"handler": NOOP}})  # no worker: never scheduled
        farm = api.post("/api/farms/register", json={"name": "bench", "slots": 8}).json()["farm_id"]
        for _ in range(5):  # some leases and completions, so memory includes work in flight
            for task in api.post(f"/api/farms/{farm}/lease", json={"slots": list(range(8)), "wait_s": 0}).json()[
                "tasks"
            ]:
                api.post(f"/api/tasks/{task['task_id']}/complete", json={"default": "ok"})
        time.sleep(1)
        rss = high_water_mb(server.pid)
        api.close()
        return fill_s, ready_s, rss
    finally:
        server.terminate()
        server.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--round-trips", type=int, default=5000, help="per farm")
    parser.add_argument("--heartbeats", type=int, default=2000)
    parser.add_argument("--pending", type=int, default=10_000_000)
    args = parser.parse_args()
    table = Table(title="Coordinator over real HTTP (its own process; this process is the farm)")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("target", justify="right")
    for farms, slots in ((1, 1), (2, 1), (1, 32)):
        with tempfile.TemporaryDirectory() as tmp:
            rate, latencies = round_trips(Path(tmp), args.round_trips, farms, slots)
        cuts = statistics.quantiles(latencies, n=100)
        label = f"{farms} farm(s) x {slots} slot(s)"
        table.add_row(f"lease+complete round trips/s, batch 1, {label}", f"{rate:,.0f}", "≥ 2,000")
        table.add_row(f"  request p50 / p99 (ms), {label}", f"{cuts[49] * 1000:.2f} / {cuts[98] * 1000:.2f}", "")
    if args.heartbeats:
        with tempfile.TemporaryDirectory() as tmp:
            cost = heartbeat_cost(Path(tmp), args.heartbeats, 32)
        table.add_row("coordinator CPU per heartbeat of a farm of 32 slots (µs)", f"{cost:,.0f}", "")
    if args.pending:
        with tempfile.TemporaryDirectory() as tmp:
            fill_s, ready_s, rss = backlog_memory(Path(tmp), args.pending)
        table.add_row(f"messages pending in the log (filled in {fill_s:.0f} s)", f"{args.pending:,}", "")
        table.add_row("coordinator start to serving all queues (s)", f"{ready_s:.1f}", "")
        table.add_row("coordinator peak RSS (MB)", f"{rss:.0f}", "≤ 300")
    Console().print(table)


if __name__ == "__main__":
    main()
