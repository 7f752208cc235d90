"""End to end: no-op messages through coordinator and farm, next to the raw broker path, in one run.

Run: .venv/bin/python bench/e2e.py [--messages 200000] [--handler-batch 5000] [--command-batch 500] [--runs 3]
     [--slots 2] [--history] [--one-per-key]

Everything is real and on this machine: the embedded log and state, ``xtreaming coordinator``
and ``xtreaming farm --slots 2`` as their own processes, over HTTP. Each mode gets a fresh
site; the messages are published before the clock starts (the queue paused), the farm is
registered and idle (done starting: no CPU used), then the queue is resumed and the clock runs
until every message's ACK is in the log (watched on the log itself every 10 ms, which costs the
coordinator nothing; asking the coordinator at that pace would load it).

* handler mode: ``xtreaming.demo.worker:noop`` in the farm's long-lived worker processes;
* command mode: a native no-op program (``true``) per task, batches of ``--command-batch``.
  Per-task overhead is the wall time per task and slot less what the same program takes when
  this script starts it directly (spawn and wait), measured in the same run. The CPU seconds
  of each process show where it goes: the farm's own cost per task (with its handler processes), and the
  coordinator's.
* raw broker: the physical limit of this path on the same log: read every message of a
  topic and append one record per message to another, of a real ACK's size and shape (``ACK``),
  with nothing in between.

Per-message history is on in every mode (the default). ``--history`` also runs handler mode with
history off, and with history in the state store's own SQLite file, in the same interleaved runs, and
prints what history costs (target: ≤ 10% of handler mode's throughput).

The bench topic is an IMPORTACAO queue, so every mode takes one message per key (its kind's default).
``--one-per-key`` also runs handler mode with it off, in the same interleaved runs, and prints what it
costs (target: nothing measurable).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
from rich.console import Console
from rich.table import Table

from cpu import cpu_s
from xtreaming.broker import Record
from xtreaming.broker.sqlite import SqliteBroker
from xtreaming.errors import TopicNotFound
from xtreaming.localhost import free_port

TOPIC = "MULTCOB02.1186.IMPORTACAO.BENCH"
VALUE = b'{"cpf":"00000000000","nome":"Fulano de Tal","valor_divida":"1234.56","vencimento":"2026-03-10"}'
SLOTS = 2
#: What the raw loop appends per message: a record of the size and shape of a real ACK (key, source
#: position, outcome, task, farm, worker, time), so that both paths write the same bytes.
ACK = (
    b'{"key":"%s","topic":"' + TOPIC.encode() + b'","partition":%d,"offset":%d,"status":"ok","attempts":1,'
    b'"task_id":"0123456789abcdef0123456789abcdef","farm":"bench","worker":0,'
    b'"finished_at":"2026-11-23T13:27:00.123456+00:00","detail":null}'
)


def fill(path: Path, count: int, topic: str = TOPIC, value: bytes = VALUE) -> None:
    """``count`` messages of distinct keys (``00000000000`` on) in ``topic`` (4 partitions) of the embedded log."""
    log = SqliteBroker(path)
    log.create_topic(topic, 4)
    for start in range(0, count, 10_000):
        log.append(topic, [Record(f"{i:011d}".encode(), value) for i in range(start, min(count, start + 10_000))])
    log.close()


def raw_broker(root: Path, count: int) -> float:
    """Messages/s of read + append on the embedded log: the floor under any coordinator."""
    fill(root / "raw.db", count)
    log = SqliteBroker(root / "raw.db")
    ack = f"{TOPIC}.ACK"
    log.create_topic(ack, 4)
    started = time.perf_counter()
    for partition in range(log.partition_count(TOPIC)):
        offset = 0
        while page := log.read(TOPIC, partition, offset, max_records=1000):
            offset = page[-1].offset + 1
            records = [Record(m.key, ACK % (m.key, m.partition, m.offset)) for m in page]
            log.append(ack, records)
    elapsed = time.perf_counter() - started
    log.close()
    return count / elapsed


class BenchSite:
    """A coordinator process and one farm process on a fresh embedded log and state."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root = root
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.env = {
            **os.environ,
            "XTREAMING_BROKER_URL": f"sqlite:///{root}/log.db",
            "XTREAMING_DATABASE_URL": f"sqlite:///{root}/state.db",
            "XTREAMING_PORT": str(port),
            "XTREAMING_DISCOVERY_INTERVAL_S": "0.2",
            **env,
        }
        self.processes: list[subprocess.Popen[bytes]] = []
        self.api = httpx.Client(base_url=self.url, timeout=60)

    def start(self, *args: str) -> None:
        log = (self.root / f"{args[0]}.log").open("wb")
        command = [sys.executable, "-m", "xtreaming", *args]
        self.processes.append(subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT))

    def wait(self, what: str, check: Callable[[], object], timeout_s: float = 60, every_s: float = 0.05) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if check():
                    return
            except httpx.TransportError:
                pass
            time.sleep(every_s)
        raise SystemExit(f"timed out waiting for {what}; logs in {self.root}")

    def close(self) -> None:
        for process in reversed(self.processes):
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
        self.api.close()


@dataclass(frozen=True, slots=True)
class Run:
    seconds: float
    tasks: int
    coordinator_cpu_s: float
    farm_cpu_s: float
    #: Seconds after the last ACK until the history held every message's attempt (None: not watched).
    history_lag_s: float | None = None
    #: The farm's requests that settled or leased tasks meanwhile (lease requests and ``/complete``).
    requests: int = 0


def end_to_end(
    root: Path,
    count: int,
    settings: dict[str, object],
    env: dict[str, str] | None = None,
    history: Path | None = None,
    slots: int = SLOTS,
) -> Run:
    """Seconds from resuming the queue until every message is finished, the tasks it took, and the
    CPU seconds the coordinator and the farm (with its workers) spent meanwhile; ``env`` adds to the
    coordinator's environment; with ``history`` (its SQLite file), how long after the last ACK it held
    every attempt."""
    site = BenchSite(root, env or {})
    try:
        site.start("coordinator")
        site.wait("the coordinator", lambda: site.api.get("/healthz").status_code == 200)
        site.api.post("/api/profiles", json={"pattern": ".*", "settings": settings}).raise_for_status()
        fill(root / "log.db", count)
        site.wait("the queue", lambda: site.api.get(f"/api/queues/{TOPIC}").status_code == 200)
        site.api.post(f"/api/queues/{TOPIC}/pause").raise_for_status()
        site.api.patch("/api/bases/MULTCOB02", json={"max_workers": slots}).raise_for_status()
        work_dir = str(root / "farm")
        site.start("farm", "--coordinator", site.url, "--name", "bench", "--slots", str(slots), "--work-dir", work_dir)
        site.wait("the farm", lambda: any(f["id"] == "bench" for f in site.api.get("/api/farms").json()))
        coordinator, farm = (psutil.Process(p.pid) for p in site.processes)
        site.wait("the farm to settle", lambda: quiet(coordinator, farm))
        cpu_before = cpu_s(coordinator), cpu_s(farm)
        requests_before = farm_requests(site.api)
        log = SqliteBroker(root / "log.db")
        started = time.perf_counter()
        site.api.post(f"/api/queues/{TOPIC}/resume").raise_for_status()
        site.wait("every ACK", lambda: acked(log) >= count, 900, every_s=0.01)
        elapsed = time.perf_counter() - started
        cpu_after = cpu_s(coordinator), cpu_s(farm)
        requests = farm_requests(site.api) - requests_before
        log.close()
        lag_s = None
        if history is not None:
            site.wait("the history", lambda: history_rows(history) >= count, 120, every_s=0.02)
            lag_s = time.perf_counter() - started - elapsed
        site.wait("every message", lambda: site.api.get(f"/api/queues/{TOPIC}").json()["consumed"] >= count)
        cpu = cpu_after[0] - cpu_before[0], cpu_after[1] - cpu_before[1]
        return Run(elapsed, task_count(root / "log.db"), *cpu, lag_s, requests)
    finally:
        site.close()


def farm_requests(api: httpx.Client) -> int:
    """Lease and completion requests the coordinator has answered, from its metrics."""
    routes = ('route="/api/farms/{farm_id}/lease"', 'route="/api/tasks/{task_id}/complete"')
    lines = api.get("/metrics").text.splitlines()
    return sum(
        int(float(line.rpartition(" ")[2]))
        for line in lines
        if line.startswith("xtreaming_http_request_duration_seconds_count") and any(r in line for r in routes)
    )


def history_rows(path: Path) -> int:
    """Attempts the history's SQLite file holds (0 before its table exists)."""
    with contextlib.closing(sqlite3.connect(path, timeout=30)) as conn:
        try:
            return int(conn.execute("SELECT count(*) FROM message_history").fetchone()[0])
        except sqlite3.OperationalError:  # no such table yet
            return 0


def quiet(*processes: psutil.Process) -> bool:
    """Whether ``processes`` (with their children) used under 2% of a CPU over the next 0.2 s: done
    starting (the farm's worker processes import their handler after it registers)."""
    before = sum(map(cpu_s, processes))
    time.sleep(0.2)
    return sum(map(cpu_s, processes)) - before < 0.004


def acked(log: SqliteBroker) -> int:
    """How many ACK records the log holds (none before the coordinator makes the topic)."""
    try:
        return sum(log.end_offsets_of([f"{TOPIC}.ACK"])[f"{TOPIC}.ACK"].values())
    except TopicNotFound:
        return 0


def task_count(path: Path) -> int:
    """How many tasks the ACK records name."""
    log = SqliteBroker(path)
    ack = f"{TOPIC}.ACK"
    tasks: set[str] = set()
    for partition in range(log.partition_count(ack)):
        offset = 0
        while page := log.read(ack, partition, offset, max_records=10_000):
            tasks.update(json.loads(m.value)["task_id"] for m in page)
            offset = page[-1].offset + 1
    log.close()
    return len(tasks)


def alone_ms(program: list[str], runs: int = 50) -> float:
    """Milliseconds to spawn ``program`` and wait for it, without any farm."""
    started = time.perf_counter()
    for _ in range(runs):
        subprocess.run(program, check=True)
    return (time.perf_counter() - started) / runs * 1000


#: Handler mode's other runs with ``--history``: the coordinator's extra environment under a site's root, and
#: the history's file (None: off).
HISTORY_VARIANTS: dict[str, Callable[[Path], tuple[dict[str, str], Path | None]]] = {
    "history off": lambda _: ({"XTREAMING_HISTORY_ENABLED": "false"}, None),
    "history on (in the state file)": lambda root: (
        {"XTREAMING_HISTORY_DATABASE_URL": f"sqlite:///{root}/state.db"},
        root / "state.db",
    ),
}


def print_history_cost(console: Console, count: int, batch: int, variants: dict[str, list[Run]]) -> None:
    """Handler mode's throughput with history on and off, median runs, and what history costs."""
    off = statistics.median(count / run.seconds for run in variants["history off"])
    table = Table(title=f"Per-message history: handler mode, batch {batch:,}, median of {len(variants['history off'])}")
    for column in ("variant", "msgs/s", "vs off", "coordinator CPU s", "history complete after s", "runs (msgs/s)"):
        table.add_column(column, justify="left" if column in ("variant", "runs (msgs/s)") else "right")
    for name, runs in variants.items():
        rate = statistics.median(count / run.seconds for run in runs)
        cpu = statistics.median(run.coordinator_cpu_s for run in runs)
        each = ", ".join(f"{count / run.seconds:,.0f}" for run in runs)
        lags = [run.history_lag_s for run in runs if run.history_lag_s is not None]
        lag = f"+{statistics.median(lags):.2f}" if lags else "-"
        table.add_row(name, f"{rate:,.0f}", f"{rate / off:.0%}", f"{cpu:.1f}", lag, each)
    console.print(table)
    console.print("target: history on costs ≤ 10% of handler mode's throughput (≥ 90% of history off)")


def print_one_per_key_cost(console: Console, count: int, batch: int, on: list[Run], off: list[Run]) -> None:
    """Handler mode's throughput with one message per key on (the IMPORTACAO default) and off, median runs."""
    rate_off = statistics.median(count / run.seconds for run in off)
    table = Table(title=f"One message per key: handler mode, batch {batch:,}, median of {len(off)}")
    for column in ("one_per_key", "msgs/s", "vs off", "coordinator CPU s", "runs (msgs/s)"):
        table.add_column(column, justify="left" if column in ("one_per_key", "runs (msgs/s)") else "right")
    for name, runs in (("on (IMPORTACAO default)", on), ("off", off)):
        rate = statistics.median(count / run.seconds for run in runs)
        cpu = statistics.median(run.coordinator_cpu_s for run in runs)
        each = ", ".join(f"{count / run.seconds:,.0f}" for run in runs)
        table.add_row(name, f"{rate:,.0f}", f"{rate / rate_off:.0%}", f"{cpu:.1f}", each)
    console.print(table)
    console.print("target: one message per key on is not slower than off")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--handler-batch", type=int, default=5000)
    parser.add_argument("--command-batch", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3, help="Runs of each path; the table shows the median run.")
    parser.add_argument("--slots", type=int, default=SLOTS, help="The farm's slots (and the base's limit).")
    parser.add_argument("--history", action="store_true", help="Also handler mode with history off, or in the state.")
    parser.add_argument("--one-per-key", action="store_true", help="Also handler mode with one message per key off.")
    args = parser.parse_args()
    n, slots = args.messages, args.slots
    noop = [shutil.which("true") or sys.executable] + ([] if shutil.which("true") else ["-c", "pass"])
    raws: list[float] = []
    handlers: list[Run] = []
    commands: list[Run] = []
    variants: dict[str, list[Run]] = {name: [] for name in HISTORY_VARIANTS} if args.history else {}
    keys_off: list[Run] = []
    for _ in range(args.runs):  # interleaved, so that a slow spell of the machine hits every path alike
        with tempfile.TemporaryDirectory() as tmp:
            raws.append(raw_broker(Path(tmp), n))
        with tempfile.TemporaryDirectory() as tmp:
            settings = {"handler": "xtreaming.demo.worker:noop", "batch_size": args.handler_batch}
            handlers.append(end_to_end(Path(tmp), n, settings, history=Path(tmp) / "state.history.db", slots=slots))
        with tempfile.TemporaryDirectory() as tmp:
            commands.append(end_to_end(Path(tmp), n, {"command": noop, "batch_size": args.command_batch}, slots=slots))
        for name, runs in variants.items():
            with tempfile.TemporaryDirectory() as tmp:
                env, history = HISTORY_VARIANTS[name](Path(tmp))
                runs.append(end_to_end(Path(tmp), n, settings, env, history, slots))
        if args.one_per_key:
            with tempfile.TemporaryDirectory() as tmp:
                off = {**settings, "one_per_key": False}
                keys_off.append(end_to_end(Path(tmp), n, off, history=Path(tmp) / "state.history.db", slots=slots))
    raw = statistics.median(raws)
    handler, command = (sorted(runs, key=lambda run: run.seconds)[len(runs) // 2] for runs in (handlers, commands))
    program_ms = alone_ms(noop)

    table = Table(
        title=f"{n:,} no-op messages end to end: one farm, {slots} slots, embedded log (this machine), "
        f"median of {args.runs} run(s)"
    )
    columns = ["path", "batch", "tasks", "s", "msgs/s", "vs raw", "ms/task", "overhead ms/task"]
    for column in [*columns, "tasks/s", "tasks/request", "coordinator CPU s", "µs/task", "farm CPU s", "µs/task "]:
        table.add_column(column, justify="left" if column == "path" else "right")
    table.add_row("raw broker: read + append", "-", "-", f"{n / raw:.2f}", f"{raw:,.0f}", "100%", *["-"] * 8)
    for label, batch, run, program in (
        ("handler mode (demo.worker:noop)", args.handler_batch, handler, 0.0),
        (f"command mode ({Path(noop[0]).name})", args.command_batch, command, program_ms),
    ):
        per_task_ms = run.seconds * slots / run.tasks * 1000
        overhead = f"{per_task_ms - program:.1f}" if program else "-"
        table.add_row(
            label, f"{batch:,}", f"{run.tasks:,}", f"{run.seconds:.2f}", f"{n / run.seconds:,.0f}",
            f"{n / run.seconds / raw:.0%}", f"{per_task_ms:.1f}", overhead, f"{run.tasks / run.seconds:,.0f}",
            f"{run.tasks / max(run.requests, 1):.1f}",
            f"{run.coordinator_cpu_s:.1f}", f"{run.coordinator_cpu_s / run.tasks * 1e6:,.0f}",
            f"{run.farm_cpu_s:.1f}", f"{run.farm_cpu_s / run.tasks * 1e6:,.0f}",
        )  # fmt: skip
    console = Console(width=160)
    console.print(table)
    console.print(f"the no-op program alone (spawn + wait): {program_ms:.1f} ms; targets: handler mode ≥ 50,000 "
                    "msgs/s and ≥ 50% of the raw broker; command mode ≤ 20 ms overhead per task")  # fmt: skip
    if args.runs > 1:
        spread = ", ".join(f"{n / h.seconds / r:.0%}" for h, r in zip(handlers, raws, strict=True))
        console.print(f"handler mode vs raw in each run: {spread}")
    if variants:
        print_history_cost(console, n, args.handler_batch, {"history on (own file, default)": handlers, **variants})
    if keys_off:
        print_one_per_key_cost(console, n, args.handler_batch, handlers, keys_off)


if __name__ == "__main__":
    main()
