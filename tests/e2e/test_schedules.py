"""Scheduled publishing across processes on one PostgreSQL store: two coordinators that both run schedules (no
election to keep one out: the worst case) publish each tick exactly once; a coordinator SIGKILLed in the middle
of a tick leaves it to be finished by another, every record of it once; and across a failover between two real
coordinators (leader and standby) every tick is published exactly once, by the leader of the moment. And the
embedded default: one coordinator SIGKILLed mid-tick finishes the tick exactly once after its restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.broker.contract import read_all
from tests.e2e.coordinator_process import CoordinatorProcess
from tests.services import fresh_postgres_schema
from tests.waiting import wait_until
from xtreaming.broker import Broker, open_broker
from xtreaming.coordinator.schedule_records import RECORD_HEADER, TICK_HEADER, CallableSource, Misfire, Tick, TickState
from xtreaming.coordinator.schedules import Schedules
from xtreaming.coordinator.store import Store

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

TOPIC = "MULTCOB02.1186.COBSINC.LOCALIZACAO"
FEEDS = "tests.coordinator.schedule_feeds"
#: A silent tick is finished by another coordinator after this long.
TAKEOVER_S = 3.0
ROOT = Path(__file__).resolve().parents[2]


class Runner:
    """``tests.e2e.schedule_runner`` in a process of its own; its log under ``root``."""

    def __init__(self, root: Path, name: str, store_url: str, broker_url: str, **env: str) -> None:
        self.log_path = root / f"runner-{name}.log"
        self.command = [sys.executable, "-m", "tests.e2e.schedule_runner", store_url, broker_url, str(TAKEOVER_S)]
        self.env = {**os.environ, **env}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Runner:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(self.command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            assert self.process.wait(10) == -signal.SIGKILL

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A fresh PostgreSQL schema for the state store, and an embedded log file: their URLs."""
    with fresh_postgres_schema() as store_url:
        yield store_url, f"sqlite:///{tmp_path / 'log.db'}"


def published(broker: Broker) -> Counter[tuple[str, int]]:
    """How many records of each (tick, place) the topic holds."""
    if TOPIC not in broker.list_topics():
        return Counter()
    found: Counter[tuple[str, int]] = Counter()
    for messages in read_all(broker, TOPIC).values():
        for message in messages:
            headers = dict(message.headers)
            found[headers[TICK_HEADER].decode(), int(headers[RECORD_HEADER])] += 1
    return found


def add_schedule(store: Store, broker: Broker, cron: str, feed: str) -> int:
    schedules = Schedules(store, lambda: broker, zone=ZoneInfo("America/Sao_Paulo"), partitions=2)
    return schedules.add(TOPIC, cron, CallableSource(f"{FEEDS}:{feed}"), Misfire.ONCE, "ana").id


def ticks_in(store: Store, schedule_id: int, state: TickState) -> list[Tick]:
    return [t for t in store.schedules.ticks(schedule_id, 1000) if t.state is state]


def test_two_coordinators_running_schedules_publish_each_tick_exactly_once(
    site: tuple[str, str], tmp_path: Path
) -> None:
    store_url, broker_url = site
    with Store.open(store_url) as store:
        broker = open_broker(broker_url)
        schedule_id = add_schedule(store, broker, "* * * * * */2", "two_clients")  # every 2 seconds
        runners = [Runner(tmp_path, name, store_url, broker_url).start() for name in ("a", "b")]
        try:
            wait_until(lambda: len(ticks_in(store, schedule_id, TickState.PUBLISHED)) >= 6, 40, "six ticks published")
        finally:
            for runner in runners:
                runner.kill()
        done = ticks_in(store, schedule_id, TickState.PUBLISHED)
        found = published(broker)
        broker.close()
    logs = "\n".join(r.log() for r in runners)
    assert set(found.values()) == {1}, logs  # no record of any tick twice
    in_log = {tick for tick, _ in found}
    for tick in done:
        name = f"{schedule_id}/{tick.tick_at.isoformat()}"
        assert (found[name, 0], found[name, 1]) == (1, 1), logs
    assert len(in_log) in (len(done), len(done) + 1)  # and maybe the tick both were killed in


def test_a_tick_cut_short_by_sigkill_is_finished_exactly_once(site: tuple[str, str], tmp_path: Path) -> None:
    store_url, broker_url = site
    slow = {"SLOW_CLIENTS": "5000", "SLOW_PAUSE_S": "0.4"}  # 5,000 records in about 1.6 s
    with Store.open(store_url) as store:
        broker = open_broker(broker_url)
        schedule_id = add_schedule(store, broker, "* * * * * */10", "slow_clients")  # every 10 seconds
        runners = {r.pid: r for r in (Runner(tmp_path, n, store_url, broker_url, **slow).start() for n in "ab")}
        try:

            def cut_in_the_middle() -> Tick | None:
                claimed = ticks_in(store, schedule_id, TickState.CLAIMED)
                return next((t for t in claimed if 1000 <= t.published < 5000), None)

            tick = wait_until(cut_in_the_middle, 30, "a tick with part of its records in the log")
            assert tick.owner is not None
            owner = runners[int(tick.owner.split("/")[1])]
            owner.kill()  # between two appends: 1,000 records (or more) of the tick are in the log
            cut = f"{schedule_id}/{tick.tick_at.isoformat()}"
            at_kill = sum(1 for name, _ in published(broker) if name == cut)
            assert 1000 <= at_kill < 5000

            def finished() -> Tick | None:
                return next((t for t in ticks_in(store, schedule_id, TickState.PUBLISHED) if t.id == tick.id), None)

            done = wait_until(finished, 30, "the tick cut short to be finished by the other coordinator")
            owner.start()  # back: it finds nothing of its own to finish, and runs the next ticks with the other
            after = len(ticks_in(store, schedule_id, TickState.PUBLISHED))
            wait_until(
                lambda: len(ticks_in(store, schedule_id, TickState.PUBLISHED)) > after, 30, "the next tick published"
            )
        finally:
            for runner in runners.values():
                runner.kill()
        found = published(broker)
        finished_ticks = ticks_in(store, schedule_id, TickState.PUBLISHED)
        broker.close()
    logs = "\n".join(r.log() for r in runners.values())
    assert done.owner != tick.owner
    assert done.published == 5000
    assert sorted(place for name, place in found if name == cut) == list(range(5000)), logs
    assert set(found.values()) == {1}, logs
    for other in finished_ticks:
        name = f"{schedule_id}/{other.tick_at.isoformat()}"
        assert sum(1 for n, _ in found if n == name) == 5000
    assert "was cut short" in logs


def test_a_schedule_across_a_failover_publishes_each_tick_exactly_once(site: tuple[str, str], tmp_path: Path) -> None:
    store_url, broker_url = site
    coordinators = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        coordinator = CoordinatorProcess(tmp_path / name, broker_url, store_url)
        coordinator.env.update({"XTREAMING_LEADER_LEASE_S": "1", "XTREAMING_SCHEDULE_TAKEOVER_S": str(TAKEOVER_S)})
        coordinators.append(coordinator)
    first, second = coordinators
    try:
        first.start("leader")
        second.start("standby")
        body = {"topic": TOPIC, "cron": "* * * * * */2", "callable": f"{FEEDS}:two_clients"}  # every 2 seconds
        schedule_id = first.call("POST", "/api/schedules", body)["id"]
        with Store.open(store_url) as store:

            def published_ticks() -> int:
                return len(ticks_in(store, schedule_id, TickState.PUBLISHED))

            wait_until(lambda: published_ticks() >= 3, 30, "three ticks published by the leader")
            first.kill()
            wait_until(lambda: second.health() == "leader", 30, "the standby to lead")
            before = published_ticks()
            wait_until(lambda: published_ticks() >= before + 3, 30, "three ticks published by the new leader")
            second.close()
            done = ticks_in(store, schedule_id, TickState.PUBLISHED)
        broker = open_broker(broker_url)
        found = published(broker)
        broker.close()
    finally:
        for coordinator in coordinators:
            coordinator.close()
    logs = first.log() + second.log()
    assert set(found.values()) == {1}, logs
    for tick in done:
        name = f"{schedule_id}/{tick.tick_at.isoformat()}"
        assert (found[name, 0], found[name, 1]) == (1, 1), logs
    publishers = {t.owner.split("/")[1] for t in done if t.owner is not None}
    assert publishers == {str(first.pid), str(second.pid)}  # each leader in its turn, never the standby


def test_a_coordinator_sigkilled_mid_tick_finishes_it_exactly_once_after_restart(tmp_path: Path) -> None:
    """The embedded default: one coordinator, its SQLite store and log; killed in the middle of a tick, started
    again, it finishes the tick from the log."""
    store_url, broker_url = f"sqlite:///{tmp_path / 'state.db'}", f"sqlite:///{tmp_path / 'log.db'}"
    coordinator = CoordinatorProcess(tmp_path, broker_url, store_url)
    coordinator.env.update(
        {"XTREAMING_SCHEDULE_TAKEOVER_S": str(TAKEOVER_S), "SLOW_CLIENTS": "5000", "SLOW_PAUSE_S": "0.4"}
    )
    try:
        coordinator.start()
        body = {"topic": TOPIC, "cron": "* * * * * */10", "callable": f"{FEEDS}:slow_clients"}
        schedule_id = coordinator.call("POST", "/api/schedules", body)["id"]
        with Store.open(store_url) as store:

            def cut_in_the_middle() -> Tick | None:
                claimed = ticks_in(store, schedule_id, TickState.CLAIMED)
                return next((t for t in claimed if 1000 <= t.published < 5000), None)

            tick = wait_until(cut_in_the_middle, 30, "a tick with part of its records in the log")
            coordinator.kill()
            coordinator.start()

            def finished() -> Tick | None:
                return next((t for t in ticks_in(store, schedule_id, TickState.PUBLISHED) if t.id == tick.id), None)

            done = wait_until(finished, 30, "the tick cut short to be finished after the restart")
        broker = open_broker(broker_url)
        found = published(broker)
        broker.close()
    finally:
        coordinator.close()
    cut = f"{schedule_id}/{tick.tick_at.isoformat()}"
    assert done.published == 5000
    assert done.owner != tick.owner
    assert sorted(place for name, place in found if name == cut) == list(range(5000)), coordinator.log()
    assert set(found.values()) == {1}, coordinator.log()
