"""Latency of the operator screen's one aggregated request, ``GET /api/status``, on a site-sized state.

Run: .venv/bin/python bench/status.py [--queues 2000] [--farms 50] [--messages 20] [--requests 400]

The scenario of issue 5: 2,000 queues (IMPORTACAO and COBSINC) over 40 bases, each base with two
time windows, 50 farms of 16 slots with some slots running tasks, and a few completed tasks so
that speeds are not zero. The coordinator runs as its own process (``xtreaming coordinator``) on
a temporary SQLite log and state, with its background loop on; this process is only the client,
and times each request from sending it to having read the whole JSON answer over real HTTP
(one keep-alive connection, requests one after another, as one screen polling).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from xtreaming.broker import Record, open_broker

TARGET_P95_MS = 50.0
BASES = 40
SLOTS_PER_FARM = 16
#: The queues' worker: the farms here are the benchmark itself.
NOOP = "xtreaming.demo.worker:noop"
#: How long the coordinator may take to start and discover every topic.
START_TIMEOUT_S = 120.0


def topic_name(index: int) -> str:
    kind, process = ("COBSINC", "ATUALIZA_DIVIDA") if index % 5 == 0 else ("IMPORTACAO", "CARGA")
    return f"MULTCOB{index % BASES:02d}.{1000 + index}.{kind}.{process}"


def fill_log(url: str, queues: int, messages: int) -> None:
    """Every topic with a few messages, written before the coordinator starts (it discovers them)."""
    log = open_broker(url)
    try:
        for index in range(queues):
            name = topic_name(index)
            log.create_topic(name, 4)
            log.append(name, [Record(f"{index:05d}{m:06d}".encode(), b"<cliente/>") for m in range(messages)])
    finally:
        log.close()


def start_coordinator(root: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "XTREAMING_BROKER_URL": f"sqlite:///{root}/log.db",
        "XTREAMING_DATABASE_URL": f"sqlite:///{root}/state.db",
        "XTREAMING_TOKENS": "[]",
        # Farms here heartbeat only once: keep them alive for the whole run.
        "XTREAMING_HEARTBEAT_INTERVAL_S": "300",
    }
    command = [sys.executable, "-m", "xtreaming", "coordinator", "--host", "127.0.0.1", "--port", str(port)]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_for(api: httpx.Client, queues: int, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            stderr = server.stderr.read().decode() if server.stderr else ""
            raise SystemExit(f"the coordinator exited with {server.returncode}: {stderr.strip()}")
        try:
            status = api.get("/api/status")
            if status.status_code == 200 and len(status.json()["queues"]) >= queues:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the coordinator did not discover {queues} queues within {START_TIMEOUT_S:.0f} s")


def arrange(api: httpx.Client, farms: int) -> dict[str, int]:
    """Windows on every base, farms registered, some slots running tasks, some tasks completed."""
    # The kinds' defaults with a worker: a queue with none is never scheduled.
    urgent = {"handler": NOOP, "priority": 8, "batch_size": 1, "timeout_s": 120}
    for pattern, settings in ((r".*\.COBSINC\..*", urgent), (".*", {"handler": NOOP})):
        api.post("/api/profiles", json={"pattern": pattern, "settings": settings}).raise_for_status()
    for base in range(BASES):
        name = f"MULTCOB{base:02d}"
        api.patch(f"/api/bases/{name}", json={"max_workers": 20, "min_workers": 1}).raise_for_status()
        office = {"weekdays": [0, 1, 2, 3, 4], "start": "08:00", "end": "18:00", "max_workers": 10}
        night = {"weekdays": [0, 1, 2, 3, 4, 5, 6], "start": "22:00", "end": "06:00", "max_workers": 15}
        for window in (office, night):
            api.post(f"/api/bases/{name}/windows", json=window).raise_for_status()
    leased = completed = 0
    for index in range(farms):
        labels = {"site": "POA", "os": "windows" if index % 3 else "linux"}
        farm_id = api.post(
            "/api/farms/register", json={"name": f"farm-{index:02d}", "labels": labels, "slots": SLOTS_PER_FARM}
        ).json()["farm_id"]
        tasks: list[dict[str, Any]] = api.post(
            f"/api/farms/{farm_id}/lease", json={"slots": list(range(SLOTS_PER_FARM // 2)), "wait_s": 0}
        ).json()["tasks"]
        leased += len(tasks)
        for task in tasks[:2]:
            api.post(f"/api/tasks/{task['task_id']}/complete", json={"default": "ok"}).raise_for_status()
            completed += 1
    return {"leased": leased, "completed": completed}


def measure(api: httpx.Client, requests: int) -> tuple[list[float], int]:
    timings_ms = []
    size = 0
    for _ in range(requests):
        started = time.perf_counter()
        response = api.get("/api/status")
        body = response.content
        timings_ms.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
        size = len(body)
    return timings_ms, size


def percentile(ordered: list[float], share: float) -> float:
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def report(timings_ms: list[float], size: int, args: argparse.Namespace, arranged: dict[str, int]) -> None:
    ordered = sorted(timings_ms)
    p95 = percentile(ordered, 0.95)
    notes = (
        f"{args.queues:,} queues of {args.messages:,} messages over {BASES} bases (2 windows each), "
        f"{args.farms} farms x {SLOTS_PER_FARM} slots, "
        f"{arranged['leased']} tasks leased, {arranged['completed']} completed; "
        f"{len(ordered)} sequential requests after {args.warmup} warm-up; answer {size / 1024:,.0f} KiB"
    )
    table = Table(title="GET /api/status through real HTTP", caption=notes)
    for column in ("p50 ms", "p95 ms", "p99 ms", "max ms", "mean ms", "target p95", "met"):
        table.add_column(column, justify="right")
    table.add_row(
        f"{percentile(ordered, 0.50):.1f}",
        f"{p95:.1f}",
        f"{percentile(ordered, 0.99):.1f}",
        f"{ordered[-1]:.1f}",
        f"{statistics.fmean(ordered):.1f}",
        f"≤ {TARGET_P95_MS:.0f}",
        "yes" if p95 <= TARGET_P95_MS else "NO",
    )
    Console().print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queues", type=int, default=2000)
    parser.add_argument("--farms", type=int, default=50)
    parser.add_argument("--messages", type=int, default=20, help="Messages published to each queue.")
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--port", type=int, default=8791)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="xtreaming-bench-status-") as folder:
        root = Path(folder)
        fill_log(f"sqlite:///{root}/log.db", args.queues, args.messages)
        server = start_coordinator(root, args.port)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{args.port}", timeout=30) as api:
                wait_for(api, args.queues, server)
                arranged = arrange(api, args.farms)
                measure(api, args.warmup)
                timings_ms, size = measure(api, args.requests)
        finally:
            server.terminate()
            server.wait(timeout=30)
    report(timings_ms, size, args, arranged)


if __name__ == "__main__":
    main()
