"""The settlement hook: listeners get each settlement's outcomes once the store has committed them, outside
the coordinator's lock, and a listener that fails never breaks settlement.

On the embedded log and SQLite state, with a real fault: the process's disk refusing writes
(``writes_refused``) while a farm's results are settled."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from tests.broker.refused_writes import writes_refused
from tests.coordinator.test_service import TOPIC, Site, farm, keys
from xtreaming.coordinator.outcomes import Outcome, Result
from xtreaming.coordinator.records import WorkSettings
from xtreaming.coordinator.service import Report
from xtreaming.coordinator.store import Store
from xtreaming.errors import BrokerUnavailable
from xtreaming.wire.message_id import message_id
from xtreaming.wire.verdict import Verdict

HANDLER = "xtreaming.demo.worker:noop"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    site = Site(f"sqlite:///{tmp_path}/log.db", f"sqlite:///{tmp_path}/state.db")
    site.store.add_profile(".*", WorkSettings(batch_size=3, max_attempts=2, backoff_s=0, handler=HANDLER))
    yield site
    site.store.close()
    site.broker.close()


class Recorder:
    """A listener keeping what it is told and, at each call, which tasks another connection still sees
    leased: a settlement told before its commit would show its task still leased there."""

    def __init__(self, store_url: str) -> None:
        self.batches: list[list[Outcome]] = []
        self.leased_when_told: list[set[str]] = []
        self._store = Store(store_url)

    def __call__(self, outcomes: Sequence[Outcome], /) -> None:
        self.batches.append(list(outcomes))
        self.leased_when_told.append({t.id for t in self._store.active_tasks()})

    def close(self) -> None:
        self._store.close()


def test_listeners_get_ok_retry_and_dead_outcomes_of_one_request_once_it_committed(site: Site) -> None:
    site.publish(TOPIC, keys(3))
    farm_id = farm(site)
    recorder = Recorder(site.store_url)
    site.coordinator.add_settlement_listener(recorder)
    [task] = site.coordinator.lease(farm_id, [0])
    first, second, third = task.messages
    verdicts = {
        message_id(TOPIC, second.partition, second.offset): (Verdict.RETRY, "timeout at the bank"),
        message_id(TOPIC, third.partition, third.offset): (Verdict.ERROR, "CPF inválido"),
    }

    site.clock.advance(2.5)
    _, [again] = site.coordinator.settle_and_lease(farm_id, [(task.task_id, Report(Verdict.OK, verdicts, "done"))], [1])
    recorder.close()

    [batch] = recorder.batches
    # Committed: another connection saw the task's row gone, and the retry's new lease stored in the same transaction.
    assert recorder.leased_when_told == [{again.task_id}]
    assert [m.offset for m in again.messages] == [second.offset]
    common = {"topic": TOPIC, "farm": farm_id, "slot": 0, "task_id": task.task_id, "duration_s": 2.5, "attempt": 1}
    retry_detail = "attempt 1: timeout at the bank"
    assert sorted(batch, key=lambda o: o.offset) == [
        Outcome(Result.OK, partition=0, offset=first.offset, key=first.key, detail="done", **common),  # type: ignore[arg-type]
        Outcome(Result.RETRY, partition=0, offset=second.offset, key=second.key, detail=retry_detail, **common),  # type: ignore[arg-type]
        Outcome(Result.DEAD, partition=0, offset=third.offset, key=third.key, detail="CPF inválido", **common),  # type: ignore[arg-type]
    ]  # fmt: skip


def test_a_settlement_the_disk_refuses_is_never_told_and_its_retry_is_told_once(site: Site) -> None:
    site.publish(TOPIC, keys(6))
    farm_id = farm(site)
    recorder = Recorder(site.store_url)
    site.coordinator.add_settlement_listener(recorder)
    first, second = site.coordinator.lease(farm_id, [0, 1])
    site.coordinator.settle_and_lease(farm_id, [(first.task_id, Report(Verdict.OK, {}))], [])  # ACK topic made
    report = [(second.task_id, Report(Verdict.OK, {}))]

    with writes_refused(), pytest.raises(BrokerUnavailable, match="disk I/O error"):
        site.coordinator.settle_and_lease(farm_id, report, [0])
    told_while_refused = len(recorder.batches)
    site.coordinator.settle_and_lease(farm_id, report, [])
    recorder.close()

    assert told_while_refused == 1
    assert [{o.task_id for o in batch} for batch in recorder.batches] == [{first.task_id}, {second.task_id}]
    assert sorted(o.offset for batch in recorder.batches for o in batch) == list(range(6))


def test_listeners_are_told_outside_the_lock_so_one_may_read_the_coordinator_from_another_thread(site: Site) -> None:
    site.publish(TOPIC, keys(3))
    farm_id = farm(site)
    [task] = site.coordinator.lease(farm_id, [0])
    read: list[int] = []
    waited: list[bool] = []

    def reads_from_another_thread(outcomes: Sequence[Outcome], /) -> None:
        reader = threading.Thread(target=lambda: read.append(len(site.coordinator.figures()[0])))
        reader.start()
        reader.join(timeout=5)  # a listener told under the lock would wait here the whole 5 s, and read nothing
        waited.append(reader.is_alive())

    site.coordinator.add_settlement_listener(reads_from_another_thread)
    site.coordinator.complete(task.task_id, Report(Verdict.OK, {}))

    assert waited == [False]
    assert read == [1]


def test_a_listener_that_raises_is_logged_and_neither_the_settlement_nor_the_other_listeners_notice(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    site.publish(TOPIC, keys(3))
    farm_id = farm(site)
    assert len(site.coordinator.lease(farm_id, [0])) == 1
    told: list[Outcome] = []

    def broken(outcomes: Sequence[Outcome], /) -> None:
        raise RuntimeError("history table missing")

    site.coordinator.add_settlement_listener(broken)
    site.coordinator.add_settlement_listener(lambda outcomes: told.extend(outcomes))
    site.clock.advance(601)  # the lease expires: the background pass settles it
    site.coordinator.heartbeat(farm_id, [])
    site.coordinator.run_once()

    assert [(o.result, o.attempt, o.detail) for o in told] == [
        (Result.RETRY, 1, "attempt 1: lease expired (deadline passed): no result from farm farm-a slot 0")
    ] * 3
    assert "settlement listener" in caplog.text
    assert "history table missing" in caplog.text
    assert [len(t.messages) for t in site.coordinator.lease(farm_id, [0])] == [3]
