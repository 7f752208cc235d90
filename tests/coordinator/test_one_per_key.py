"""One message per key: a message whose key another unfinished message of its topic holds (pending anywhere in
the log before it, or running) is finished as a duplicate (ACK "duplicate", naming the other), never run; on
for IMPORTACAO, off for COBSINC. The keys are scouted ahead of the read-ahead, over the whole unfinished log.

A coordinator in process on the embedded log, with SQLite or PostgreSQL state; the messages are appended
straight to the log, as a foreign producer (the CRM's own) would.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.broker.refused_writes import writes_refused
from tests.coordinator.test_service import TOPIC, Site, farm, ok
from tests.waiting import wait_until
from xtreaming.broker import Message, Record
from xtreaming.broker.sqlite import SqliteBroker
from xtreaming.coordinator import key_scout
from xtreaming.coordinator.api.background import BackgroundLoop
from xtreaming.coordinator.outcomes import Outcome, Result
from xtreaming.coordinator.records import PROFILE_DEFAULTS
from xtreaming.coordinator.service import Assignment, Coordinator, Report
from xtreaming.errors import BrokerUnavailable
from xtreaming.wire.message_id import message_id
from xtreaming.wire.verdict import Verdict

SYNC = "MULTCOB03.1189.COBSINC.LOCALIZACAO"
HANDLER = "xtreaming.demo.worker:noop"


@pytest.fixture
def site(tmp_path: Path, store_url: str) -> Iterator[Site]:
    site = Site(f"sqlite:///{tmp_path}/log.db", store_url)
    # A worker for every queue; one message per key left to each queue's kind, as a profile leaves it.
    site.store.add_profile(".*", replace(PROFILE_DEFAULTS, batch_size=10, backoff_s=0, handler=HANDLER))
    yield site
    site.store.close()
    site.broker.close()


def append(site: Site, topic: str, keys: Sequence[str | None]) -> None:
    """Write messages straight to the log, as any producer may, and let the coordinator read them."""
    site.broker.create_topic(topic, 1)
    site.broker.append(topic, [Record(None if k is None else k.encode(), b"<cliente/>") for k in keys])
    site.coordinator.run_once()


def acks(site: Site, topic: str, status: str) -> list[dict[str, Any]]:
    return [a for a in site.results(f"{topic}.ACK") if a["status"] == status]


def lease_all(site: Site, farm_id: str) -> list[Assignment]:
    """Lease and complete (ok) tasks until none is left, a background pass before each lease as the
    coordinator's loop makes them meanwhile (the scout goes on where it stopped); returns them."""
    done: list[Assignment] = []
    while True:
        site.coordinator.run_once()
        tasks = site.coordinator.lease(farm_id, [0])
        if not tasks:
            return done
        for task in tasks:
            site.coordinator.complete(task.task_id, ok(task))
        done += tasks


def key_reads(site: Site, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The offsets the log's ``read_keys`` answers from now on, in order (a list kept up to date)."""
    offsets: list[int] = []
    read_keys = site.broker.read_keys

    def counted(topic: str, partition: int, offset: int, max_records: int = 1000) -> list[tuple[int, bytes | None]]:
        found = read_keys(topic, partition, offset, max_records)
        offsets.extend(o for o, _ in found)
        return found

    monkeypatch.setattr(site.broker, "read_keys", counted)
    return offsets


@contextmanager
def scout_pass_held(site: Site, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The scout's own pass (``scout_ahead``, on a thread) under way, held in its first key read until the block
    ends; then it goes on, and is waited for."""
    in_pass, let_go = threading.Event(), threading.Event()
    read_keys = site.broker.read_keys

    def held_keys(topic: str, partition: int, offset: int, max_records: int = 1000) -> list[tuple[int, bytes | None]]:
        in_pass.set()
        let_go.wait(30)
        return read_keys(topic, partition, offset, max_records)

    monkeypatch.setattr(site.broker, "read_keys", held_keys)
    scout = threading.Thread(target=site.coordinator.scout_ahead)
    scout.start()
    in_pass.wait(10)
    try:
        yield
    finally:
        let_go.set()
        scout.join(timeout=30)


def portfolio(count: int) -> list[str]:
    return [f"{10_000_000_000 + i}" for i in range(count)]


def duplicate_of(offset: int) -> str:
    return f"duplicate of {message_id(TOPIC, 0, offset)}, pending or running when this one was read"


def leased_keys(tasks: Sequence[Assignment]) -> list[bytes | None]:
    return [m.key for task in tasks for m in task.messages]


def test_a_copy_written_straight_to_the_log_is_finished_as_a_duplicate_of_the_pending_one(site: Site) -> None:
    append(site, TOPIC, ["111", "222", "111"])  # a copy within one read
    append(site, TOPIC, ["222", "111", "333"])  # and copies of a later load

    duplicates = acks(site, TOPIC, "duplicate")
    tasks = lease_all(site, farm(site))

    assert Counter(leased_keys(tasks)) == {b"111": 1, b"222": 1, b"333": 1}
    assert [(d["key"], d["offset"], d["detail"]) for d in duplicates] == [
        ("111", 2, f"duplicate of {message_id(TOPIC, 0, 0)}, pending or running when this one was read"),
        ("222", 3, f"duplicate of {message_id(TOPIC, 0, 1)}, pending or running when this one was read"),
        ("111", 4, f"duplicate of {message_id(TOPIC, 0, 0)}, pending or running when this one was read"),
    ]
    assert {(d["attempts"], d["task_id"], d["farm"], d["worker"]) for d in duplicates} == {(0, None, None, None)}
    assert len(acks(site, TOPIC, "ok")) == 3
    [row], _ = site.coordinator.figures()
    assert (row.consumed, row.pending, row.duplicates) == (6, 0, 3)


def test_a_copy_of_a_running_message_is_a_duplicate_and_the_key_opens_once_it_finished(site: Site) -> None:
    farm_id = farm(site)
    append(site, TOPIC, ["111"])
    [task] = site.coordinator.lease(farm_id, [0])

    append(site, TOPIC, ["111"])  # while the first runs: a duplicate
    site.coordinator.complete(task.task_id, ok(task))
    append(site, TOPIC, ["111"])  # after it finished: a portfolio loaded again, new work

    assert [d["offset"] for d in acks(site, TOPIC, "duplicate")] == [1]
    assert [(m.key, m.offset) for t in lease_all(site, farm_id) for m in t.messages] == [(b"111", 2)]


def test_a_cobsinc_queue_runs_every_copy(site: Site) -> None:
    append(site, SYNC, ["111", "111"])

    tasks = lease_all(site, farm(site))

    assert leased_keys(tasks) == [b"111", b"111"]
    assert acks(site, SYNC, "duplicate") == []


def test_messages_without_a_key_are_never_duplicates(site: Site) -> None:
    append(site, TOPIC, [None, "", None, ""])

    assert len(leased_keys(lease_all(site, farm(site)))) == 4


def test_a_message_waiting_for_its_retry_keeps_its_key(site: Site) -> None:
    farm_id = farm(site)
    append(site, TOPIC, ["111"])
    [task] = site.coordinator.lease(farm_id, [0])
    site.coordinator.complete(task.task_id, Report(Verdict.RETRY, {}, "CRM fora do ar"))

    append(site, TOPIC, ["111"])
    tasks = lease_all(site, farm_id)

    assert [(m.offset, m.attempt) for t in tasks for m in t.messages] == [(0, 2)]
    assert [d["offset"] for d in acks(site, TOPIC, "duplicate")] == [1]


def test_keys_of_tasks_and_retries_from_before_a_restart_stay_open_and_nothing_is_done_twice(site: Site) -> None:
    farm_id = farm(site)
    append(site, TOPIC, ["111", "222"])
    [running] = site.coordinator.lease(farm_id, [0])  # both
    site.coordinator.complete(running.task_id, Report(Verdict.OK, {message_id(TOPIC, 0, 1): (Verdict.RETRY, "x")}))
    append(site, TOPIC, ["333"])
    [running] = site.coordinator.lease(farm_id, [0])  # 222's retry and 333: leased when the coordinator stops

    site.restart()
    append(site, TOPIC, ["111", "222", "333"])  # 111 finished before the restart: new work
    site.coordinator.complete(running.task_id, ok(running))
    again = lease_all(site, farm_id)
    site.restart()
    site.coordinator.run_once()

    assert [(m.key, m.offset) for m in running.messages] == [(b"222", 1), (b"333", 2)]
    assert [(m.key, m.offset) for t in again for m in t.messages] == [(b"111", 3)]
    assert [(d["key"], d["offset"]) for d in acks(site, TOPIC, "duplicate")] == [("222", 4), ("333", 5)]
    assert site.coordinator.lease(farm_id, [0]) == []
    [row], _ = site.coordinator.figures()
    assert (row.consumed, row.pending) == (6, 0)


def test_turned_off_copies_run_and_turned_on_keys_read_before_are_held(site: Site) -> None:
    farm_id = farm(site)
    append(site, TOPIC, ["111"])
    site.coordinator.controls.configure_queue(TOPIC, "ana", {"one_per_key": False})
    append(site, TOPIC, ["111", "222"])
    [first] = site.coordinator.lease(farm_id, [0])  # 111 and 222: the second 111 waits for the first

    site.coordinator.controls.configure_queue(TOPIC, "ana", {"one_per_key": True})
    append(site, TOPIC, ["111", "222"])
    site.coordinator.complete(first.task_id, ok(first))
    rest = lease_all(site, farm_id)

    assert [(m.key, m.offset) for m in first.messages] == [(b"111", 0), (b"222", 2)]
    assert [(m.key, m.offset) for t in rest for m in t.messages] == [(b"111", 1)]
    assert [(d["key"], d["offset"]) for d in acks(site, TOPIC, "duplicate")] == [("111", 3), ("222", 4)]
    assert site.store.list_audit(limit=1)[0].details == {"one_per_key": True}


def test_a_duplicate_the_disk_refused_to_finish_is_finished_once_when_it_takes_writes_again(site: Site) -> None:
    append(site, TOPIC, ["222"])  # the ACK topic exists: the refused write is the duplicate's ACK
    site.coordinator.run_once()
    site.broker.append(TOPIC, [Record(b"111", b"<cliente/>"), Record(b"111", b"<cliente/>")])

    with writes_refused(), pytest.raises(BrokerUnavailable, match="disk I/O error"):
        site.coordinator.run_once()
    site.coordinator.run_once()  # memory reloaded from the store
    site.coordinator.run_once()  # both read again: the copy finished then
    tasks = lease_all(site, farm(site))

    assert Counter(leased_keys(tasks)) == {b"111": 1, b"222": 1}
    assert [(d["key"], d["offset"]) for d in acks(site, TOPIC, "duplicate")] == [("111", 2)]


def test_settlement_listeners_are_told_each_duplicate(site: Site) -> None:
    told: list[Outcome] = []
    site.coordinator.add_settlement_listener(told.extend)
    append(site, TOPIC, ["111", "111"])

    detail = f"duplicate of {message_id(TOPIC, 0, 0)}, pending or running when this one was read"
    assert told == [Outcome(Result.DUPLICATE, TOPIC, 0, 1, b"111", 0, "", -1, "", 0.0, detail)]


def test_duplicates_are_counted_on_metrics_and_in_the_queue_row_and_run_in_no_task(api: httpx.Client) -> None:
    profile = {"pattern": ".*", "settings": {"handler": HANDLER}}
    assert api.post("/api/profiles", json=profile).status_code == 201
    for _ in range(2):  # the same client in two loads
        load = {"messages": [{"key": "111", "value": "<cliente/>"}], "partitions": 1}
        assert api.post(f"/api/topics/{TOPIC}/messages", json=load).status_code == 200

    wait_until(lambda: api.get(f"/api/queues/{TOPIC}").json()["duplicates"] == 1, 10, "the copy finished")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(api.get("/metrics").text)
        for s in family.samples
    }

    labels = (("base", "MULTCOB03"), ("kind", "IMPORTACAO"), ("queue", TOPIC))
    assert samples[("xtreaming_queue_duplicate_messages", labels)] == 1
    assert samples[("xtreaming_outcomes_total", (("queue", TOPIC), ("result", "duplicate")))] == 1
    assert samples[("xtreaming_task_duration_seconds_count", ())] == 0
    assert api.get(f"/api/queues/{TOPIC}").json()["pending"] == 1


def test_a_load_far_larger_than_the_read_ahead_loaded_twice_runs_each_key_once(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(key_scout, "SCOUT_PASS_MESSAGES", 150)  # several passes to reach the second load
    clients = portfolio(1_000)  # batches of 10: a read-ahead of 64
    append(site, TOPIC, clients)
    append(site, TOPIC, clients)

    tasks = lease_all(site, farm(site))

    assert Counter(leased_keys(tasks)) == Counter(key.encode() for key in clients)
    duplicates = acks(site, TOPIC, "duplicate")
    assert [(d["offset"], d["detail"]) for d in duplicates] == [(1_000 + i, duplicate_of(i)) for i in range(1_000)]
    [row], _ = site.coordinator.figures()
    assert (row.consumed, row.pending, row.duplicates) == (2_000, 0, 1_000)


def test_the_scouts_own_passes_judge_a_long_load_to_its_end_reading_only_keys(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(key_scout, "SCOUT_PASS_MESSAGES", 150)
    clients = portfolio(1_000)
    append(site, TOPIC, clients)
    append(site, TOPIC, clients)  # two passes made: 300 offsets judged, 64 read ahead
    keys_read = key_reads(site, monkeypatch)
    records_read: list[int] = []
    read = site.broker.read

    def counted(
        topic: str, partition: int, offset: int, max_records: int = 1000, max_bytes: int = 1 << 20
    ) -> list[Message]:
        found = read(topic, partition, offset, max_records, max_bytes)
        records_read.extend(m.offset for m in found)
        return found

    monkeypatch.setattr(site.broker, "read", counted)
    passes = []
    while planned := site.coordinator.scout_ahead():
        passes.append(planned)

    assert passes == [150] * 11 + [50]
    assert (keys_read, records_read) == (list(range(300, 2_000)), [])
    tasks = lease_all(site, farm(site))
    assert Counter(leased_keys(tasks)) == Counter(key.encode() for key in clients)
    assert len(acks(site, TOPIC, "duplicate")) == 1_000


def test_the_background_loop_scouts_ahead_in_a_thread_of_its_own(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(key_scout, "SCOUT_PASS_MESSAGES", 150)
    append(site, TOPIC, portfolio(2_000))  # one pass made: 150 judged
    monkeypatch.setattr(site.coordinator, "top_up_wanted", lambda timeout_s: time.sleep(timeout_s))  # no reads
    monkeypatch.setattr(site.coordinator, "run_once", lambda: None)  # no passes but the scout's
    keys_read = key_reads(site, monkeypatch)
    loop = BackgroundLoop(site.coordinator, interval_s=0.05)
    loop.start()
    try:
        wait_until(lambda: keys_read[-1:] == [1_999], 30, "the scout's thread to judge the load to its end")
    finally:
        loop.stop()
    assert keys_read == list(range(150, 2_000))


def test_a_refresh_reads_what_was_judged_without_waiting_for_the_scouts_own_pass(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(key_scout, "SCOUT_PASS_MESSAGES", 150)
    append(site, TOPIC, portfolio(1_000))  # one pass made: 150 judged, 64 read ahead (batches of 10)
    site.coordinator.lease(farm(site, slots=4), [0, 1, 2, 3])  # 40 taken: room to read ahead
    made_pending: list[int] = []
    refresh = threading.Thread(target=lambda: made_pending.append(site.coordinator.refresh()))
    with scout_pass_held(site, monkeypatch):
        refresh.start()
        refresh.join(timeout=10)
        refreshed_during_the_pass = not refresh.is_alive()
    refresh.join(timeout=30)

    assert (refreshed_during_the_pass, made_pending) == (True, [40])
    assert site.coordinator.queue(TOPIC).partitions[0].next_read == 104


def test_a_publish_during_the_scouts_own_pass_waits_for_it_and_what_it_published_is_leasable_once_answered(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A publish's refresh does wait for the scout's pass (a refresh of the reads thread does not): the producer
    that was answered finds its messages leasable, not left for the pass after."""
    monkeypatch.setattr(key_scout, "SCOUT_PASS_MESSAGES", 150)
    append(site, "MULTCOB03.1189.IMPORTACAO.OUTRA", portfolio(1_000))  # one pass made: 150 judged, the rest left
    records = [Record(key.encode(), b"<cliente/>") for key in portfolio(10)]
    publish = threading.Thread(target=site.coordinator.publish, args=(TOPIC, records, 1))
    with scout_pass_held(site, monkeypatch):
        publish.start()
        publish.join(timeout=0.5)
        published_during_the_pass = not publish.is_alive()
    publish.join(timeout=30)
    tasks = site.coordinator.lease(farm(site, slots=1), [0])

    assert published_during_the_pass is False
    assert [len(t.messages) for t in tasks] == [10]


def test_a_load_appended_after_the_first_two_finished_runs_again(site: Site) -> None:
    farm_id, clients = farm(site), portfolio(200)
    append(site, TOPIC, clients)
    append(site, TOPIC, clients)
    first = lease_all(site, farm_id)

    append(site, TOPIC, clients)
    third = lease_all(site, farm_id)

    assert [m.offset for t in first for m in t.messages] == list(range(200))
    assert [m.offset for t in third for m in t.messages] == list(range(400, 600))
    assert len(acks(site, TOPIC, "duplicate")) == 200


def test_after_a_restart_the_copies_of_unfinished_messages_are_still_duplicates(site: Site) -> None:
    farm_id, clients = farm(site), portfolio(300)
    append(site, TOPIC, clients)
    [running] = site.coordinator.lease(farm_id, [0])  # the first 10 run as the coordinator stops
    append(site, TOPIC, clients)

    site.restart()
    site.coordinator.run_once()
    site.coordinator.complete(running.task_id, ok(running))
    rest = lease_all(site, farm_id)

    assert Counter(leased_keys([running, *rest])) == Counter(key.encode() for key in clients)
    assert [d["offset"] for d in acks(site, TOPIC, "duplicate")] == list(range(300, 600))


def test_copies_stay_duplicates_when_a_holder_from_before_a_restart_finishes_before_the_first_pass(
    site: Site,
) -> None:
    farm_id, clients = farm(site), portfolio(300)
    append(site, TOPIC, clients)
    [running] = site.coordinator.lease(farm_id, [0])  # the first 10 run as the coordinator stops
    append(site, TOPIC, clients)

    site.restart()
    site.coordinator.complete(running.task_id, ok(running))  # its report comes first, before any pass
    rest = lease_all(site, farm_id)

    assert Counter(leased_keys([running, *rest])) == Counter(key.encode() for key in clients)
    assert [d["offset"] for d in acks(site, TOPIC, "duplicate")] == list(range(300, 600))


class CountedReads(SqliteBroker):
    """The embedded log, counting the messages read from each topic, and apart the keys read."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.messages: Counter[str] = Counter()
        self.keys: Counter[str] = Counter()

    def read(
        self, topic: str, partition: int, offset: int, max_records: int = 1000, max_bytes: int = 1 << 20
    ) -> list[Message]:
        read = super().read(topic, partition, offset, max_records, max_bytes)
        self.messages[topic] += len(read)
        return read

    def read_keys(
        self, topic: str, partition: int, offset: int, max_records: int = 1000
    ) -> list[tuple[int, bytes | None]]:
        read = super().read_keys(topic, partition, offset, max_records)
        self.keys[topic] += len(read)
        return read


def test_a_queue_without_one_message_per_key_is_never_scouted(site: Site, tmp_path: Path) -> None:
    reads = CountedReads(tmp_path / "log.db")
    site.coordinator = Coordinator(site.store, reads, site.coordinator.options, clock=site.clock)
    site.broker.create_topic(TOPIC, 1)  # both discovered by the first pass
    append(site, SYNC, portfolio(300))
    append(site, TOPIC, portfolio(300))

    lease_all(site, farm(site))
    reads.close()

    assert {topic: reads.messages[topic] for topic in (SYNC, TOPIC)} == {SYNC: 300, TOPIC: 300}
    assert {topic: reads.keys[topic] for topic in (SYNC, TOPIC)} == {SYNC: 0, TOPIC: 300}  # scouted: keys alone
