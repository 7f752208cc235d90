"""Scheduled publishing: cron ticks in the site's zone, each tick at most once across coordinators sharing a store,
ticks cut short finished from the log, misfire policies, bad schedules refused, and the API's routes."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.broker.contract import read_all
from tests.coordinator.server import RunningCoordinator
from xtreaming.broker import Broker, Position, Record, open_broker
from xtreaming.config import Role, Token
from xtreaming.coordinator.api.auth import hash_token
from xtreaming.coordinator.core.cron import cron_problem, due_tick, next_tick
from xtreaming.coordinator.schedule_records import (
    RECORD_HEADER,
    TICK_HEADER,
    CallableSource,
    CsvSource,
    FixedMessage,
    InvalidSchedule,
    Misfire,
    Source,
    TickState,
)
from xtreaming.coordinator.schedules import Schedules
from xtreaming.coordinator.store import Store
from xtreaming.errors import BrokerUnavailable, InvalidInput, InvalidTopicName

TOPIC = "MULTCOB02.1186.COBSINC.LOCALIZACAO"
ZONE = ZoneInfo("America/Sao_Paulo")
START = datetime(2026, 12, 6, 13, 0, 30, tzinfo=UTC)
EVERY_MINUTE = "* * * * *"
FEEDS = "tests.coordinator.schedule_feeds"


@dataclass
class Clock:
    now: datetime = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    log = open_broker(f"sqlite:///{tmp_path / 'log.db'}")
    yield log
    log.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def schedules_on(store: Store, broker: Broker, clock: Clock, *, takeover_s: float = 30) -> Schedules:
    return Schedules(store, lambda: broker, zone=ZONE, partitions=2, clock=clock, takeover_s=takeover_s)


def published(broker: Broker, topic: str = TOPIC) -> Counter[tuple[str, int]]:
    """How many records of each (tick, place) the topic holds."""
    if topic not in broker.list_topics():
        return Counter()
    found: Counter[tuple[str, int]] = Counter()
    for messages in read_all(broker, topic).values():
        for message in messages:
            headers = dict(message.headers)
            found[headers[TICK_HEADER].decode(), int(headers[RECORD_HEADER])] += 1
    return found


class FailingAppends:
    """``broker``, whose appends from the ``fail_from``-th on raise BrokerUnavailable; with ``lands``, after the
    records landed (an answer lost on the way back)."""

    def __init__(self, broker: Broker, fail_from: int, *, lands: bool = False) -> None:
        self.broker = broker
        self.fail_from = fail_from
        self.lands = lands
        self.appends = 0

    def append(self, topic: str, records: Sequence[Record]) -> Sequence[Position]:
        self.appends += 1
        if self.appends >= self.fail_from:
            if self.lands:
                self.broker.append(topic, records)
            raise BrokerUnavailable("broker went away mid-append")
        return self.broker.append(topic, records)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.broker, name)


# -- cron ticks ---------------------------------------------------------------------------------------------


def test_a_tick_is_due_from_its_time_on_and_not_before() -> None:
    after = datetime(2026, 12, 6, 13, 0, 30, tzinfo=UTC)
    assert due_tick(EVERY_MINUTE, ZONE, after, after + timedelta(seconds=29)) is None
    due = due_tick(EVERY_MINUTE, ZONE, after, after + timedelta(seconds=30))
    assert due is not None
    assert (due.tick_at, due.missed, due.late) == (datetime(2026, 12, 6, 13, 1, tzinfo=UTC), 0, False)


def test_the_latest_of_many_missed_ticks_is_due_and_counts_the_others() -> None:
    after = datetime(2026, 12, 6, 13, 0, 30, tzinfo=UTC)
    due = due_tick(EVERY_MINUTE, ZONE, after, datetime(2026, 12, 6, 13, 10, 5, tzinfo=UTC))
    assert due is not None
    assert (due.tick_at, due.missed, due.late) == (datetime(2026, 12, 6, 13, 10, tzinfo=UTC), 9, False)
    late = due_tick("0 * * * *", ZONE, after, datetime(2026, 12, 6, 15, 30, tzinfo=UTC))
    assert late is not None
    assert (late.tick_at, late.missed, late.late) == (datetime(2026, 12, 6, 15, 0, tzinfo=UTC), 1, True)


def test_ticks_follow_the_sites_wall_clock() -> None:
    # 08:00 in São Paulo (UTC-3) is 11:00 UTC.
    assert next_tick("0 8 * * *", ZONE, START) == datetime(2026, 12, 7, 11, 0, tzinfo=UTC)


def test_a_sixth_field_counts_seconds() -> None:
    assert next_tick("* * * * * */10", ZONE, START) == datetime(2026, 12, 6, 13, 0, 40, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expression", "words"),
    [("* * * *", "has 4 fields"), ("61 * * * *", "is not valid"), ("* * * * * * *", "has 7 fields")],
)
def test_a_bad_cron_expression_is_named(expression: str, words: str) -> None:
    problem = cron_problem(expression)
    assert problem is not None
    assert words in problem


# -- adding and refusing schedules ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("topic", "cron", "source", "error", "words"),
    [
        (TOPIC, "every minute", FixedMessage("1", "x"), InvalidSchedule, "has 2 fields"),
        ("not a topic", EVERY_MINUTE, FixedMessage("1", "x"), InvalidTopicName, "topic"),
        (TOPIC, EVERY_MINUTE, CsvSource("/nowhere/carteira.csv"), InvalidSchedule, "does not exist"),
        (TOPIC, EVERY_MINUTE, CallableSource("no_such_module:feed"), InvalidSchedule, "does not import"),
        (TOPIC, EVERY_MINUTE, CallableSource(f"{FEEDS}:missing"), InvalidSchedule, "has no 'missing'"),
        (TOPIC, EVERY_MINUTE, CallableSource(f"{FEEDS}:NOT_CALLABLE"), InvalidSchedule, "is not callable"),
        (TOPIC, EVERY_MINUTE, CallableSource("feed"), InvalidSchedule, "module:function"),
        (TOPIC, EVERY_MINUTE, FixedMessage("", "x"), InvalidSchedule, "key is empty"),
    ],
)
def test_a_schedule_that_cannot_run_is_refused_and_nothing_is_stored(
    store: Store, broker: Broker, clock: Clock, topic: str, cron: str, source: Source, error: type, words: str
) -> None:
    with pytest.raises(error, match=words):
        schedules_on(store, broker, clock).add(topic, cron, source, Misfire.ONCE, "ana")
    assert store.schedules.all() == []
    assert [e.action for e in store.list_audit()] == []


def test_a_csv_that_fails_the_publish_check_is_refused(
    store: Store, broker: Broker, clock: Clock, tmp_path: Path
) -> None:
    path = tmp_path / "carteira.csv"
    path.write_text("nome;cidade\nana;poa\n")
    with pytest.raises(InvalidInput, match="no key column 'cpf'"):
        schedules_on(store, broker, clock).add(TOPIC, EVERY_MINUTE, CsvSource(str(path)), Misfire.ONCE, "ana")
    assert store.schedules.all() == []


# -- ticks ------------------------------------------------------------------------------------------------------


def test_a_fixed_message_is_published_once_per_tick(store: Store, broker: Broker, clock: Clock) -> None:
    schedules = schedules_on(store, broker, clock)
    schedule = schedules.add(TOPIC, EVERY_MINUTE, FixedMessage("12345678909", "<req/>"), Misfire.ONCE, "ana")
    assert schedules.run_once() == 0  # 13:00:30: the first tick is 13:01
    clock.advance(30)
    assert schedules.run_once() == 1
    assert schedules.run_once() == 0  # the same tick is never run twice
    clock.advance(60)
    assert schedules.run_once() == 1
    assert published(broker) == {
        (f"{schedule.id}/2026-12-06T13:01:00+00:00", 0): 1,
        (f"{schedule.id}/2026-12-06T13:02:00+00:00", 0): 1,
    }
    [message] = read_all(broker, TOPIC)[next(p for p, ms in read_all(broker, TOPIC).items() if ms)][:1]
    assert (message.key, message.value) == (b"12345678909", b"<req/>")
    [view] = schedules.listing()
    assert view.last is not None
    assert (view.last.state, view.last.published, view.last.error) == (TickState.PUBLISHED, 1, None)
    assert view.next_at == datetime(2026, 12, 6, 13, 3, tzinfo=UTC)
    assert [e.action for e in store.list_audit()] == ["schedules.add"]


def test_a_csv_is_published_one_message_per_key(store: Store, broker: Broker, clock: Clock, tmp_path: Path) -> None:
    path = tmp_path / "carteira.csv"
    rows = [f"{i % 2500:011d};cliente {i}" for i in range(3000)]  # 500 keys twice: 2,500 messages
    path.write_text("cpf;nome\n" + "\n".join(rows) + "\n")
    schedules = schedules_on(store, broker, clock)
    schedules.add(TOPIC, EVERY_MINUTE, CsvSource(str(path)), Misfire.ONCE, "ana")
    clock.advance(30)
    schedules.run_once()
    found = published(broker)
    assert sorted(place for _, place in found) == list(range(2500))
    assert set(found.values()) == {1}
    [view] = schedules.listing()
    assert view.last is not None
    assert (view.last.state, view.last.published) == (TickState.PUBLISHED, 2500)


def test_two_coordinators_racing_publish_each_tick_exactly_once(store_url: str, broker: Broker, clock: Clock) -> None:
    with Store.open(store_url) as first_store, Store.open(store_url) as second_store:
        first, second = schedules_on(first_store, broker, clock), schedules_on(second_store, broker, clock)
        first.add(TOPIC, EVERY_MINUTE, CallableSource(f"{FEEDS}:two_clients"), Misfire.ONCE, "ana")
        runs: list[int] = []
        for _ in range(8):
            clock.advance(60)
            start = threading.Barrier(2)

            def run(schedules: Schedules, start: threading.Barrier = start) -> None:
                start.wait()
                runs.append(schedules.run_once())

            threads = [threading.Thread(target=run, args=(s,)) for s in (first, second)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        found = published(broker)
        assert len({tick for tick, _ in found}) == 8
        assert set(found.values()) == {1}
        assert len(found) == 16
        assert sum(runs) == 8
        ticks = first_store.schedules.ticks(1, 100)
        assert [t.state for t in ticks] == [TickState.PUBLISHED] * 8


def test_a_callable_that_raises_fails_its_tick_with_the_error(store: Store, broker: Broker, clock: Clock) -> None:
    schedules = schedules_on(store, broker, clock)
    schedules.add(TOPIC, EVERY_MINUTE, CallableSource(f"{FEEDS}:breaks_after_a_batch"), Misfire.ONCE, "ana")
    clock.advance(30)
    schedules.run_once()
    [view] = schedules.listing()
    assert view.last is not None
    assert view.last.state is TickState.FAILED
    assert view.last.error == "RuntimeError: the feed went away"
    assert view.last.published == 1000  # the first batch is in the log, and the tick is not counted as done
    assert len(published(broker)) == 1000
    clock.advance(60)
    schedules.run_once()  # the next tick runs as usual (and fails the same way): a failed tick is not retried
    assert [t.state for t in store.schedules.ticks(view.schedule.id, 10)] == [TickState.FAILED] * 2


@pytest.mark.parametrize(
    ("feed", "error"), [("breaks_at_once", "the feed is down"), ("not_pairs", "not a (key, value)")]
)
def test_a_feed_failing_before_its_first_batch_publishes_nothing(
    store: Store, broker: Broker, clock: Clock, feed: str, error: str
) -> None:
    schedules = schedules_on(store, broker, clock)
    schedules.add(TOPIC, EVERY_MINUTE, CallableSource(f"{FEEDS}:{feed}"), Misfire.ONCE, "ana")
    clock.advance(30)
    schedules.run_once()
    [view] = schedules.listing()
    assert view.last is not None
    assert view.last.state is TickState.FAILED
    assert error in (view.last.error or "")
    assert (view.last.published, published(broker)) == (0, Counter())


def test_missed_ticks_run_once_with_the_once_policy(store: Store, broker: Broker, clock: Clock) -> None:
    schedules = schedules_on(store, broker, clock)
    schedules.add(TOPIC, EVERY_MINUTE, FixedMessage("1", "x"), Misfire.ONCE, "ana")
    clock.advance(30 + 10 * 60)  # an outage: ticks 13:01 … 13:11 missed
    assert schedules.run_once() == 1
    assert schedules.run_once() == 0
    [view] = schedules.listing()
    assert view.last is not None
    assert (view.last.tick_at, view.last.missed, view.last.state) == (
        datetime(2026, 12, 6, 13, 11, tzinfo=UTC), 10, TickState.PUBLISHED,
    )  # fmt: skip
    assert len(published(broker)) == 1


def test_missed_ticks_are_skipped_with_the_skip_policy(store: Store, broker: Broker, clock: Clock) -> None:
    schedules = schedules_on(store, broker, clock)
    schedules.add(TOPIC, "0 * * * *", FixedMessage("1", "x"), Misfire.SKIP, "ana")
    clock.now = datetime(2026, 12, 6, 15, 30, tzinfo=UTC)  # an outage: 14:00 and 15:00 missed, 15:00 by 30 minutes
    assert schedules.run_once() == 1
    [view] = schedules.listing()
    assert view.last is not None
    assert (view.last.state, view.last.tick_at, view.last.missed) == (
        TickState.SKIPPED, datetime(2026, 12, 6, 15, 0, tzinfo=UTC), 1,
    )  # fmt: skip
    assert published(broker) == Counter()
    clock.now = datetime(2026, 12, 6, 16, 0, 10, tzinfo=UTC)  # on time
    schedules.run_once()
    [view] = schedules.listing()
    assert view.last is not None
    assert (view.last.state, view.last.tick_at) == (
        TickState.PUBLISHED,
        datetime(2026, 12, 6, 16, 0, tzinfo=UTC),
    )
    assert len(published(broker)) == 1


def test_with_the_skip_policy_a_tick_on_time_runs_and_those_missed_do_not(
    store: Store, broker: Broker, clock: Clock
) -> None:
    schedules = schedules_on(store, broker, clock)
    schedules.add(TOPIC, EVERY_MINUTE, FixedMessage("1", "x"), Misfire.SKIP, "ana")
    clock.advance(30 + 10 * 60 + 5)  # 13:11:05: 13:01 … 13:10 missed, 13:11 on time
    assert schedules.run_once() == 1
    [view] = schedules.listing()
    assert view.last is not None
    assert (view.last.state, view.last.missed) == (TickState.PUBLISHED, 10)
    assert len(published(broker)) == 1


def test_a_tick_cut_short_is_finished_from_the_log_by_another_coordinator(
    store: Store, broker: Broker, clock: Clock
) -> None:
    cut = FailingAppends(broker, fail_from=3)  # two batches of 1,000 land, then the broker goes
    first = Schedules(store, lambda: cast(Broker, cut), zone=ZONE, partitions=2, clock=clock, takeover_s=30)
    first.add(TOPIC, EVERY_MINUTE, CallableSource(f"{FEEDS}:slow_clients"), Misfire.ONCE, "ana")
    clock.advance(30)
    first.run_once()
    [claimed] = store.schedules.ticks(1, 10)
    assert (claimed.state, claimed.published) == (TickState.CLAIMED, 2000)
    assert len(published(broker)) == 2000
    second = schedules_on(store, broker, clock)
    clock.advance(29)
    assert second.run_once() == 0  # its owner may still be at it
    clock.advance(2)
    assert second.run_once() == 1
    found = published(broker)
    assert sorted(place for _, place in found) == list(range(5000))
    assert set(found.values()) == {1}
    [done] = store.schedules.ticks(1, 10)
    assert (done.state, done.published, done.owner) == (TickState.PUBLISHED, 5000, second.owner)


def test_a_tick_whose_last_append_landed_unanswered_is_not_repeated(store: Store, broker: Broker, clock: Clock) -> None:
    lost = FailingAppends(broker, fail_from=1, lands=True)
    first = Schedules(store, lambda: cast(Broker, lost), zone=ZONE, partitions=2, clock=clock, takeover_s=30)
    first.add(TOPIC, EVERY_MINUTE, FixedMessage("1", "x"), Misfire.ONCE, "ana")
    clock.advance(30)
    first.run_once()
    clock.advance(31)  # 13:01:31: silent past the takeover, and the 13:02 tick not due yet
    second = schedules_on(store, broker, clock)
    assert second.run_once() == 1
    assert list(published(broker).values()) == [1]
    [done] = store.schedules.ticks(1, 10)
    assert (done.state, done.published) == (TickState.PUBLISHED, 1)


def test_a_coordinator_that_lost_its_tick_stops_publishing_it(store: Store, broker: Broker, clock: Clock) -> None:
    schedules = schedules_on(store, broker, clock)
    schedule = schedules.add(TOPIC, EVERY_MINUTE, FixedMessage("1", "x"), Misfire.ONCE, "ana")
    tick_at = datetime(2026, 12, 6, 13, 1, tzinfo=UTC)
    tick = store.schedules.claim(schedule.id, tick_at, missed=0, owner="a", now=clock(), ends={})
    assert tick is not None
    assert store.schedules.claim(schedule.id, tick_at, missed=0, owner="b", now=clock(), ends={}) is None
    assert (
        store.schedules.claim(schedule.id, tick_at - timedelta(minutes=1), missed=0, owner="b", now=clock(), ends={})
        is None
    )
    assert store.schedules.take_over(tick, "b", clock())
    assert not store.schedules.take_over(tick, "c", clock())  # as "a" saw it: it changed since
    assert not store.schedules.beat(tick.id, "a", clock(), 1)
    assert not store.schedules.finish(tick.id, "a", clock(), TickState.PUBLISHED, 1, None)
    assert store.schedules.finish(tick.id, "b", clock(), TickState.PUBLISHED, 1, None)


def test_nothing_runs_where_this_coordinator_does_not_lead(store: Store, broker: Broker, clock: Clock) -> None:
    leading = threading.Event()
    schedules = Schedules(store, lambda: broker, zone=ZONE, partitions=2, clock=clock, is_leader=leading.is_set)
    schedules.add(TOPIC, EVERY_MINUTE, FixedMessage("1", "x"), Misfire.ONCE, "ana")
    clock.advance(90)
    assert schedules.run_once() == 0
    assert store.schedules.ticks(1, 10) == []
    leading.set()
    assert schedules.run_once() == 1


def test_removing_a_schedule_removes_its_ticks(store: Store, broker: Broker, clock: Clock) -> None:
    schedules = schedules_on(store, broker, clock)
    schedule = schedules.add(TOPIC, EVERY_MINUTE, FixedMessage("1", "x"), Misfire.ONCE, "ana")
    clock.advance(30)
    schedules.run_once()
    schedules.remove(schedule.id, "ana")
    assert schedules.listing() == []
    assert [e.action for e in store.list_audit()] == ["schedules.remove", "schedules.add"]
    clock.advance(60)
    assert schedules.run_once() == 0


# -- the API --------------------------------------------------------------------------------------------------

SECRETS = {role: f"secret-{role.value}" for role in Role}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningCoordinator]:
    tokens = [Token(name=f"{role.value}-user", role=role, sha256=hash_token(SECRETS[role])) for role in Role]
    running = RunningCoordinator(tmp_path, tokens=tokens, time_zone="America/Sao_Paulo").start()
    yield running
    running.stop()


def client(server: RunningCoordinator, role: Role) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {SECRETS[role]}"}, timeout=10)


def test_the_api_adds_lists_and_removes_schedules(server: RunningCoordinator) -> None:
    with client(server, Role.ADMIN) as admin, client(server, Role.VIEWER) as viewer:
        body = {
            "topic": TOPIC,
            "cron": "0 8 * * mon-fri",
            "message": {"key": "1", "value": "<req/>"},
            "misfire": "skip",
        }
        added = admin.post("/api/schedules", json=body)
        assert added.status_code == 201, added.text
        schedule = added.json()
        assert (schedule["misfire"], schedule["source"]) == ("skip", {"kind": "message", "key": "1", "value": "<req/>"})
        assert datetime.fromisoformat(schedule["next_at"]).astimezone(ZONE).strftime("%H:%M") == "08:00"
        [listed] = viewer.get("/api/schedules").json()
        assert (listed["id"], listed["last"], listed["created_by"]) == (schedule["id"], None, "admin-user")
        assert viewer.get(f"/api/schedules/{schedule['id']}/ticks").json() == []
        assert viewer.post("/api/schedules", json=body).status_code == 403
        assert viewer.delete(f"/api/schedules/{schedule['id']}").status_code == 403
        assert admin.delete(f"/api/schedules/{schedule['id']}").status_code == 204
        gone = admin.delete(f"/api/schedules/{schedule['id']}")
        assert (gone.status_code, gone.json()["detail"]) == (404, f"schedule {schedule['id']} does not exist")


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"topic": TOPIC, "cron": "61 * * * *", "message": {"value": "x"}}, "is not valid"),
        ({"topic": "orders", "cron": "* * * * *", "message": {"value": "x"}}, "topic 'orders'"),
        ({"topic": TOPIC, "cron": "* * * * *", "csv": {"path": "/nowhere/c.csv"}}, "does not exist"),
        ({"topic": TOPIC, "cron": "* * * * *", "callable": "no_such_module:feed"}, "does not import"),
        ({"topic": TOPIC, "cron": "* * * * *"}, "give exactly one of csv, message and callable"),
        ({"topic": TOPIC, "cron": "* * * * *", "message": {"value": "x"}, "misfire": "later"}, "misfire"),
    ],
)
def test_the_api_refuses_a_schedule_that_cannot_run(
    server: RunningCoordinator, body: dict[str, Any], words: str
) -> None:
    with client(server, Role.ADMIN) as admin:
        answer = admin.post("/api/schedules", json=body)
        assert answer.status_code == 422, answer.text
        assert words in answer.json()["detail"]
        assert admin.get("/api/schedules").json() == []


def test_the_coordinator_publishes_a_schedules_ticks(server: RunningCoordinator) -> None:
    from tests.waiting import wait_until

    with client(server, Role.ADMIN) as admin:
        body = {"topic": TOPIC, "cron": "* * * * * *", "callable": f"{FEEDS}:two_clients"}
        schedule = admin.post("/api/schedules", json=body).json()

        def last_published() -> dict[str, Any] | None:
            [row] = admin.get("/api/schedules").json()
            last: dict[str, Any] | None = row["last"]
            return last if last is not None and last["state"] == "published" else None

        last = wait_until(last_published, 10, "a tick to be published")
        assert last["published"] == 2
    log = open_broker(server.settings().broker_url)
    try:
        found = published(log)
    finally:
        log.close()
    assert found
    assert set(found.values()) == {1}
    assert all(tick.startswith(f"{schedule['id']}/") for tick, _ in found)
