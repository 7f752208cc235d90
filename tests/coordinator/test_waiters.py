"""Publish-and-wait's registry (``waiters.py``): waiters resolved by a real coordinator's settlements, on the
embedded log and SQLite state, including an outcome settled before its publisher knows where the message
landed; waiters removed once resolved, forgotten or disconnected; the arming buffer bounded."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.coordinator.server import RunningCoordinator
from tests.coordinator.test_service import TOPIC, Site, farm, keys
from tests.waiting import wait_until
from xtreaming.broker import Record
from xtreaming.coordinator.fitting import fit_ack
from xtreaming.coordinator.outcomes import Outcome, Result
from xtreaming.coordinator.records import WorkSettings
from xtreaming.coordinator.service import Report
from xtreaming.coordinator.waiters import Waiter, Waiters
from xtreaming.wire.acks import MessageOutcome, parse_ack
from xtreaming.wire.message_id import message_id
from xtreaming.wire.verdict import Verdict

HANDLER = "xtreaming.demo.worker:noop"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    site = Site(f"sqlite:///{tmp_path}/log.db", f"sqlite:///{tmp_path}/state.db")
    settings = WorkSettings(batch_size=3, max_attempts=2, backoff_s=0, handler=HANDLER, one_per_key=True)
    site.store.add_profile(".*", settings)
    yield site
    site.store.close()
    site.broker.close()


@pytest.fixture
def waiters(site: Site) -> Waiters:
    registry = Waiters()
    site.coordinator.add_settlement_listener(registry)
    return registry


class Wakes:
    """A waiter's ``wake``: counts its calls."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


def records(count: int) -> list[Record]:
    return [Record(k.encode(), b"<cliente/>") for k in keys(count)]


def publish_and_watch(site: Site, waiters: Waiters, count: int, wake: Wakes) -> Waiter:
    with waiters.armed(TOPIC) as arming:
        return arming.watch(site.coordinator.publish(TOPIC, records(count), 1), wake)


def run(site: Site, farm_id: str, report: Report) -> None:
    """Lease the queue's next task and settle it with ``report``."""
    [task] = site.coordinator.lease(farm_id, [0])
    site.coordinator.complete(task.task_id, report)


def verdict(offset: int, verdict: Verdict, detail: str) -> dict[str, tuple[Verdict, str | None]]:
    return {message_id(TOPIC, 0, offset): (verdict, detail)}


def test_an_outcome_settled_before_the_publisher_knows_its_positions_is_not_missed(
    site: Site, waiters: Waiters
) -> None:
    farm_id = farm(site)
    wake = Wakes()

    with waiters.armed(TOPIC) as arming:
        positions = site.coordinator.publish(TOPIC, records(2), 1)
        run(site, farm_id, Report(Verdict.OK, {}, "importado"))  # a fast farm: done before ``watch``
        waiter = arming.watch(positions, wake)

    assert (waiter.done, wake.count) == (True, 1)
    assert waiter.outcomes() == [
        MessageOutcome(message_id(TOPIC, 0, 0), keys(2)[0], "ok", 1, "importado"),
        MessageOutcome(message_id(TOPIC, 0, 1), keys(2)[1], "ok", 1, "importado"),
    ]
    assert (waiter.running(), waiters.waiting, waiters.arming) == ([], 0, 0)


def test_a_retried_message_is_waited_on_until_its_second_attempt_is_ok(site: Site, waiters: Waiters) -> None:
    farm_id = farm(site)
    wake = Wakes()
    waiter = publish_and_watch(site, waiters, 1, wake)

    run(site, farm_id, Report(Verdict.RETRY, {}, "banco fora do ar"))
    after_retry = (waiter.done, wake.count, waiter.running(), waiters.waiting)
    run(site, farm_id, Report(Verdict.OK, {}))

    assert after_retry == (False, 0, [message_id(TOPIC, 0, 0)], 1)
    assert (waiter.done, wake.count, waiters.waiting) == (True, 1, 0)
    assert waiter.outcomes() == [MessageOutcome(message_id(TOPIC, 0, 0), keys(1)[0], "ok", 2, None)]


def test_a_message_that_keeps_failing_ends_dead_after_its_attempts(site: Site, waiters: Waiters) -> None:
    farm_id = farm(site)
    wake = Wakes()
    waiter = publish_and_watch(site, waiters, 2, wake)

    run(site, farm_id, Report(Verdict.OK, verdict(1, Verdict.RETRY, "timeout")))
    run(site, farm_id, Report(Verdict.OK, verdict(1, Verdict.RETRY, "timeout de novo")))

    assert (waiter.done, wake.count, waiters.waiting) == (True, 1, 0)
    assert waiter.outcomes() == [
        MessageOutcome(message_id(TOPIC, 0, 0), keys(2)[0], "ok", 1, None),
        MessageOutcome(message_id(TOPIC, 0, 1), keys(2)[1], "dead", 2, "timeout de novo"),
    ]


def test_a_forgotten_waiter_leaves_nothing_behind_and_is_not_woken_by_later_outcomes(
    site: Site, waiters: Waiters
) -> None:
    farm_id = farm(site)
    wake = Wakes()
    waiter = publish_and_watch(site, waiters, 3, wake)
    run(site, farm_id, Report(Verdict.OK, verdict(2, Verdict.RETRY, "timeout")))
    waiting_at_the_timeout = waiters.waiting

    waiters.forget(waiter)
    run(site, farm_id, Report(Verdict.OK, {}))

    assert (waiting_at_the_timeout, waiters.waiting, waiters.arming, wake.count) == (1, 0, 0, 0)
    assert [o.status for o in waiter.outcomes()] == ["ok", "ok"]
    assert waiter.running() == [message_id(TOPIC, 0, 2)]


def test_the_settlement_hook_and_the_ack_records_tell_a_publisher_the_same_outcomes(
    site: Site, waiters: Waiters
) -> None:
    farm_id = farm(site)
    first, second = keys(2)
    wake = Wakes()
    with waiters.armed(TOPIC) as arming:  # an import: its third message repeats the first's key
        sent = [Record(key.encode(), b"<cliente/>") for key in (first, second, first)]
        waiter = arming.watch(site.coordinator.publish(TOPIC, sent, 1), wake)
    site.coordinator.run_once()
    run(site, farm_id, Report(Verdict.OK, verdict(1, Verdict.ERROR, "CPF inválido")))
    acks = [m.value for m in site.broker.read(f"{TOPIC}.ACK", 0, 0)]
    read_back = [parse_ack(value) for value in acks]
    longest = max(acks, key=len)  # the duplicate's: its detail names the first message
    cut = parse_ack(fit_ack(Record(first.encode(), longest), 200).value)  # too large for a broker: cut to fit
    whole = parse_ack(longest)

    assert (waiter.done, wake.count) == (True, 1)
    assert [o.status for o in waiter.outcomes()] == ["ok", "dead", "duplicate"]
    assert sorted((a.outcome for a in read_back if a is not None), key=lambda o: o.id) == waiter.outcomes()
    assert whole is not None
    assert cut is not None
    assert (cut.outcome.id, cut.outcome.status) == (whole.outcome.id, "duplicate")
    assert len(cut.outcome.detail or "") < len(whole.outcome.detail or "")


def test_records_that_are_not_ack_records_are_not_taken_for_outcomes() -> None:
    record = b'{"topic":"T","partition":0,"offset":1,"status":"retry","attempts":1}'

    assert [parse_ack(value) for value in (b"<xml/>", b"[]", b'{"topic":"T"}', record)] == [None] * 4


def outcome(result: Result, offset: int, attempt: int = 1, detail: str | None = None) -> Outcome:
    return Outcome(result, TOPIC, 0, offset, b"00000000191", attempt, "farm-a", 0, "t1", 0.1, detail)


def test_the_outcomes_kept_while_arming_are_bounded_to_the_newest_and_dropped_with_the_last_publish() -> None:
    waiters = Waiters(arming_outcomes=2)
    wake = Wakes()

    with waiters.armed(TOPIC) as arming, waiters.armed(TOPIC):  # two publishes arm one topic
        waiters([outcome(Result.OK, offset) for offset in range(3)])
        waiters([outcome(Result.RETRY, 3), outcome(Result.DEAD, 4, 3, "CPF inválido")])  # a retry is not final
        waiter = arming.watch([(0, 2), (0, 3), (0, 4), (0, 0)], wake)
        kept_while_the_other_arms = waiters.arming

    assert (kept_while_the_other_arms, waiters.arming, waiters.waiting, wake.count) == (1, 0, 2, 0)
    # 0 and 1 were pushed out by the newer 2 and 4
    assert [(o.id, o.status, o.attempts) for o in waiter.outcomes()] == [
        (f"{TOPIC}/0/2", "ok", 1),
        (f"{TOPIC}/0/4", "dead", 3),
    ]
    assert waiter.running() == [f"{TOPIC}/0/3", f"{TOPIC}/0/0"]


def test_a_duplicate_is_final_without_an_attempt_and_outcomes_of_other_topics_are_ignored() -> None:
    waiters = Waiters()
    wake = Wakes()
    with waiters.armed(TOPIC) as arming:
        waiter = arming.watch([(0, 7)], wake)
    other = Outcome(Result.OK, "MULTCOB02.1186.COBSINC.LOCALIZACAO", 0, 7, b"1", 1, "farm-a", 0, "t1", 0.1, None)
    duplicate = Outcome(Result.DUPLICATE, TOPIC, 0, 7, b"1", 0, "", -1, "", 0.0, f"duplicate of {TOPIC}/0/3")

    waiters([other])
    woken_by_another_topic = wake.count
    waiters([duplicate])

    assert (woken_by_another_topic, wake.count, waiters.waiting) == (0, 1, 0)
    assert waiter.outcomes() == [MessageOutcome(f"{TOPIC}/0/7", "1", "duplicate", 0, f"duplicate of {TOPIC}/0/3")]


def test_a_caller_that_disconnects_while_waiting_leaves_no_waiter_behind(tmp_path: Path) -> None:
    server = RunningCoordinator(tmp_path).start()
    try:
        waiters: Waiters = server.app.state.waiters
        body = {"messages": [{"key": "00000000191", "value": "<cliente/>"}], "partitions": 1}
        seen: list[int] = []
        # A queue with no worker never runs: the request would wait its whole 50 s, but its caller gives up.
        watcher = threading.Thread(target=lambda: seen.append(wait_until(lambda: waiters.waiting, 10, "a waiter")))
        watcher.start()
        with pytest.raises(httpx.ReadTimeout), httpx.Client(base_url=server.url, timeout=2) as api:
            api.post(f"/api/topics/{TOPIC}/messages", params={"wait_s": 50}, json=body)
        watcher.join()

        wait_until(lambda: waiters.waiting == 0, 5, "the waiter of the caller that went away to be removed")
        assert (seen, waiters.arming) == ([1], 0)
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("wait_s", "messages", "refused"),
    [
        (0, 1, "wait_s"),
        (61, 1, "wait_s"),
        (1, 10_001, "a publish may wait for at most 10,000 messages, got 10,001"),
    ],
)
def test_a_wait_out_of_bounds_is_refused_and_nothing_is_published(
    tmp_path: Path, wait_s: float, messages: int, refused: str
) -> None:
    server = RunningCoordinator(tmp_path).start()
    try:
        body = {"messages": [{"key": f"{i:011d}", "value": "<c/>"} for i in range(messages)], "partitions": 1}
        with httpx.Client(base_url=server.url, timeout=30) as api:
            answer = api.post(f"/api/topics/{TOPIC}/messages", params={"wait_s": wait_s}, json=body)
        topics = server.app.state.coordinator.broker.list_topics()
    finally:
        server.stop()

    assert answer.status_code == 422, answer.text
    assert refused in answer.json()["detail"]
    assert TOPIC not in topics
