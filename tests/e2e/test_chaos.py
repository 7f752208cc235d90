"""Chaos: the coordinator, farms and workers SIGKILLed at random during a run, with restarts.

Whatever the timing: no message lost, one ACK per message, never the same key in two processes at
once, never more workers on a base than its limit. Workers journal when each message starts and
ends (``chaos_worker.py``); a watcher times the end of what a killed worker had started by the last
moment its pid was seen alive, so an overlap it reports is certain, never an artefact of polling.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import random
import signal
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.broker.contract import read_all
from tests.e2e.lease_site import LeaseSite
from tests.waiting import wait_until
from xtreaming.broker import Broker, Record, open_broker

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

WORKER = str(Path(__file__).with_name("chaos_worker.py"))
#: Two topics on a base limited to 2 workers, one on a base limited to 2; 3 farms of 2 slots.
TOPICS = {
    "MULTCOB02.1186.IMPORTACAO.CAOS_A": 150,
    "MULTCOB02.1187.IMPORTACAO.CAOS_B": 150,
    "MULTCOB03.1189.IMPORTACAO.CAOS_C": 150,
}
LIMITS = {"MULTCOB02": 2, "MULTCOB03": 2}
#: Keys repeat within a topic (a pool smaller than the topic), as a foreign producer may write them.
KEYS_PER_TOPIC = 50
FARMS = ("farm-a", "farm-b", "farm-c")
HEARTBEAT_S = 0.5
#: Retries never run out (100 attempts) and come back at once: every message must end ok. Every copy of a key is
#: work here (no duplicate finishing): what is checked is that two never run at once.
WORK = {
    "batch_size": 20,
    "timeout_s": 60,
    "max_attempts": 100,
    "backoff_s": 0.1,
    "backoff_max_s": 0.2,
    "one_per_key": False,
}
CHAOS_S = 25.0


@dataclass
class Run:
    """What the journal says of one worker process."""

    pid: int
    base: str
    first_start: int
    last_end: int = 0
    #: Messages started and not ended: (topic, key) → start time.
    open: dict[tuple[str, str], int] = field(default_factory=dict)
    last_seen_alive: int = 0
    dead: bool = False


class Watcher(threading.Thread):
    """Tails the journal and watches each worker's pid; gives every message run an interval."""

    def __init__(self, journal: Path) -> None:
        super().__init__(daemon=True, name="chaos-watcher")
        self.journal = journal
        self.runs: dict[int, Run] = {}
        #: (topic, key) → [(start, end, pid)] of every run of a message with that key.
        self.intervals: dict[tuple[str, str], list[tuple[int, int, int]]] = defaultdict(list)
        self.done = threading.Event()
        self.lock = threading.Lock()
        self._offset = 0
        self._partial = b""

    def run(self) -> None:
        while not self.done.is_set():
            self.poll()
            time.sleep(0.005)  # the watch's pace; its timing error only ever shortens an interval
        self.poll()

    def poll(self) -> None:
        with self.lock:
            self._read()
            now = time.monotonic_ns()
            died = []
            for pid, run in self.runs.items():
                if run.dead:
                    continue
                if _alive(pid):
                    run.last_seen_alive = now
                else:
                    died.append(run)
            if died:
                self._read()  # what they wrote before dying, read or not yet
            for run in died:
                run.dead = True
                for (topic, key), start in run.open.items():
                    self.intervals[(topic, key)].append((start, run.last_seen_alive, run.pid))
                run.open.clear()

    def _read(self) -> None:
        if not self.journal.exists():
            return
        with self.journal.open("rb") as file:
            file.seek(self._offset)
            data = self._partial + file.read()
            self._offset = file.tell()
        *lines, self._partial = data.split(b"\n")
        for line in lines:
            event, pid_text, topic, base, key, _, at_text = line.decode().split(" ")
            pid, at = int(pid_text), int(at_text)
            run = self.runs.setdefault(pid, Run(pid, base, at, last_seen_alive=at))
            if event == "start":
                run.open[(topic, key)] = at
            else:
                self.intervals[(topic, key)].append((run.open.pop((topic, key)), at, pid))
                run.last_end = at

    def open_pids(self) -> list[int]:
        with self.lock:
            return [pid for pid, run in self.runs.items() if run.open and not run.dead]

    def worker_spans(self) -> list[tuple[str, int, int]]:
        """Each worker process's (base, first start, end): its last message's end, or when it died."""
        with self.lock:
            return [(r.base, r.first_start, r.last_seen_alive if r.dead else r.last_end) for r in self.runs.values()]


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def overlaps(intervals: list[tuple[int, int, int]]) -> list[tuple[tuple[int, int, int], tuple[int, int, int]]]:
    ordered = sorted(intervals)
    return [(a, b) for a, b in itertools.pairwise(ordered) if b[0] < a[1]]


def most_at_once(spans: list[tuple[int, int]]) -> int:
    events = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    running = peak = 0
    for _, step in events:  # an end sorts before a start at the same instant
        running += step
        peak = max(peak, running)
    return peak


@pytest.fixture
def site(tmp_path: Path) -> Iterator[LeaseSite]:
    site = LeaseSite(tmp_path, HEARTBEAT_S)
    yield site
    site.close()
    for process in psutil.process_iter(["cmdline"]):  # whatever a failed run left behind
        if WORKER in (process.info["cmdline"] or []):
            process.kill()


def test_random_kills_of_coordinator_farms_and_workers_lose_nothing_and_break_no_rule(site: LeaseSite) -> None:
    rng = random.Random(int(os.environ.get("CHAOS_SEED", "11")))
    journal = site.root / "chaos-journal.txt"
    command = [sys.executable, WORKER, str(journal), "150"]  # 150 ms a message: tasks of 3 s outlive outages
    site.call("POST", "/api/profiles", {"pattern": ".*", "settings": WORK | {"command": command}})
    for base, limit in LIMITS.items():
        site.call("PATCH", f"/api/bases/{base}", {"max_workers": limit})
    log = open_broker(site.env["XTREAMING_BROKER_URL"])
    for topic, count in TOPICS.items():
        log.create_topic(topic, 3)
        log.append(topic, [Record(f"{i % KEYS_PER_TOPIC:011d}".encode(), b'{"n": %d}' % i) for i in range(count)])
    farms = {name: site.farm(name, 2) for name in FARMS}
    watcher = Watcher(journal)
    watcher.start()
    kills: Counter[str] = Counter()
    try:
        wait_until(lambda: journal.exists(), 30, "the first worker to start")
        stop_at = time.monotonic() + CHAOS_S
        while time.monotonic() < stop_at:
            time.sleep(rng.uniform(0.3, 2.0))  # the chaos's pace: faults at random moments
            target = rng.choice(["coordinator", "farm", "worker", "worker"])
            if target == "worker":
                if not (pids := watcher.open_pids()):
                    continue
                kill_if_running(rng.choice(pids))
            elif target == "farm":
                farm = farms[rng.choice(FARMS)]
                farm.kill()
                time.sleep(rng.uniform(0, 2.0))  # restarted at once or after a while, as systemd may
                farm.start()
            elif target == "coordinator":
                site.coordinator.kill()
                time.sleep(rng.uniform(0, 3.0))  # up to twice the time after which farms count as lost
                site.coordinator.start()
            kills[target] += 1

        total = sum(TOPICS.values())
        wait_until(lambda: len(positions_acked(log)) >= total, 150, f"all {total} messages ACKed")
    finally:
        for farm in farms.values():
            farm.kill()  # its workers die with it
        site.coordinator.kill()
        wait_until(lambda: not watcher.open_pids(), 10, "every worker to end")
        watcher.done.set()
        watcher.join()

    acks = acks_of(log)
    log.close()
    logging.getLogger(__name__).warning("chaos: kills %s; %d worker processes", dict(kills), len(watcher.runs))
    per_position = Counter((a["topic"], a["partition"], a["offset"]) for a in acks)
    assert len(per_position) == sum(TOPICS.values())
    assert [p for p, n in per_position.items() if n > 1] == []
    assert {a["status"] for a in acks} == {"ok"}
    same_key = {key: found for key, runs in watcher.intervals.items() if (found := overlaps(runs))}
    assert same_key == {}
    spans = watcher.worker_spans()
    for base, limit in LIMITS.items():
        assert most_at_once([(start, end) for b, start, end in spans if b == base]) <= limit, base


def kill_if_running(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # it finished on its own meanwhile
        os.kill(pid, signal.SIGKILL)


def acks_of(log: Broker) -> list[dict[str, Any]]:
    """Every ACK record of the chaos topics, decoded."""
    ack_topics = [f"{topic}.ACK" for topic in TOPICS if f"{topic}.ACK" in log.list_topics()]
    return [json.loads(m.value) for topic in ack_topics for ms in read_all(log, topic).values() for m in ms]


def positions_acked(log: Broker) -> set[tuple[str, int, int]]:
    return {(a["topic"], a["partition"], a["offset"]) for a in acks_of(log)}
