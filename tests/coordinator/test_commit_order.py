"""A lease request's settlement and leases are made under the coordinator's lock and stored out of it
(``commit_order.py``): the lock is free while the log confirms the results (Kafka's round trip), the farm is
answered only once the change is stored, changes are stored in the order they were made, and when one fails
every change made after it on the same memory fails too; memory is reloaded, and nothing is lost or ACKed twice."""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.coordinator.test_service import TOPIC, Site, keys, ok
from tests.services import Tansu, fresh_postgres_schema
from xtreaming.broker import Record
from xtreaming.broker.port import Positions
from xtreaming.broker.sqlite import SqliteBroker
from xtreaming.coordinator import commit_order
from xtreaming.coordinator.options import CoordinatorOptions
from xtreaming.coordinator.records import SlotRecord, WorkSettings
from xtreaming.coordinator.service import Assignment, Coordinator, Report
from xtreaming.errors import BrokerUnavailable, StoreUnavailable
from xtreaming.wire.verdict import Verdict

BATCH = 5
MESSAGES = 8 * BATCH
WAIT_S = 10.0


class HeldConfirms(SqliteBroker):
    """The embedded log whose next ``held`` appends to a ``.ACK`` topic (or to the topic ``suffix`` names) are
    confirmed only once the test lets them go, as a slow Kafka delivery is; with ``fail_held``, their confirmation
    then fails, although the records landed (a delivery report lost on its way back)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.suffix = ".ACK"
        self.held = 0
        self.fail_held = False
        self.confirming = threading.Event()
        self.go = threading.Event()

    def begin_append(self, topic: str, records: Sequence[Record]) -> Callable[[], Positions]:
        confirm = super().begin_append(topic, records)
        if not topic.endswith(self.suffix) or self.held == 0:
            return confirm
        self.held -= 1

        def held() -> Positions:
            self.confirming.set()
            assert self.go.wait(WAIT_S)
            positions = confirm()
            if self.fail_held:
                raise BrokerUnavailable("delivery report lost: timed out")
            return positions

        return held


@pytest.fixture
def held(site: Site, tmp_path: Path) -> Iterator[tuple[HeldConfirms, Coordinator]]:
    log = HeldConfirms(tmp_path / "held.db")
    site.store.add_profile(".*", WorkSettings(batch_size=BATCH, command=("worker.exe",)))
    log.create_topic(TOPIC, 1)
    log.append(TOPIC, [Record(key.encode(), b"<cliente/>") for key in keys(MESSAGES)])
    coordinator = Coordinator(site.store, log, CoordinatorOptions(heartbeat_interval_s=5), clock=site.clock)
    coordinator.run_once()
    yield log, coordinator
    log.go.set()
    log.close()


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(4) as executor:
        yield executor


def stored(site: Site) -> set[str]:
    return {t.id for t in site.store.active_tasks()}


def made(coordinator: Coordinator, task_id: str) -> bool:
    """Whether ``task_id``'s settlement is made in memory (stored or not)."""
    return coordinator.farm_of_task(task_id) is None


def eventually(condition: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def settle_and_lease(coordinator: Coordinator, farm_id: str, task: Assignment) -> list[Assignment]:
    _, tasks = coordinator.settle_and_lease(farm_id, [(task.task_id, ok(task))], [0])
    return tasks


def one_report(
    log: HeldConfirms, coordinator: Coordinator, pool: ThreadPoolExecutor
) -> tuple[str, Assignment, Assignment, Future[list[Assignment]]]:
    """A farm of two slots runs two tasks and reports the first, whose ACKs are held: the farm, both tasks, and the
    report on its way, once its ACKs wait to be confirmed."""
    farm_id = coordinator.register_farm("farm-a", {"os": "windows"}, 2).id
    first, second = coordinator.lease(farm_id, [0, 1])
    log.held = 1
    answer = pool.submit(settle_and_lease, coordinator, farm_id, first)
    assert log.confirming.wait(WAIT_S)
    return farm_id, first, second, answer


def test_the_lock_is_free_while_the_log_confirms_a_settlement_and_the_farm_is_answered_once_it_is_stored(
    site: Site, held: tuple[HeldConfirms, Coordinator], pool: ThreadPoolExecutor
) -> None:
    log, coordinator = held
    _, first, second, answer = one_report(log, coordinator, pool)
    progress = pool.submit(coordinator.progress, second.task_id, 1, BATCH)  # takes the lock
    progress_while_confirming = progress.result(WAIT_S)
    stored_while_confirming = stored(site)
    answered_while_confirming = answer.done()
    log.go.set()
    [next_task] = answer.result(WAIT_S)

    assert (progress_while_confirming, answered_while_confirming) == (True, False)
    assert stored_while_confirming == {first.task_id, second.task_id}  # neither settled nor leased in the store yet
    assert stored(site) == {second.task_id, next_task.task_id}


Reporting = tuple[str, Assignment, "Future[list[Assignment]]"]


def two_reports(log: HeldConfirms, coordinator: Coordinator, pool: ThreadPoolExecutor) -> tuple[Reporting, Reporting]:
    """Farm A reports its task, whose ACKs are held; farm B reports its own once A's change is made, and B's change is
    made too (its ACKs are confirmed at once). Each farm, its task and its report on the way."""
    reports = []
    for name in ("farm-a", "farm-b"):
        farm_id = coordinator.register_farm(name, {"os": "windows"}, 1).id
        reports.append((farm_id, coordinator.lease(farm_id, [0])[0]))
    log.held = 1
    (farm_a, task_a), (farm_b, task_b) = reports
    first = pool.submit(settle_and_lease, coordinator, farm_a, task_a)
    assert log.confirming.wait(WAIT_S)
    later = pool.submit(settle_and_lease, coordinator, farm_b, task_b)
    assert eventually(lambda: made(coordinator, task_b.task_id))
    return (farm_a, task_a, first), (farm_b, task_b, later)


def test_a_change_made_while_an_earlier_one_is_confirmed_is_stored_after_it(
    site: Site, held: tuple[HeldConfirms, Coordinator], pool: ThreadPoolExecutor
) -> None:
    log, coordinator = held
    (_, task_a, first), (_, task_b, later) = two_reports(log, coordinator, pool)
    time.sleep(0.3)  # time enough for the later change to be stored, were it not waiting for the first
    stored_before_the_first = stored(site)
    later_answered_before = later.done()
    log.go.set()
    [next_a], [next_b] = first.result(WAIT_S), later.result(WAIT_S)

    assert (stored_before_the_first, later_answered_before) == ({task_a.task_id, task_b.task_id}, False)
    assert stored(site) == {next_a.task_id, next_b.task_id}


def test_a_change_waiting_long_behind_one_stored_slowly_says_so_in_the_log(
    site: Site,
    held: tuple[HeldConfirms, Coordinator],
    pool: ThreadPoolExecutor,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(commit_order, "SLOW_WAIT_S", 0.2)
    log, coordinator = held
    (_, _, first), (_, _, later) = two_reports(log, coordinator, pool)
    time.sleep(0.5)
    log.go.set()
    first.result(WAIT_S), later.result(WAIT_S)
    slow = [r.getMessage() for r in caplog.records if "waited" in r.getMessage()]
    assert slow, "the change behind said nothing"
    waiting, storing = map(int, re.findall(r"change (\d+) has (?:waited|been storing)", slow[0]))
    assert waiting == storing + 1


def test_a_change_made_but_never_sent_to_be_stored_is_named_by_those_waiting_behind_it(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(commit_order, "SLOW_WAIT_S", 0.1)
    order = commit_order.CommitOrder()
    stopped = order.issue(0)  # never stored: its thread stopped (a bug this log is there to show)
    waiting = order.issue(0)
    waiter = threading.Thread(target=lambda: order.turn(waiting).__enter__(), daemon=True)
    waiter.start()
    waiter.join(0.35)
    assert waiter.is_alive()
    slow = [r.getMessage() for r in caplog.records if "waited" in r.getMessage()]
    assert len(slow) >= 2  # again every SLOW_WAIT_S
    assert "change 1 has waited" in slow[0]
    assert "change 0 has not come to be stored" in slow[0]
    with order.turn(stopped):  # stored after all: the waiter goes on (left waiting, it would log for the whole run)
        pass
    waiter.join(WAIT_S)
    assert not waiter.is_alive()


def test_when_a_change_fails_as_it_is_stored_those_made_after_it_fail_too_and_each_message_is_acked_once(
    site: Site, held: tuple[HeldConfirms, Coordinator], pool: ThreadPoolExecutor
) -> None:
    log, coordinator = held
    log.fail_held = True
    (farm_a, task_a, first), (farm_b, task_b, later) = two_reports(log, coordinator, pool)
    log.go.set()
    with pytest.raises(BrokerUnavailable, match="delivery report lost"):
        first.result(WAIT_S)
    with pytest.raises(StoreUnavailable, match="a change made before it failed"):
        later.result(WAIT_S)
    # Both farms send their results again: the results are in the log, so the reload settled them already.
    again_a = coordinator.settle_and_lease(farm_a, [(task_a.task_id, ok(task_a))], [])
    again_b = coordinator.settle_and_lease(farm_b, [(task_b.task_id, ok(task_b))], [])
    coordinator.run_once()  # the background pass reads the log into the memory reloaded
    running = {f: coordinator.lease(f, [0]) for f in (farm_a, farm_b)}
    while running:  # the farms run the rest to the end
        running = {f: settle_and_lease(coordinator, f, tasks[0]) for f, tasks in running.items() if tasks}
        running = {f: tasks for f, tasks in running.items() if tasks}

    acks = Counter(row["offset"] for row in acked(log))
    assert [s.accepted for s in (*again_a[0], *again_b[0])] == [False, False]  # settled by the reload
    assert acks == Counter(range(MESSAGES))
    assert stored(site) == set()


def test_a_write_made_holding_the_lock_waits_for_the_changes_stored_out_of_it(
    site: Site, held: tuple[HeldConfirms, Coordinator], pool: ThreadPoolExecutor
) -> None:
    """An expiry deletes a task row that a change still being confirmed inserts: the delete waits for the insert,
    or the task would stay in the store for good, leased to nobody."""
    log, coordinator = held
    farm_id = coordinator.register_farm("farm-a", {"os": "windows"}, 1).id
    [task] = coordinator.lease(farm_id, [0])
    log.held = 1

    answer: Future[list[Assignment]] = pool.submit(settle_and_lease, coordinator, farm_id, task)
    assert log.confirming.wait(WAIT_S)
    site.clock.advance(seconds=10_000)  # the new task's lease, and the farm, are long overdue
    expiry = pool.submit(coordinator.expire)
    time.sleep(0.3)  # time enough for the expiry to be done, were it not waiting for the change
    expired_before_stored = expiry.done()
    log.go.set()
    [next_task] = answer.result(WAIT_S)

    assert (expired_before_stored, expiry.result(WAIT_S)) == (False, 1)
    assert next_task.task_id not in stored(site)
    assert stored(site) == set()


def test_a_heartbeat_is_answered_and_stored_while_a_change_waits_for_its_results_to_be_confirmed(
    site: Site, held: tuple[HeldConfirms, Coordinator], pool: ThreadPoolExecutor
) -> None:
    log, coordinator = held
    farm_id, first, second, answer = one_report(log, coordinator, pool)
    site.clock.advance(seconds=1)
    slots = [SlotRecord(farm_id, 0, "idle"), SlotRecord(farm_id, 1, "running", second.task_id)]
    beat = pool.submit(coordinator.heartbeat, farm_id, slots, reporting=[first.task_id])
    beat.result(WAIT_S)
    beat_stored_while_confirming = site.store.get_farm(farm_id).last_heartbeat_at
    log.go.set()
    answer.result(WAIT_S)

    assert beat_stored_while_confirming == site.clock.now


def test_the_letters_of_dead_messages_are_confirmed_out_of_the_lock_and_their_acks_appended_only_then(
    site: Site, held: tuple[HeldConfirms, Coordinator], pool: ThreadPoolExecutor
) -> None:
    log, coordinator = held
    coordinator.controls.configure_queue(TOPIC, "test", {"max_attempts": 1})
    farm_id = coordinator.register_farm("farm-a", {"os": "windows"}, 2).id
    first, second = coordinator.lease(farm_id, [0, 1])
    log.suffix, log.held = ".DLQ", 1

    answer = pool.submit(coordinator.settle_and_lease, farm_id, [(first.task_id, Report(Verdict.RETRY, {}))], [])
    assert log.confirming.wait(WAIT_S)
    progress_while_confirming = pool.submit(coordinator.progress, second.task_id, 1, BATCH).result(WAIT_S)
    acked_while_confirming = acked(log)
    log.go.set()
    [settled], _ = answer.result(WAIT_S)

    assert (progress_while_confirming, acked_while_confirming) == (True, [])
    assert (settled.dead, sorted(row["offset"] for row in acked(log))) == (BATCH, list(range(BATCH)))
    assert {row["status"] for row in acked(log)} == {"dead"}


@pytest.mark.kafka
@pytest.mark.postgres
def test_on_a_frozen_kafka_a_settlement_waits_for_its_acks_without_the_lock_and_acks_each_message_once(
    tmp_path: Path, fresh_tansu: Tansu, pool: ThreadPoolExecutor
) -> None:
    """tansu frozen (SIGSTOP) as a report's ACKs are on their way: heartbeats and progress are answered meanwhile,
    the report is answered once tansu is back and its ACKs are in, and nothing is ACKed twice."""
    with fresh_postgres_schema() as database_url:
        site = Site(f"{fresh_tansu.url}?timeout_s=30", database_url)
        try:
            site.store.add_profile(".*", WorkSettings(batch_size=BATCH, command=("worker.exe",)))
            site.publish(TOPIC, keys(3 * BATCH))
            coordinator = site.coordinator
            farm_id = coordinator.register_farm("farm-a", {"os": "windows"}, 3).id
            first, second, third = coordinator.lease(farm_id, [0, 1, 2])
            settle_and_lease(coordinator, farm_id, first)  # the ACK topic is made: the next report only appends

            fresh_tansu.pause()
            try:
                answer = pool.submit(coordinator.settle_and_lease, farm_id, [(second.task_id, ok(second))], [])
                time.sleep(0.5)  # the report's ACKs are on their way to a broker that does not answer
                started = time.monotonic()
                slots = [SlotRecord(farm_id, 2, "running", third.task_id)]
                beat = pool.submit(coordinator.heartbeat, farm_id, slots, reporting=[second.task_id])
                progress = pool.submit(coordinator.progress, third.task_id, 2, BATCH)
                answered_while_frozen = (beat.result(WAIT_S).stop, progress.result(WAIT_S))
                answered_in_s = time.monotonic() - started
                report_answered_while_frozen = answer.done()
            finally:
                fresh_tansu.resume()
            [settled], _ = answer.result(60)
            settle_and_lease(coordinator, farm_id, third)

            assert (answered_while_frozen, report_answered_while_frozen) == (((), True), False)
            assert answered_in_s < 2.0
            assert (settled.accepted, settled.ok) == (True, BATCH)
            assert Counter(row["offset"] for row in site.results(f"{TOPIC}.ACK")) == Counter(range(3 * BATCH))
        finally:
            site.store.close()
            site.broker.close()


def acked(log: SqliteBroker) -> list[dict[str, Any]]:
    topic = f"{TOPIC}.ACK"
    if topic not in log.list_topics():
        return []
    return [
        json.loads(m.value)
        for partition in range(log.partition_count(topic))
        for m in log.read(topic, partition, 0, max_records=100_000)
    ]
