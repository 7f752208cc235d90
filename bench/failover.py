"""Failover time: the leader SIGKILLed mid-run → the standby serving, and the first task started on its lease.

Run: .venv/bin/python bench/failover.py [--messages 50000] [--lease 3.0 1.0] [--database-url URL]

Everything is real and on this machine: a tansu broker, the state in a fresh PostgreSQL schema, two
``xtreaming coordinator`` processes started with the same configuration (the first leads, the second stands
by) and one ``xtreaming farm --slots 2`` given both URLs, running ``urgent_handlers:mark_start`` (each task
appends its messages' start times to a file). Once the run is under way the leader is SIGKILLed; the clock
runs from the kill until the standby's ``/healthz`` answers 200 (it serves), and until the first task starts
on a lease the new leader handed out (the first start later than the kill by more than a task's own start-up:
whatever the old leader leased before dying started within milliseconds). Once per lease setting.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from kafka_e2e import Tansu, fill, state_url
from urgent_handlers import STARTS_FILE
from xtreaming.localhost import free_port

TOPIC = "MULTCOB02.1186.IMPORTACAO.FAILOVER"
DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SLOTS = 2
BATCH = 50
#: A start this long after the kill came from a lease of the new leader, not one the old leader handed out.
AFTER_KILL_S = 0.1


def wait(what: str, check: Callable[[], bool], timeout_s: float = 60, every_s: float = 0.01) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):
            if check():
                return
        time.sleep(every_s)
    raise SystemExit(f"timed out waiting for {what}")


def starts(path: Path) -> list[float]:
    if not path.exists():
        return []
    return [float(line.split()[1]) for line in path.read_text().splitlines() if line.count(" ") == 1]


def failover(root: Path, tansu: Tansu, database_url: str, count: int, lease_s: float) -> tuple[float, float]:
    """Seconds from the leader's SIGKILL to the standby serving, and to the first task on its lease."""
    here = str(Path(__file__).parent)
    starts_file = root / "starts.txt"
    base_env = {
        **os.environ,
        "XTREAMING_BROKER_URL": tansu.url,
        "XTREAMING_DATABASE_URL": database_url,
        "XTREAMING_DISCOVERY_INTERVAL_S": "0.2",
        "XTREAMING_LEADER_LEASE_S": str(lease_s),
        "PYTHONPATH": os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")])),
        STARTS_FILE: str(starts_file),
    }
    ports = {"a": free_port(), "b": free_port()}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(name: str, *args: str) -> None:
        env = {**base_env, "XTREAMING_PORT": str(ports.get(name, 0))}
        with (root / f"{name}.log").open("wb") as log:
            command = [sys.executable, "-m", "xtreaming", *args]
            processes[name] = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)

    def health(name: str) -> int:
        return httpx.get(f"{urls[name]}/healthz", timeout=2).status_code

    try:
        start("a", "coordinator")
        wait("the leader", lambda: health("a") == 200)
        start("b", "coordinator")
        wait("the standby", lambda: httpx.get(f"{urls['b']}/healthz").json()["status"] == "standby")
        api = httpx.Client(base_url=urls["a"], timeout=60)
        settings = {"handler": "urgent_handlers:mark_start", "batch_size": BATCH}
        api.post("/api/profiles", json={"pattern": ".*", "settings": settings}).raise_for_status()
        api.patch("/api/bases/MULTCOB02", json={"max_workers": SLOTS}).raise_for_status()
        fill(tansu.url, TOPIC, count)
        start("farm", "farm", "--coordinator", f"{urls['a']},{urls['b']}", "--name", "bench", "--slots", str(SLOTS))
        wait("the run to get under way", lambda: len(starts(starts_file)) >= 20 * BATCH, 120, 0.05)

        processes["a"].send_signal(signal.SIGKILL)
        killed = time.time()
        processes["a"].wait()
        wait("the standby to serve", lambda: health("b") == 200, 60, 0.005)
        serving = time.time() - killed
        wait("a task on the new leader's lease", lambda: max(starts(starts_file)) > killed + AFTER_KILL_S, 60, 0.005)
        first = min(t for t in starts(starts_file) if t > killed + AFTER_KILL_S) - killed
        return serving, first
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--lease", type=float, nargs="+", default=[3.0, 1.0], help="leader_lease_s of each run")
    parser.add_argument("--database-url", default=os.environ.get("XTREAMING_TEST_POSTGRES_URL", DEFAULT_DATABASE_URL))
    args = parser.parse_args()
    rows = []
    for lease_s in args.lease:
        with tempfile.TemporaryDirectory() as tmp, state_url(args.database_url) as database_url:
            if database_url is None:
                raise SystemExit("a failover needs PostgreSQL: two coordinators never share a SQLite store")
            root = Path(tmp)
            tansu = Tansu(root)
            try:
                rows.append((lease_s, *failover(root, tansu, database_url, args.messages, lease_s)))
            finally:
                tansu.close()

    table = Table(title=f"Failover: leader SIGKILLed mid-run, farm of {SLOTS} slots, tasks of {BATCH} messages")
    for column in ("leader lease (s)", "standby serves after (s)", "first task on its lease after (s)"):
        table.add_column(column, justify="right")
    for lease_s, serving, first in rows:
        table.add_row(f"{lease_s:g}", f"{serving:.2f}", f"{first:.2f}")
    console = Console(width=160)
    console.print(table)
    console.print("bound: a takeover ends well within the 10 s after which farms stop tasks they cannot renew")


if __name__ == "__main__":
    main()
