"""The coordinator service on a real store and a real log, driven with an injected clock.

Every test runs on both backends a site can have: the embedded SQLite log with SQLite state, and
Kafka (a tansu broker of the test's own) with PostgreSQL state (a fresh schema).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.coordinator.workers import WORKER, give_workers
from tests.services import fresh_postgres_schema
from xtreaming.broker import Broker, Record, open_broker
from xtreaming.coordinator import service
from xtreaming.coordinator.core.ledger import LedgerState
from xtreaming.coordinator.core.scheduler import Decision, FreeSlot, schedule
from xtreaming.coordinator.core.snapshot import Snapshot
from xtreaming.coordinator.options import CoordinatorOptions
from xtreaming.coordinator.records import LedgerRecord, WorkSettings
from xtreaming.coordinator.service import Assignment, Coordinator, Report
from xtreaming.coordinator.store import Store
from xtreaming.errors import BrokerUnavailable, FarmNotFound, QueueNotFound
from xtreaming.wire.message_id import message_id
from xtreaming.wire.verdict import Verdict

TOPIC = "MULTCOB03.1189.IMPORTACAO.ATUALIZA_BUREAU"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 3, 13, 0, tzinfo=UTC)  # a Tuesday, 10:00 in São Paulo

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Site:
    """A store, a log and a coordinator over them, restartable like the real process."""

    def __init__(self, broker_url: str, store_url: str) -> None:
        self.broker_url = broker_url
        self.store_url = store_url
        self.clock = Clock()
        self.broker: Broker = open_broker(broker_url)
        self.store = Store.open(store_url)
        self.coordinator = self._start()

    def _start(self) -> Coordinator:
        options = CoordinatorOptions(heartbeat_interval_s=5, lease_grace_s=0)
        return Coordinator(self.store, self.broker, options, clock=self.clock)

    def restart(self) -> Coordinator:
        self.store.close()
        self.broker.close()
        self.broker = open_broker(self.broker_url)
        self.store = Store.open(self.store_url)
        self.coordinator = self._start()
        return self.coordinator

    def publish(self, topic: str, keys: list[str], partitions: int = 1) -> None:
        self.broker.create_topic(topic, partitions)
        self.broker.append(topic, [Record(k.encode(), f"<cliente cpf='{k}'/>".encode()) for k in keys])
        self.coordinator.run_once()
        give_workers(self.coordinator)

    def results(self, topic: str) -> list[dict[str, Any]]:
        if topic not in self.broker.list_topics():
            return []
        rows = []
        for partition in range(self.broker.partition_count(topic)):
            rows += [json.loads(m.value) for m in self.broker.read(topic, partition, 0, max_records=100_000)]
        return rows


@pytest.fixture(params=["sqlite", pytest.param("kafka", marks=[pytest.mark.kafka, pytest.mark.postgres])])
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Site]:
    """A site on the embedded log and SQLite state, or on Kafka (tansu) and PostgreSQL (a fresh schema)."""
    with ExitStack() as stack:
        if request.param == "sqlite":
            site = Site(f"sqlite:///{tmp_path}/log.db", f"sqlite:///{tmp_path}/state.db")
        else:
            tansu = request.getfixturevalue("fresh_tansu")
            site = Site(tansu.url, stack.enter_context(fresh_postgres_schema()))
        yield site
        site.store.close()
        site.broker.close()


def keys(count: int, start: int = 0) -> list[str]:
    return [f"{10_000_000_000 + i}" for i in range(start, start + count)]


def farm(site: Site, name: str = "farm-a", slots: int = 2, **labels: str) -> str:
    return site.coordinator.register_farm(name, labels or {"os": "windows"}, slots).id


def ok(task: Assignment) -> Report:
    return Report(Verdict.OK, {})


def test_discovery_registers_work_topics_with_their_kind_defaults(site: Site) -> None:
    for name in (TOPIC, "MULTCOB02.1186.COBSINC.LOCALIZACAO", f"{TOPIC}.ACK", "not-a-work-topic"):
        site.broker.create_topic(name, 1)

    added = site.coordinator.discover()

    assert sorted(added) == ["MULTCOB02.1186.COBSINC.LOCALIZACAO", TOPIC]
    cobsinc = site.coordinator.queue("MULTCOB02.1186.COBSINC.LOCALIZACAO").record.settings
    assert (cobsinc.batch_size, cobsinc.priority) == (1, 8)
    assert site.coordinator.queue(TOPIC).record.settings.batch_size == 500


def test_a_queue_on_a_new_base_discovered_after_the_first_decision_is_served(site: Site) -> None:
    site.publish("MULTCOB02.1186.COBSINC.LOCALIZACAO", keys(1))
    site.coordinator.figures()  # the scheduler's snapshot now exists, without MULTCOB03
    site.broker.create_topic(TOPIC, 1)
    site.broker.append(TOPIC, [Record(b"1", b"<cliente/>")])

    site.coordinator.discover()
    rows, bases = site.coordinator.figures()

    assert {b.name for b in bases} == {"MULTCOB02", "MULTCOB03"}
    assert {r.topic for r in rows} == {"MULTCOB02.1186.COBSINC.LOCALIZACAO", TOPIC}


def test_a_profile_sets_the_settings_of_matching_queues(site: Site) -> None:
    site.store.add_profile(r"MULTCOB03\..*\.IMPORTACAO\..*", WorkSettings(priority=7, batch_size=50, max_attempts=5))
    site.publish(TOPIC, keys(3))

    settings = site.coordinator.queue(TOPIC).record.settings

    assert (settings.priority, settings.batch_size, settings.max_attempts) == (7, 50, 5)


def test_an_answer_stops_once_it_carries_a_thousand_messages_and_small_tasks_go_together(site: Site) -> None:
    site.store.add_profile(r".*\.IMPORTACAO\..*", WorkSettings(batch_size=600, priority=9, command=WORKER))
    site.store.add_profile(r".*\.COBSINC\..*", WorkSettings(batch_size=10, priority=1, command=WORKER))
    site.coordinator.controls.update_base("MULTCOB03", "test", max_workers=40)
    site.publish("MULTCOB03.1189.COBSINC.LOCALIZACAO", keys(60))  # within its read-ahead (64)
    site.publish(TOPIC, keys(3000))
    site.coordinator.discover()
    site.coordinator.refresh()
    farm_id = farm(site, slots=36)

    first = site.coordinator.lease(farm_id, [0, 1, 2, 3])
    site.coordinator.refresh()  # on Kafka a lease leaves the read-ahead to a read without the lock
    rest = site.coordinator.lease(farm_id, [2, 3])
    site.coordinator.refresh()
    small = site.coordinator.lease(farm_id, list(range(4, 36)))

    assert [len(task.messages) for task in first] == [600, 600]
    assert [len(task.messages) for task in rest] == [600, 600]
    assert [len(task.messages) for task in small] == [600] + [10] * 6


def test_a_finished_task_writes_one_ack_per_message_and_moves_the_watermark(site: Site) -> None:
    site.publish(TOPIC, keys(10))
    farm_id = farm(site)

    [task] = site.coordinator.lease(farm_id, [0])
    settled = site.coordinator.complete(task.task_id, ok(task))
    site.coordinator.commit_offsets()

    assert (settled.accepted, settled.ok) == (True, 10)
    acks = site.results(f"{TOPIC}.ACK")
    assert sorted(a["offset"] for a in acks) == list(range(10))
    assert {a["status"] for a in acks} == {"ok"}
    assert acks[0]["key"] == "10000000000"
    assert site.broker.committed("xtreaming", TOPIC) == {0: 10}


def test_a_repeated_completion_changes_nothing(site: Site) -> None:
    site.publish(TOPIC, keys(5))
    [task] = site.coordinator.lease(farm(site), [0])
    site.coordinator.complete(task.task_id, ok(task))

    again = site.coordinator.complete(task.task_id, ok(task))

    assert again.accepted is False
    assert len(site.results(f"{TOPIC}.ACK")) == 5


def test_retried_messages_wait_their_backoff_then_go_to_the_dlq_with_their_errors(site: Site) -> None:
    site.store.add_profile(".*", WorkSettings(batch_size=10, max_attempts=2, backoff_s=30))
    site.publish(TOPIC, keys(1))
    farm_id = farm(site)
    [first] = site.coordinator.lease(farm_id, [0])
    site.coordinator.complete(first.task_id, Report(Verdict.RETRY, {}, "exit code 3"))

    assert site.coordinator.lease(farm_id, [0]) == []
    assert site.coordinator.explain(TOPIC).startswith("all pending messages are in back-off until")
    site.clock.advance(31)
    [second] = site.coordinator.lease(farm_id, [0])
    settled = site.coordinator.complete(second.task_id, Report(Verdict.RETRY, {}, "exit code 3 again"))

    assert second.messages[0].attempt == 2
    assert (settled.dead, settled.retried) == (1, 0)
    [dead] = site.broker.read(f"{TOPIC}.DLQ", 0, 0)
    headers = dict(dead.headers)
    assert dead.value == b"<cliente cpf='10000000000'/>"
    assert json.loads(headers["xtreaming-errors"]) == ["attempt 1: exit code 3", "attempt 2: exit code 3 again"]
    assert [a["status"] for a in site.results(f"{TOPIC}.ACK")] == ["dead"]


def test_an_error_verdict_goes_to_the_dlq_at_once(site: Site) -> None:
    site.publish(TOPIC, keys(2))
    [task] = site.coordinator.lease(farm(site), [0])
    bad = message_id(TOPIC, task.messages[0].partition, task.messages[0].offset)

    settled = site.coordinator.complete(task.task_id, Report(Verdict.OK, {bad: (Verdict.ERROR, "CPF inválido")}))

    assert (settled.ok, settled.dead) == (1, 1)
    assert len(site.broker.read(f"{TOPIC}.DLQ", 0, 0)) == 1


def test_two_messages_of_one_key_are_never_in_flight_together(site: Site) -> None:
    site.store.add_profile(TOPIC.replace(".", r"\."), WorkSettings(one_per_key=False), None)  # both copies wanted
    site.publish(TOPIC, ["111", "222", "111"])
    farm_id = farm(site)

    [task] = site.coordinator.lease(farm_id, [0])
    assert [m.key for m in task.messages] == [b"111", b"222"]
    assert site.coordinator.lease(farm_id, [1]) == []
    site.coordinator.complete(task.task_id, ok(task))
    [later] = site.coordinator.lease(farm_id, [1])

    assert [(m.key, m.offset) for m in later.messages] == [(b"111", 2)]


def test_a_key_in_flight_holds_its_next_message_back_among_hundreds_of_keys_in_flight(site: Site) -> None:
    site.store.add_profile(TOPIC.replace(".", r"\."), WorkSettings(batch_size=1, one_per_key=False), None)
    site.publish(TOPIC, [*keys(300), keys(1)[0]])  # the first key again, behind 300 one-message tasks
    farm_id = farm(site, slots=301)
    site.coordinator.controls.update_base("MULTCOB03", "ana", max_workers=400)
    tasks: list[Assignment] = []
    while len(tasks) < 300:  # a local log reads as the lease is made; Kafka's read-ahead is read by the pass
        tasks += site.coordinator.lease(farm_id, list(range(len(tasks), 300)))
        site.coordinator.run_once()  # topped up: in the end the last message is pending, its key in flight
    assert len(tasks) == 300

    assert site.coordinator.lease(farm_id, [300]) == []
    first = next(t for t in tasks if t.messages[0].offset == 0)
    site.coordinator.complete(first.task_id, ok(first))
    [later] = site.coordinator.lease(farm_id, [300])
    assert [(m.key, m.offset) for m in later.messages] == [(keys(1)[0].encode(), 300)]


def test_an_expired_lease_returns_its_messages_and_a_late_ok_still_counts_once(site: Site) -> None:
    site.publish(TOPIC, keys(3))
    farm_id = farm(site)
    [task] = site.coordinator.lease(farm_id, [0])

    site.clock.advance(601)
    site.coordinator.heartbeat(farm_id, [])
    assert site.coordinator.expire() == 1
    late = site.coordinator.complete(task.task_id, ok(task))

    assert (late.accepted, late.ok) == (False, 3)
    assert site.coordinator.lease(farm_id, [0]) == []
    assert len(site.results(f"{TOPIC}.ACK")) == 3


def test_a_silent_farm_is_lost_and_its_messages_run_elsewhere(site: Site) -> None:
    site.publish(TOPIC, keys(4))
    lost = farm(site, "farm-a")
    [task] = site.coordinator.lease(lost, [0])

    site.clock.advance(15)
    other = farm(site, "farm-b")
    site.coordinator.expire()
    [again] = site.coordinator.lease(other, [0])

    assert {(m.partition, m.offset) for m in again.messages} == {(m.partition, m.offset) for m in task.messages}
    assert all(m.attempt == 2 for m in again.messages)
    assert [lost_flag for record, lost_flag, _ in site.coordinator.farms() if record.id == lost] == [True]


def test_a_paused_queue_gets_no_task_and_says_so(site: Site) -> None:
    site.publish(TOPIC, keys(2))
    farm_id = farm(site)

    site.coordinator.controls.update_queue(TOPIC, "ana", paused=True)

    assert site.coordinator.lease(farm_id, [0]) == []
    assert site.coordinator.explain(TOPIC) == "paused"
    assert site.store.list_audit()[0].actor == "ana"


def test_the_base_limit_caps_running_tasks_and_is_explained(site: Site) -> None:
    site.store.add_profile(".*", WorkSettings(batch_size=1))
    site.publish(TOPIC, keys(5))
    farm_id = farm(site, slots=4)
    site.coordinator.controls.update_base("MULTCOB03", "ana", max_workers=2)

    tasks = site.coordinator.lease(farm_id, [0, 1, 2, 3])

    assert len(tasks) == 2
    assert site.coordinator.explain(TOPIC) == "base MULTCOB03 at its limit 2/2"


def test_a_window_limits_the_base_at_its_hours(site: Site) -> None:
    site.store.add_profile(".*", WorkSettings(batch_size=1))
    site.publish(TOPIC, keys(5))
    site.coordinator.controls.add_window("MULTCOB03", "ana", weekdays=[1], start="08:00", end="18:00", max_workers=1)

    tasks = site.coordinator.lease(farm(site, slots=3), [0, 1, 2])

    assert len(tasks) == 1
    assert site.coordinator.explain(TOPIC) == "base MULTCOB03 at its limit 1/1 in window 08:00–18:00"


def test_a_restart_keeps_leased_tasks_and_redoes_nothing_finished(site: Site) -> None:
    site.store.add_profile(".*", WorkSettings(batch_size=4))
    site.publish(TOPIC, keys(12), partitions=2)
    farm_id = farm(site, slots=3)
    done, running, third = site.coordinator.lease(farm_id, [0, 1, 2])
    site.coordinator.complete(done.task_id, ok(done))

    coordinator = site.restart()
    coordinator.run_once()
    nothing_new = coordinator.lease(farm_id, [0])
    settled = [coordinator.complete(t.task_id, ok(t)) for t in (running, third)]

    assert nothing_new == []
    assert [(s.accepted, s.ok) for s in settled] == [(True, 4), (True, 4)]
    acked = sorted((a["partition"], a["offset"]) for a in site.results(f"{TOPIC}.ACK"))
    assert len(acked) == 12
    assert len(set(acked)) == 12


def test_unknown_ids_are_refused_with_a_message(site: Site) -> None:
    with pytest.raises(FarmNotFound, match="farm 'ghost' is not registered"):
        site.coordinator.lease("ghost", [0])
    with pytest.raises(QueueNotFound, match=r"queue 'A\.1\.B\.C' is not registered"):
        site.coordinator.explain("A.1.B.C")
    assert site.coordinator.complete("no-such-task", Report(Verdict.OK, {})).accepted is False


def test_the_screen_figures_follow_the_work(site: Site) -> None:
    site.store.add_profile(".*", WorkSettings(batch_size=4))
    site.publish(TOPIC, keys(10))
    farm_id = farm(site)
    [task] = site.coordinator.lease(farm_id, [0])
    site.coordinator.complete(task.task_id, ok(task))
    site.coordinator.lease(farm_id, [0])

    [row], [base] = site.coordinator.figures()

    assert (row.consumed, row.pending, row.in_flight, row.workers, row.state) == (4, 6, 4, 1, "running")
    assert (base.name, base.in_use, base.limit) == ("MULTCOB03", 1, 4)
    assert row.speed > 0


def test_settling_many_tasks_with_the_next_lease_stores_everything_once(site: Site) -> None:
    site.store.add_profile(".*", WorkSettings(batch_size=1, max_attempts=3, backoff_s=0))
    site.publish(TOPIC, keys(5))
    farm_id = farm(site, slots=3)
    good, flaky, broken = site.coordinator.lease(farm_id, [0, 1, 2])

    reports = [
        (good.task_id, Report(Verdict.OK, {})),
        (flaky.task_id, Report(Verdict.RETRY, {}, "timeout talking to the CRM")),
        (broken.task_id, Report(Verdict.ERROR, {}, "CPF inválido")),
    ]
    settled, leased = site.coordinator.settle_and_lease(farm_id, reports, [0, 1, 2])
    site.coordinator.settle_and_lease(farm_id, [(t.task_id, Report(Verdict.OK, {})) for t in leased], [])

    assert [(s.ok, s.retried, s.dead) for s in settled] == [(1, 0, 0), (0, 1, 0), (0, 0, 1)]
    assert sorted(a["status"] for a in site.results(f"{TOPIC}.ACK")) == ["dead"] + ["ok"] * 4
    assert site.store.load_retries() == []  # the retried message finished: its retry row is gone
    assert len(site.broker.read(f"{TOPIC}.DLQ", 0, 0)) == 1
    restarted = site.restart()
    restarted.run_once()
    assert restarted.lease(farm_id, [0]) == []
    [row], _ = restarted.figures()
    assert (row.consumed, row.pending) == (5, 0)


def test_a_farms_slots_that_go_to_one_queue_are_decided_with_one_search(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    searches: list[str] = []

    def counted(snapshot: Snapshot, slot: FreeSlot, now: datetime) -> Decision:
        searches.append(slot.farm)
        return schedule(snapshot, slot, now)

    monkeypatch.setattr(service, "schedule", counted)
    site.store.add_profile(".*", WorkSettings(batch_size=1))
    site.publish(TOPIC, keys(10))
    site.coordinator.controls.update_base("MULTCOB03", "test", max_workers=8)
    farm_id = farm(site, slots=8)

    alone = site.coordinator.lease(farm_id, list(range(6)))
    assert [t.messages[0].offset for t in alone] == [0, 1, 2, 3, 4, 5]
    assert len(searches) == 1  # the other five repeat the first decision

    for task in alone:
        site.coordinator.complete(task.task_id, ok(task))
    other = "MULTCOB03.1189.IMPORTACAO.SEGUNDA"  # as urgent: the two take turns, by fairness
    site.publish(other, keys(4, start=100))
    site.coordinator.discover()
    site.coordinator.run_once()
    give_workers(site.coordinator)
    searches.clear()
    shared = site.coordinator.lease(farm_id, list(range(8)))
    assert Counter(str(t.topic) for t in shared) == {TOPIC: 4, other: 4}
    assert 1 < len(searches) < 8  # a slot that goes to the other queue is searched for; one that goes alike is not


def test_tasks_settled_out_of_order_in_one_request_store_the_ledger_the_last_of_them_leaves(site: Site) -> None:
    site.store.add_profile(".*", WorkSettings(batch_size=1))
    site.publish(TOPIC, keys(6))
    farm_id = farm(site, slots=4)
    tasks = site.coordinator.lease(farm_id, [0, 1, 2, 3])
    by_offset = {t.messages[0].offset: t for t in tasks}
    assert sorted(by_offset) == [0, 1, 2, 3]

    reports = [(by_offset[o].task_id, ok(by_offset[o])) for o in (3, 1, 0)]  # offset 2 still runs
    site.coordinator.settle_and_lease(farm_id, reports, [])

    assert site.store.load_ledgers() == [LedgerRecord(TOPIC, 0, LedgerState(2, ((3, 4),)))]
    restarted = site.restart()
    restarted.run_once()
    restarted.complete(by_offset[2].task_id, ok(by_offset[2]))
    rest = restarted.lease(farm_id, [0, 1, 2])
    assert sorted(t.messages[0].offset for t in rest) == [4, 5]
    assert sorted(a["offset"] for a in site.results(f"{TOPIC}.ACK")) == [0, 1, 2, 3]


def test_a_completion_cut_short_by_a_broker_outage_counts_once_when_sent_again(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    site.publish(TOPIC, keys(10))
    farm_id = farm(site)
    [task] = site.coordinator.lease(farm_id, [0])

    def unreachable(topic: str, records: object) -> None:
        raise BrokerUnavailable("broker down (test)")

    with monkeypatch.context() as patched:  # results are appended in one step or in two (``begin_append``)
        patched.setattr(site.broker, "append", unreachable)
        patched.setattr(site.broker, "begin_append", unreachable)
        with pytest.raises(BrokerUnavailable):
            site.coordinator.complete(task.task_id, ok(task))  # the ACKs could not be written
    again = site.coordinator.complete(task.task_id, ok(task))  # the farm sends its result again

    assert (again.accepted, again.ok) == (True, 10)
    assert sorted(a["offset"] for a in site.results(f"{TOPIC}.ACK")) == list(range(10))
    [row], _ = site.coordinator.figures()
    assert (row.consumed, row.pending, row.in_flight) == (10, 0, 0)
