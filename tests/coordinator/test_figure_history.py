"""The figure history: each queue's and base's minutes written once a minute by the background pass, kept across a
restart, trimmed in bounded deletes, and served by the figures routes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine

from tests.coordinator.server import RunningCoordinator
from tests.coordinator.test_service import Site, farm, keys
from tests.coordinator.workers import give_workers_over
from xtreaming.coordinator.records import FigurePoint, SlotRecord, WorkSettings
from xtreaming.coordinator.service import Report
from xtreaming.coordinator.store import Store
from xtreaming.errors import StoreUnavailable
from xtreaming.wire.verdict import Verdict

TOPIC = "MULTCOB03.1189.IMPORTACAO.ATUALIZA_BUREAU"
IDLE = "MULTCOB03.1190.IMPORTACAO.CARGA"
MINUTE = datetime(2026, 3, 3, 13, 0, tzinfo=UTC)  # the site clock's start: 10:00 on a Tuesday in São Paulo


def work_a_minute(site: Site, *, ok: int = 1, retry: int = 0) -> str:
    """Lease ``ok + retry`` single-message tasks on a farm of as many slots and settle them; returns the farm."""
    farm_id = farm(site, slots=ok + retry + 1)
    tasks = site.coordinator.lease(farm_id, list(range(ok + retry)))
    site.clock.advance(5)
    for index, task in enumerate(tasks):
        verdict = Verdict.OK if index < ok else Verdict.RETRY
        site.coordinator.complete(task.task_id, Report(verdict, {}, None if verdict is Verdict.OK else "timeout"))
    return farm_id


def test_each_minute_with_activity_is_written_once_it_ends_for_the_queue_and_its_base(site: Site) -> None:
    site.store.add_profile(".*", WorkSettings(batch_size=1, backoff_s=60))
    site.publish(TOPIC, keys(10))
    site.publish(IDLE, [])
    site.coordinator.controls.add_window("MULTCOB03", "ana", weekdays=[1], start="10:00", end="11:00", max_workers=3)
    work_a_minute(site, ok=2, retry=1)

    assert site.coordinator.record_figures() == 0  # the minute has not ended
    site.clock.advance(60)
    written = site.coordinator.record_figures()

    since = MINUTE - timedelta(hours=1)
    assert written == 2
    assert site.store.figure_points("queue", TOPIC, since) == [FigurePoint("queue", TOPIC, MINUTE, 2, 1, 3, None)]
    assert site.store.figure_points("base", "MULTCOB03", since) == [
        FigurePoint("base", "MULTCOB03", MINUTE, 2, 1, 3, 3)
    ]
    assert site.store.figure_points("queue", IDLE, since) == []  # idle: nothing written
    assert site.coordinator.record_figures() == 0  # written once


def test_a_worker_running_through_a_quiet_minute_is_still_a_point(site: Site) -> None:
    site.store.add_profile(".*", WorkSettings(batch_size=5, max_workers=2))
    site.publish(TOPIC, keys(10))
    farm_id = farm(site)
    [task] = site.coordinator.lease(farm_id, [0])
    for _ in range(25):  # 125 s of heartbeats: the task runs on
        site.clock.advance(5)
        site.coordinator.heartbeat(farm_id, [SlotRecord(farm_id, 0, "running", task.task_id)])
    site.coordinator.run_once()

    points = site.store.figure_points("queue", TOPIC, MINUTE)

    assert [(p.at - MINUTE, p.done, p.workers, p.limit) for p in points] == [
        (timedelta(0), 0, 1, 2),
        (timedelta(minutes=1), 0, 1, 2),
    ]


def test_the_minute_under_way_is_served_before_it_is_written_and_summed_across_a_restart(site: Site) -> None:
    site.store.add_profile(".*", WorkSettings(batch_size=1))
    site.publish(TOPIC, keys(10))
    work_a_minute(site, ok=2)
    before = site.coordinator.figure_points("queue", TOPIC, MINUTE)
    site.coordinator.record_figures(partial=True)  # as the coordinator stops
    site.restart().run_once()
    work_a_minute(site, ok=3)
    unwritten = site.coordinator.figure_points("queue", TOPIC, MINUTE)
    site.clock.advance(60)
    site.coordinator.record_figures()

    assert [p.done for p in before] == [2]
    assert [p.done for p in unwritten] == [5]  # stored 2, and 3 not written yet
    assert [(p.at, p.done) for p in site.store.figure_points("queue", TOPIC, MINUTE)] == [(MINUTE, 5)]


def test_unknown_names_are_refused(site: Site) -> None:
    from xtreaming.errors import BaseNotFound, QueueNotFound

    with pytest.raises(QueueNotFound):
        site.coordinator.figure_points("queue", "A.1.B.C", MINUTE)
    with pytest.raises(BaseNotFound, match="base 'NOPE' is not known"):
        site.coordinator.figure_points("base", "NOPE", MINUTE)


def point(name: str, minute: int, done: int = 1) -> FigurePoint:
    return FigurePoint("queue", name, MINUTE + timedelta(minutes=minute), done, 0, 1, None)


def test_points_of_the_same_minute_add_up(store: Store) -> None:
    store.add_figure_points([point("A", 0, 2), point("B", 0, 1)])
    store.add_figure_points([point("A", 0, 3)])

    assert [p.done for p in store.figure_points("queue", "A", MINUTE)] == [5]
    minute = int(MINUTE.timestamp()) // 60
    assert sorted(store.figures_done_since(MINUTE)) == [("queue", "A", minute, 5), ("queue", "B", minute, 1)]


def test_every_sparkline_is_read_through_the_driver_and_a_failure_said_in_our_words(
    store: Store, store_url: str
) -> None:
    store.add_figure_points([point("A", 0, 2), point("A", 1, 4), point("B", 1, 1)])
    minute = int(MINUTE.timestamp()) // 60

    assert sorted(store.figures_done_since(MINUTE + timedelta(minutes=1))) == [
        ("queue", "A", minute + 1, 4),
        ("queue", "B", minute + 1, 1),
    ]
    engine = create_engine(store_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE figure_points RENAME TO figure_points_away")
    engine.dispose()
    with pytest.raises(StoreUnavailable, match="unavailable"):
        store.figures_done_since(MINUTE)


def test_retention_deletes_the_oldest_whole_minutes_a_bounded_batch_at_a_time(store: Store) -> None:
    store.add_figure_points([point(name, minute) for minute in range(4) for name in "ABC"])
    cut = MINUTE + timedelta(minutes=3)

    batches = [store.trim_figures(cut, 4) for _ in range(4)]

    assert batches == [3, 3, 3, 0]  # about 4 at most, whole minutes: one minute of 3 points each time
    assert {p.at for p in store.figure_points("queue", "A", MINUTE)} == {cut}
    big = store.trim_figures(MINUTE + timedelta(minutes=9), 2)  # a minute of more points than asked goes whole
    assert big == 3


# -- over HTTP ------------------------------------------------------------------------------------


@pytest.fixture
def running(tmp_path: Path) -> Iterator[RunningCoordinator]:
    running = RunningCoordinator(tmp_path).start()
    yield running
    running.stop()


def run_tasks(api: httpx.Client, farm_id: str, count: int) -> None:
    for _ in range(count):
        [task] = api.post(f"/api/farms/{farm_id}/lease", json={"slots": [0], "wait_s": 0}).json()["tasks"]
        api.post(f"/api/tasks/{task['task_id']}/complete", json={"default": "ok"}).raise_for_status()


def test_the_routes_serve_the_minutes_at_once_and_after_a_restart(running: RunningCoordinator) -> None:
    with httpx.Client(base_url=running.url, timeout=30) as api:
        api.post("/api/profiles", json={"pattern": ".*", "settings": {"batch_size": 1}}).raise_for_status()
        body = {"messages": [{"key": str(i), "value": "x"} for i in range(5)], "partitions": 1}
        api.post(f"/api/topics/{TOPIC}/messages", json=body).raise_for_status()
        give_workers_over(api)
        farm_id = api.post("/api/farms/register", json={"name": "farm-a", "slots": 1}).json()["farm_id"]
        run_tasks(api, farm_id, 3)
        first = api.get(f"/api/figures/queues/{TOPIC}").json()
        lines = api.get("/api/figures/sparklines", params={"minutes": 5}).json()
    running.stop()
    running.start()
    with httpx.Client(base_url=running.url, timeout=30) as api:
        again = api.get(f"/api/figures/queues/{TOPIC}", params={"minutes": 10}).json()
        base = api.get("/api/figures/bases/MULTCOB03").json()

    assert first["name"] == TOPIC
    assert sum(p["done"] for p in first["points"]) == 3
    assert sum(lines["queues"][TOPIC]) == sum(lines["bases"]["MULTCOB03"]) == 3
    assert len(lines["queues"][TOPIC]) == 5
    assert sum(p["done"] for p in again["points"]) == 3  # written as the coordinator stopped
    assert base["name"] == "MULTCOB03"
    assert sum(p["done"] for p in base["points"]) == 3
    assert all(p["limit"] is not None for p in base["points"])


def test_the_routes_refuse_unknown_names_and_spans_out_of_range(api: httpx.Client) -> None:
    assert api.get("/api/figures/queues/A.1.B.C").status_code == 404
    assert api.get("/api/figures/bases/NOPE").status_code == 404
    assert api.get(f"/api/figures/queues/{TOPIC}", params={"minutes": 0}).status_code == 422
    assert api.get("/api/figures/bases/NOPE", params={"minutes": 10081}).status_code == 422
    assert api.get("/api/figures/sparklines", params={"minutes": 1441}).status_code == 422
    assert api.get("/api/figures/sparklines").json() == {"queues": {}, "bases": {}}


def test_writing_a_minute_deletes_the_points_past_the_retention_and_keeps_the_rest(site: Site) -> None:
    site.store.add_profile(".*", WorkSettings(batch_size=1))
    site.publish(TOPIC, keys(5))
    week_ago = MINUTE - timedelta(days=7, minutes=1)
    day_ago = MINUTE - timedelta(days=1)
    site.store.add_figure_points([FigurePoint("queue", TOPIC, at, 1, 0, 1, None) for at in (week_ago, day_ago)])
    work_a_minute(site)
    site.clock.advance(60)

    site.coordinator.record_figures()

    kept = site.store.figure_points("queue", TOPIC, week_ago - timedelta(days=1))
    assert [p.at for p in kept] == [day_ago, MINUTE]
