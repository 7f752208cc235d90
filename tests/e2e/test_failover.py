"""Two coordinator processes on one PostgreSQL store (a fresh schema) and one Kafka broker (tansu), with real
farms given both URLs: the leader SIGKILLed mid-run is replaced by the standby within 10 s and the run loses
nothing, acks each message once and never runs one key twice at once; a leader SIGSTOPped past its lease is
replaced, and once woken (SIGCONT) it hands out nothing and writes nothing, then stands by."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from tests.broker.contract import read_all
from tests.e2e.coordinator_process import CoordinatorProcess
from tests.e2e.journal import overlapping, read_runs, runs_per_key
from tests.services import Tansu, fresh_postgres_schema
from tests.waiting import wait_until
from xtreaming.broker import open_broker

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]

TOPIC = "MULTCOB03.1189.IMPORTACAO.ATUALIZA_BUREAU"
WORKER = str(Path(__file__).with_name("keyed_worker.py"))
#: The issue's bound: a standby serves within 10 s of the leader's death.
TAKEOVER_BOUND_S = 10.0


class Pair:
    """Coordinators ``a`` (started first: the leader) and ``b`` (the standby) on one store and broker, and farms
    given both URLs; every worker writes to one journal."""

    def __init__(self, root: Path, broker_url: str, database_url: str, heartbeat_interval_s: float) -> None:
        self.root = root
        self.broker_url = broker_url
        self.database_url = database_url
        self.journal = root / "journal.txt"
        self.a = self._coordinator("a", heartbeat_interval_s)
        self.b = self._coordinator("b", heartbeat_interval_s)
        self.farms: list[subprocess.Popen[bytes]] = []

    def _coordinator(self, name: str, heartbeat_interval_s: float) -> CoordinatorProcess:
        folder = self.root / name
        folder.mkdir()
        process = CoordinatorProcess(folder, self.broker_url, self.database_url)
        process.env["XTREAMING_HEARTBEAT_INTERVAL_S"] = str(heartbeat_interval_s)
        return process

    def farm(self, name: str, slots: int) -> None:
        urls = f"{self.a.url},{self.b.url}"
        command = [sys.executable, "-m", "xtreaming", "farm", "--coordinator", urls, "--name", name]
        command += ["--slots", str(slots), "--work-dir", str(self.root / name), "--lease-wait", "0.5"]
        with (self.root / f"{name}.log").open("wb") as log:
            self.farms.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ)))

    def prepare(self, count: int, batch: int, work_s: float) -> None:
        """``count`` messages, one key each, on ``TOPIC``, run by the keyed worker (``work_s`` a task)."""
        command = [sys.executable, WORKER, str(self.journal), str(work_s), str(work_s)]
        self.a.call("POST", "/api/profiles", {"pattern": ".*", "settings": {"command": command, "batch_size": batch}})
        self.a.call("PATCH", "/api/bases/MULTCOB03", {"max_workers": 8})
        messages = [{"key": f"{i:011d}", "value": json.dumps({"cpf": f"{i:011d}"})} for i in range(count)]
        self.a.call("POST", f"/api/topics/{TOPIC}/messages", {"messages": messages, "partitions": 4})

    def consumed(self, coordinator: CoordinatorProcess) -> int:
        try:
            response = coordinator.api.get(f"/api/queues/{TOPIC}", timeout=2)
        except httpx.TransportError:
            return 0
        return int(response.json()["consumed"]) if response.status_code == 200 else 0

    def acks(self) -> list[dict[str, Any]]:
        log = open_broker(self.broker_url)
        try:
            return [json.loads(m.value) for ms in read_all(log, f"{TOPIC}.ACK").values() for m in ms]
        finally:
            log.close()

    def epoch(self) -> int:
        engine = create_engine(self.database_url, poolclass=NullPool)
        try:
            with engine.connect() as conn:
                return int(conn.execute(text("SELECT epoch FROM leadership")).scalar_one())
        finally:
            engine.dispose()

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-2000:]}" for p in self.root.rglob("*.log"))

    def close(self) -> None:
        for process in self.farms:
            if process.poll() is None:
                process.kill()
            process.wait()
        for coordinator in (self.a, self.b):
            if coordinator.process is not None and coordinator.process.poll() is None:
                coordinator.process.send_signal(signal.SIGCONT)  # a stopped process dies only once continued
        self.a.close()
        self.b.close()


@pytest.fixture
def pair_of(tmp_path: Path, fresh_tansu: Tansu) -> Iterator[Any]:
    """Make a ``Pair`` with the heartbeat interval asked for, its leader and standby started."""
    made: list[Pair] = []

    def make(heartbeat_interval_s: float) -> Pair:
        pair = Pair(tmp_path, fresh_tansu.url, database_url, heartbeat_interval_s)
        made.append(pair)
        pair.a.start("leader")
        pair.b.start("standby")
        return pair

    with fresh_postgres_schema() as database_url:
        try:
            yield make
        finally:
            for pair in made:
                pair.close()


def assert_each_message_acked_once_and_no_key_ran_twice_at_once(pair: Pair, count: int) -> list[Any]:
    acks = pair.acks()
    positions = Counter((a["partition"], a["offset"]) for a in acks)
    assert len(positions) == count, f"{count - len(positions)} messages lost\n{pair.logs()}"
    assert max(positions.values()) == 1, f"a message acked twice: {positions.most_common(3)}"
    assert Counter(a["status"] for a in acks) == {"ok": count}
    runs = read_runs(pair.journal)
    assert overlapping(runs) == [], "two runs of one key at once"
    return runs


def test_the_leader_killed_mid_run_is_replaced_within_10_s_and_the_run_loses_nothing(pair_of: Any) -> None:
    count, batch, work_s = 400, 10, 1.0
    pair: Pair = pair_of(5.0)  # the default heartbeat: farms stop unrenewed tasks after 10 s
    pair.prepare(count, batch, work_s)
    pair.farm("farm-a", slots=2)
    pair.farm("farm-b", slots=2)
    wait_until(lambda: pair.consumed(pair.a) >= count // 4, 60, "a quarter of the messages finished")

    pair.a.kill()
    killed = time.monotonic()
    wait_until(lambda: pair.b.health() == "leader", 30, "the standby to take over")
    takeover_s = time.monotonic() - killed
    wait_until(lambda: pair.consumed(pair.b) >= count, 90, "every message finished on the new leader")

    assert takeover_s < TAKEOVER_BOUND_S, f"the standby took {takeover_s:.1f} s to serve"
    assert pair.epoch() == 2
    runs = assert_each_message_acked_once_and_no_key_ran_twice_at_once(pair, count)
    assert set(runs_per_key(runs).values()) == {1}, "the failover cost work: a key ran twice"
    assert pair.consumed(pair.b) == count


def test_a_leader_paused_past_its_lease_hands_out_nothing_writes_nothing_once_woken_then_stands_by(
    pair_of: Any,
) -> None:
    count, batch, work_s = 200, 10, 0.5
    # Farms wait 10 s on a request to the frozen leader before trying the standby: a heartbeat of 10 s lets them
    # keep their tasks meanwhile (they stop tasks they could not renew for 20 s).
    pair: Pair = pair_of(10.0)
    pair.prepare(count, batch, work_s)
    pair.a.register("farm-probe", slots=1)
    pair.farm("farm-a", slots=2)
    wait_until(lambda: pair.consumed(pair.a) >= count // 5, 60, "a fifth of the messages finished")

    assert pair.a.process is not None
    pair.a.process.send_signal(signal.SIGSTOP)
    wait_until(lambda: pair.b.health() == "leader", 30, "the standby to take over from the frozen leader")
    pair.b.call("PATCH", f"/api/queues/{TOPIC}/settings", {"priority": 6})  # a write of the new leader
    pair.a.process.send_signal(signal.SIGCONT)
    lease = pair.a.api.post("/api/farms/farm-probe/lease", json={"slots": [0], "wait_s": 0})
    pause = pair.a.api.post(f"/api/queues/{TOPIC}/pause")
    wait_until(lambda: pair.a.health() == "standby", 15, "the woken leader to stand by")
    wait_until(lambda: pair.consumed(pair.b) >= count, 90, "every message finished on the new leader")

    assert lease.status_code == 503, lease.text
    assert lease.json()["leader"] in (None, {"url": pair.b.url, "since": ANY, "epoch": 2})  # never itself
    assert pause.status_code == 503, pause.text
    queue = pair.b.queue(TOPIC)
    assert queue["state"] != "paused"
    assert queue["priority"] == 6
    assert pair.epoch() == 2
    assert_each_message_acked_once_and_no_key_ran_twice_at_once(pair, count)
    assert "another coordinator took over from epoch 1; this one stands by" in pair.a.log()
