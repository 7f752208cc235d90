"""Results in the log the store never heard of are settled as memory loads, never redone (``result_recovery.py``).

Each test leaves the state a crash between a settlement's appends and its commit leaves: the settlement's own
``.ACK`` records in the log (made by ``results.ack_records``, as it makes them) and the store as it was. Then
the coordinator starts again, on the embedded log and SQLite state and on Kafka (tansu) and PostgreSQL."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence

import pytest

from tests.broker.contract import read_all
from tests.coordinator.test_service import TOPIC, Site, farm, keys, ok
from tests.coordinator.test_service import site as site  # on both logs and stores
from xtreaming.broker import Message, Position, Record
from xtreaming.coordinator.core.pending import PendingMessage
from xtreaming.coordinator.outcomes import Outcome, Result
from xtreaming.coordinator.records import WorkSettings
from xtreaming.coordinator.results import Finished, Status, ack_records
from xtreaming.coordinator.service import Assignment, Coordinator, Report
from xtreaming.wire.verdict import Verdict

BATCH = 4


def acked_in_the_log(site: Site, task: Assignment, messages: Sequence[PendingMessage] | None = None) -> None:
    """Append the ACK records a settlement of ``task`` (or of its ``messages``) would, and nothing else."""
    done = Finished(TOPIC, task.task_id, "farm-a", task.slot, site.clock(), Status.OK, None, messages or task.messages)
    if f"{TOPIC}.ACK" not in site.broker.list_topics():
        site.broker.create_topic(f"{TOPIC}.ACK", 1)
    site.broker.append(f"{TOPIC}.ACK", ack_records(done))


def acks(site: Site) -> Counter[int]:
    """How many ACK records each offset of ``TOPIC`` (one partition) has."""
    records = read_all(site.broker, f"{TOPIC}.ACK").values()
    return Counter(json.loads(m.value)["offset"] for ms in records for m in ms)


def test_a_task_whose_acks_are_in_the_log_is_settled_as_the_coordinator_starts_and_never_runs_again(
    site: Site,
) -> None:
    site.store.add_profile(".*", WorkSettings(batch_size=BATCH))
    site.publish(TOPIC, keys(3 * BATCH))
    farm_id = farm(site, slots=2)
    first, second = site.coordinator.lease(farm_id, [0, 1])
    acked_in_the_log(site, second)  # its settlement's appends, and then the crash

    site.restart().run_once()
    told: list[Outcome] = []
    site.coordinator.add_settlement_listener(told.extend)
    late = site.coordinator.complete(second.task_id, ok(second))  # the farm's report, sent again
    [third] = site.coordinator.lease(farm_id, [1])
    site.coordinator.complete(first.task_id, ok(first))
    site.coordinator.complete(third.task_id, ok(third))

    assert (late.accepted, late.ok) == (False, 0)
    # The history and the metrics hear of the messages settled from the log, once, with the next settlement.
    heard = Counter((o.result, o.offset, o.task_id) for o in told)
    assert heard == {
        **{(Result.OK, m.offset, second.task_id): 1 for m in second.messages},
        **{(Result.OK, m.offset, task.task_id): 1 for task in (first, third) for m in task.messages},
    }
    assert {m.offset for m in third.messages} == set(range(2 * BATCH, 3 * BATCH))  # not the second's again
    assert acks(site) == dict.fromkeys(range(3 * BATCH), 1)
    [row], _ = site.coordinator.figures()
    assert (row.consumed, row.pending, row.in_flight) == (3 * BATCH, 0, 0)
    assert site.store.active_tasks() == []


def test_a_message_waiting_for_a_retry_whose_ack_is_in_the_log_is_not_retried(site: Site) -> None:
    site.store.add_profile(".*", WorkSettings(batch_size=1, backoff_s=0))
    site.publish(TOPIC, keys(2))
    farm_id = farm(site, slots=1)
    [task] = site.coordinator.lease(farm_id, [0])
    site.coordinator.complete(task.task_id, Report(Verdict.RETRY, {}, "busy"))
    [retry] = site.store.load_retries()
    acked_in_the_log(site, task)  # a later attempt's settlement, cut short after its appends

    site.restart().run_once()
    [other] = site.coordinator.lease(farm_id, [0])
    site.coordinator.complete(other.task_id, ok(other))

    assert (retry.offset, [m.offset for m in other.messages]) == (0, [1])
    assert site.store.load_retries() == []
    assert site.coordinator.lease(farm_id, [0]) == []
    assert acks(site) == {0: 1, 1: 1}


def test_records_of_another_writer_at_the_end_are_passed_over(site: Site) -> None:
    site.store.add_profile(".*", WorkSettings(batch_size=BATCH))
    site.publish(TOPIC, keys(2 * BATCH))
    farm_id = farm(site, slots=2)
    first, second = site.coordinator.lease(farm_id, [0, 1])
    acked_in_the_log(site, second)
    foreign = [b"not json", b'{"topic": "OTHER.1.IMPORTACAO.X", "partition": 0, "offset": 0, "status": "ok"}']
    site.broker.append(f"{TOPIC}.ACK", [Record(None, value) for value in foreign])

    site.restart()

    assert [t.id for t in site.store.active_tasks()] == [first.task_id]


def test_reading_back_stops_at_the_first_record_of_a_message_settled_already(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Thousands of ACKs of settled messages cost a read of the last few, not of all."""
    site.store.add_profile(".*", WorkSettings(batch_size=500))
    site.publish(TOPIC, keys(5_000))
    farm_id = farm(site, slots=1)
    for _ in range(10):
        site.coordinator.refresh()  # on Kafka a lease leaves the read-ahead to a read without the lock
        [task] = site.coordinator.lease(farm_id, [0])
        site.coordinator.complete(task.task_id, ok(task))
    site.publish(TOPIC, keys(BATCH, start=5_000))
    [last] = site.coordinator.lease(farm_id, [0])
    acked_in_the_log(site, last)
    read_back: Counter[str] = Counter()
    read = site.broker.read

    def counted(
        topic: str, partition: int, offset: int, max_records: int = 1000, max_bytes: int = 1 << 20
    ) -> list[Message]:
        messages = read(topic, partition, offset, max_records, max_bytes)
        read_back[topic] += len(messages)
        return messages

    monkeypatch.setattr(site.broker, "read", counted)
    site.coordinator = Coordinator(site.store, site.broker, site.coordinator.options, clock=site.clock)
    read_as_it_started = read_back[f"{TOPIC}.ACK"]

    assert site.store.active_tasks() == []
    assert 0 < read_as_it_started <= 32
    assert acks(site) == dict.fromkeys(range(5_000 + BATCH), 1)


@pytest.mark.parametrize("path", ["complete", "settle_and_lease"])
def test_a_dead_messages_letter_is_in_the_log_before_its_ack_is_appended(
    site: Site, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    """So an ACK read back as memory loads never finishes a death whose letter is missing."""
    site.store.add_profile(".*", WorkSettings(batch_size=2, max_attempts=1))
    site.publish(TOPIC, keys(2))
    farm_id = farm(site, slots=1)
    [task] = site.coordinator.lease(farm_id, [0])
    calls: list[str] = []
    append, begin_append = site.broker.append, site.broker.begin_append

    def appending(topic: str, records: Sequence[Record]) -> Sequence[Position]:
        calls.append(f"append {topic}")
        written = append(topic, records)
        calls.append(f"in the log {topic}")
        return written

    def beginning(topic: str, records: Sequence[Record]) -> Callable[[], Sequence[Position]]:
        calls.append(f"begin {topic}")
        confirm = begin_append(topic, records)

        def confirmed() -> Sequence[Position]:
            written = confirm()
            calls.append(f"in the log {topic}")
            return written

        return confirmed

    monkeypatch.setattr(site.broker, "append", appending)
    monkeypatch.setattr(site.broker, "begin_append", beginning)
    report = Report(Verdict.RETRY, {})  # the last attempt: both die
    if path == "complete":
        site.coordinator.complete(task.task_id, report)
    else:
        site.coordinator.settle_and_lease(farm_id, [(task.task_id, report)], [])

    ack = next(i for i, call in enumerate(calls) if call.endswith(f"{TOPIC}.ACK"))
    assert f"in the log {TOPIC}.DLQ" in calls[:ack]
    assert sum(map(len, read_all(site.broker, f"{TOPIC}.DLQ").values())) == 2


@pytest.mark.parametrize("restarts", [1, 2])
def test_of_a_task_cut_short_only_the_messages_acked_are_settled_and_its_report_settles_the_rest_once(
    site: Site, restarts: int
) -> None:
    """Kafka keeps a prefix of an append cut short: the task goes on with the messages not in the log, and holds
    only their keys, after another restart too (the store keeps the lease as it was made, and the ACK read back
    then names a message finished already)."""
    site.store.add_profile(".*", WorkSettings(batch_size=BATCH))
    site.publish(TOPIC, keys(BATCH))
    farm_id = farm(site, slots=1)
    [task] = site.coordinator.lease(farm_id, [0])
    acked_in_the_log(site, task, task.messages[:1])

    for _ in range(restarts):
        site.restart().run_once()
    [stored] = site.store.active_tasks()
    settled = site.coordinator.complete(task.task_id, ok(task))

    assert [m.offset for m in stored.messages] == [0, 1, 2, 3]  # the store keeps the lease as it was
    assert (settled.accepted, settled.ok) == (True, BATCH - 1)
    assert site.coordinator.queue(TOPIC).keys_in_flight == {}
    assert acks(site) == dict.fromkeys(range(BATCH), 1)
