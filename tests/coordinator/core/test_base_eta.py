"""A base's ETA: its queues' pending work walked forward in time under its limit and windows, by priority."""

from __future__ import annotations

from datetime import datetime, timedelta

from tests.coordinator.builders import SITE, at, window
from xtreaming.coordinator.core.base_eta import HORIZON, QueueWork, base_eta
from xtreaming.coordinator.core.windows import Window

NOW = at("2026-03-03T10:00")  # a Tuesday, site time


def work(
    topic: str = "A", *, pending: int = 3600, speed: float | None = 1.0, priority: int = 5, **caps: int
) -> QueueWork:
    return QueueWork(topic, priority, pending, speed, caps.get("max_workers"), caps.get("batch_size"))


def eta(queues: list[QueueWork], max_workers: int = 1, windows: tuple[Window, ...] = (), **kw: int) -> datetime | None:
    return base_eta(queues, max_workers, windows, SITE, NOW, slots=kw.get("slots"))


def test_one_queue_finishes_after_its_pending_over_its_workers_speed() -> None:
    assert eta([work(pending=3600, speed=2.0)], max_workers=1) == NOW + timedelta(minutes=30)
    assert eta([work(pending=3600, speed=2.0)], max_workers=4) == NOW + timedelta(seconds=450)


def test_nothing_pending_or_no_speed_known_gives_no_eta() -> None:
    assert eta([]) is None
    assert eta([work(pending=0)]) is None
    assert eta([work(speed=None), work("B", speed=0.0)]) is None


def test_a_queue_without_a_known_speed_goes_at_the_mean_of_the_others() -> None:
    # A (speed 2) and B (unknown: 2 as well) share 2 workers, one each: 3,600 each at 2/s.
    assert eta([work("A", speed=2.0), work("B", speed=None)], max_workers=2) == NOW + timedelta(minutes=30)


def test_a_lower_priority_queue_waits_behind_a_higher_one_then_takes_every_worker() -> None:
    urgent = work("URGENT", pending=1200, speed=1.0, priority=8)
    bulk = work("BULK", pending=2400, speed=1.0, priority=5)
    # 2 workers: URGENT takes both for 600 s; BULK then runs alone on both for 1,200 s.
    assert eta([urgent, bulk], max_workers=2) == NOW + timedelta(seconds=1800)
    # URGENT capped at one worker: BULK gets the other from the start (600 s at 1/s), then both (1,800 / 2 = 900 s).
    capped = work("URGENT", pending=600, speed=1.0, priority=8, max_workers=1)
    assert eta([capped, bulk], max_workers=2) == NOW + timedelta(seconds=1500)


def test_queues_of_equal_priority_share_the_workers_evenly() -> None:
    small = work("SMALL", pending=600, speed=1.0)
    large = work("LARGE", pending=3000, speed=1.0)
    # 2 workers, one each: SMALL done at 600 s (LARGE did 600); LARGE's 2,400 left on 2 workers: 1,200 s.
    assert eta([small, large], max_workers=2) == NOW + timedelta(seconds=1800)


def test_a_queue_takes_no_more_workers_than_batches_left() -> None:
    # 100 messages in batches of 500: one task, one worker, whatever the limit.
    assert eta([work(pending=100, speed=1.0, batch_size=500)], max_workers=8) == NOW + timedelta(seconds=100)


def test_a_window_lowering_the_limit_slows_the_work_from_its_start() -> None:
    # 4 workers until 11:00, then 1 (window 11:00–18:00): 3,600 s of work at 4/s would end at 10:15; with
    # 14,400 + 3,600 = 18,000 messages: 14,400 done by 11:00, the 3,600 left at 1/s end at 12:00.
    lunch = window("11:00", "18:00", max_workers=1)
    assert eta([work(pending=18_000, speed=1.0)], max_workers=4, windows=(lunch,)) == at("2026-03-03T12:00")


def test_a_base_closed_for_hours_by_a_limit_of_0_resumes_when_the_window_ends() -> None:
    closed = window("10:00", "14:00", max_workers=0)
    assert eta([work(pending=3600, speed=1.0)], max_workers=1, windows=(closed,)) == at("2026-03-03T15:00")


def test_a_window_crossing_midnight_and_weekdays_are_read_in_the_site_zone() -> None:
    night = window("22:00", "06:00", max_workers=0, days=[1])  # Tuesday night only
    # 1 worker at 1/s from 10:00: 12 h of work (43,200) until 22:00, closed until Wednesday 06:00, 2 h left.
    done = eta([work(pending=50_400, speed=1.0)], max_workers=1, windows=(night,))
    assert done == at("2026-03-04T08:00")


def test_a_limit_of_0_for_good_or_farms_without_slots_give_no_eta() -> None:
    always_closed = window("00:00", "24:00", max_workers=0)
    assert eta([work()], max_workers=4, windows=(always_closed,)) is None
    assert eta([work()], max_workers=0) is None
    assert eta([work()], max_workers=4, slots=0) is None


def test_the_farms_slots_cap_the_workers() -> None:
    assert eta([work(pending=3600, speed=1.0)], max_workers=8, slots=2) == NOW + timedelta(seconds=1800)


def test_work_beyond_the_horizon_has_no_eta() -> None:
    days = HORIZON.days + 1
    assert eta([work(pending=days * 86_400, speed=1.0)], max_workers=1) is None
