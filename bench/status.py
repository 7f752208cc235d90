"""Latency of the operator screen's requests on a site-sized state, idle and while a farm drains an import.

Run: .venv/bin/python bench/status.py [--queues 2000] [--farms 50] [--messages 20] [--requests 400]
     [--history-hours 24] [--drain 1000000] [--drain-slots 2]

The site (issue 5, with issue 16's history): 2,000 queues (IMPORTACAO and COBSINC) over 40 bases, each base with
two time windows, 50 farms of 16 slots with some slots running tasks, a few completed tasks so that speeds are
not zero, and ``--history-hours`` of figure history for every queue and base (a point per minute each, written
into the state store before the coordinator starts: a fill, not the coordinator's own once-a-minute write). The
coordinator runs as its own process (``xtreaming coordinator``) on a temporary SQLite log and state, with its
background loop on; this process is only the client, and times each request from sending it to having read the
whole JSON answer over real HTTP (one keep-alive connection, requests one after another, as one screen
polling). Besides ``GET /api/status`` (target p95 ≤ 50 ms), the first render's other requests: every
sparkline, and a day of one base's and one queue's chart.

Under load: a fresh site of one IMPORTACAO queue holding ``--drain`` messages, drained by one farm process
(handler mode, ``--drain-slots`` slots, batches of 5,000) at full speed, while this process polls as the screen
does with a queue's detail open: ``GET /api/status`` then ``GET /api/queues/{topic}``, every ``--poll-s``
seconds until every message is finished (target: the status request p95 ≤ 100 ms during the drain).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from e2e import TOPIC as DRAIN_TOPIC
from e2e import BenchSite, acked, fill
from xtreaming.broker import Record, open_broker
from xtreaming.broker.sqlite import SqliteBroker

# The figure history's fill is the browser test's too (one copy, under tests/): the repository's root on the path.
sys.path.append(str(Path(__file__).resolve().parents[1]))
from tests.dashboard.figure_fill import fill_history

TARGET_P95_MS = 50.0
#: Issue 16: the status request while a farm drains an import at full speed.
TARGET_UNDER_LOAD_P95_MS = 100.0
#: The screen's first render beside the status: every sparkline, and a day of one base's and one queue's chart.
FIRST_RENDER = ("/api/figures/sparklines?minutes=30", "/api/figures/bases/MULTCOB01?minutes=1440")
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


def measure(api: httpx.Client, requests: int, path: str = "/api/status") -> tuple[list[float], int]:
    timings_ms = []
    size = 0
    for _ in range(requests):
        elapsed_ms, size = timed(api, path)
        timings_ms.append(elapsed_ms)
    return timings_ms, size


def timed(api: httpx.Client, path: str) -> tuple[float, int]:
    """Milliseconds from sending ``GET path`` to having read the whole answer, and its size."""
    started = time.perf_counter()
    response = api.get(path)
    body = response.content
    elapsed_ms = (time.perf_counter() - started) * 1000
    response.raise_for_status()
    return elapsed_ms, len(body)


def percentile(ordered: list[float], share: float) -> float:
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


Row = tuple[str, list[float], float | None]


def report(rows: list[Row], title: str, notes: str) -> None:
    """One line per request: p50, p95, p99, max, mean, and the target on p95 when it has one."""
    table = Table(title=title, caption=notes)
    for column in ("request", "n", "p50 ms", "p95 ms", "p99 ms", "max ms", "mean ms", "target p95", "met"):
        table.add_column(column, justify="left" if column == "request" else "right")
    for name, timings_ms, target in rows:
        ordered = sorted(timings_ms)
        p95 = percentile(ordered, 0.95)
        table.add_row(
            name,
            f"{len(ordered)}",
            f"{percentile(ordered, 0.50):.1f}",
            f"{p95:.1f}",
            f"{percentile(ordered, 0.99):.1f}",
            f"{ordered[-1]:.1f}",
            f"{statistics.fmean(ordered):.1f}",
            "-" if target is None else f"≤ {target:.0f}",
            "-" if target is None else ("yes" if p95 <= target else "NO"),
        )
    Console(width=150).print(table)


def idle_site(args: argparse.Namespace) -> None:
    """The site-sized state, the screen's requests one after another (see the module docstring)."""
    with tempfile.TemporaryDirectory(prefix="xtreaming-bench-status-") as folder:
        root = Path(folder)
        fill_log(f"sqlite:///{root}/log.db", args.queues, args.messages)
        topics = [topic_name(index) for index in range(args.queues)]
        history = fill_history(root / "state.db", topics, args.history_hours)
        server = start_coordinator(root, args.port)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{args.port}", timeout=30) as api:
                wait_for(api, args.queues, server)
                arranged = arrange(api, args.farms)
                measure(api, args.warmup)
                timings_ms, size = measure(api, args.requests)
                first_render = [(path, measure(api, args.requests // 10, path)) for path in FIRST_RENDER]
                chart = f"/api/figures/queues/{topic_name(1)}?minutes=1440"
                first_render.append((chart, measure(api, args.requests // 10, chart)))
        finally:
            server.terminate()
            server.wait(timeout=30)
    notes = (
        f"{args.queues:,} queues of {args.messages:,} messages over {BASES} bases (2 windows each), "
        f"{args.farms} farms x {SLOTS_PER_FARM} slots, {arranged['leased']} tasks leased, "
        f"{arranged['completed']} completed; {args.history_hours} h of figure history for every queue and base "
        f"({history.points:,} points, filled in {history.took_s:.0f} s); {args.requests} sequential status requests "
        f"after {args.warmup} warm-up, "
        f"answer {size / 1024:,.0f} KiB; first-render requests: {args.requests // 10} each"
    )
    rows: list[Row] = [("GET /api/status", timings_ms, TARGET_P95_MS)]
    rows += [(f"GET {path} ({found_size / 1024:,.0f} KiB)", found, None) for path, (found, found_size) in first_render]
    report(rows, "The operator screen's requests through real HTTP, site idle", notes)


def under_load(args: argparse.Namespace) -> None:
    """The screen's poll while one farm drains an import (see the module docstring)."""
    count, slots = args.drain, args.drain_slots
    status_ms: list[float] = []
    queue_ms: list[float] = []
    both_ms: list[float] = []
    with tempfile.TemporaryDirectory(prefix="xtreaming-bench-status-load-") as folder:
        root = Path(folder)
        site = BenchSite(root, {"XTREAMING_POLL_INTERVAL_S": "0.5"})
        try:
            site.start("coordinator")
            site.wait("the coordinator", lambda: site.api.get("/healthz").status_code == 200)
            settings = {"handler": "xtreaming.demo.worker:noop", "batch_size": 5000}
            site.api.post("/api/profiles", json={"pattern": ".*", "settings": settings}).raise_for_status()
            fill(root / "log.db", count)
            site.wait("the queue", lambda: site.api.get(f"/api/queues/{DRAIN_TOPIC}").status_code == 200)
            site.api.post(f"/api/queues/{DRAIN_TOPIC}/pause").raise_for_status()
            site.api.patch("/api/bases/MULTCOB02", json={"max_workers": slots}).raise_for_status()
            work_dir = str(root / "farm")
            site.start(
                "farm", "--coordinator", site.url, "--name", "bench", "--slots", str(slots), "--work-dir", work_dir
            )
            site.wait("the farm", lambda: any(f["id"] == "bench" for f in site.api.get("/api/farms").json()))
            log = SqliteBroker(root / "log.db")
            started = time.perf_counter()
            site.api.post(f"/api/queues/{DRAIN_TOPIC}/resume").raise_for_status()
            while acked(log) < count and time.perf_counter() - started < args.drain_timeout_s:
                poll_started = time.perf_counter()
                status_ms.append(timed(site.api, "/api/status")[0])
                queue_ms.append(timed(site.api, f"/api/queues/{DRAIN_TOPIC}")[0])
                both_ms.append((time.perf_counter() - poll_started) * 1000)
                time.sleep(max(0.0, args.poll_s - (time.perf_counter() - poll_started)))
            drained_s = time.perf_counter() - started
            finished = acked(log)
            log.close()
        finally:
            site.close()
    notes = (
        f"{finished:,} of {count:,} messages finished in {drained_s:.1f} s ({finished / drained_s:,.0f} msgs/s) by one "
        f"farm of {slots} slots (handler mode, batches of 5,000), embedded log; a poll every {args.poll_s} s"
    )
    rows: list[Row] = [
        ("GET /api/status", status_ms, TARGET_UNDER_LOAD_P95_MS),
        ("GET /api/queues/{topic}", queue_ms, None),
        ("both, one after the other", both_ms, None),
    ]
    report(rows, "The screen's poll while a farm drains an import", notes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queues", type=int, default=2000)
    parser.add_argument("--farms", type=int, default=50)
    parser.add_argument("--messages", type=int, default=20, help="Messages published to each queue.")
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--port", type=int, default=8791)
    parser.add_argument("--history-hours", type=int, default=24, help="Figure history for every queue and base.")
    parser.add_argument("--drain", type=int, default=1_000_000, help="Messages of the import drained under load.")
    parser.add_argument("--drain-slots", type=int, default=2)
    parser.add_argument("--drain-timeout-s", type=float, default=120.0)
    parser.add_argument("--poll-s", type=float, default=0.25, help="Between the starts of two polls under load.")
    parser.add_argument("--only", choices=("idle", "load"), help="Run one part only.")
    args = parser.parse_args()
    parts: dict[str, Callable[[argparse.Namespace], None]] = {"idle": idle_site, "load": under_load}
    for name, part in parts.items():
        if args.only in (None, name):
            part(args)


if __name__ == "__main__":
    main()
