"""A queue's recent activity: speeds over 10 s, 1 min and 1 h, the failing rule, a worker's speed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from xtreaming.coordinator.activity import MAX_ERROR_CHARS, QueueActivity

T0 = datetime(2026, 3, 3, 13, 0, tzinfo=UTC)


def later(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_a_queue_that_stopped_finishing_shows_0_over_10_s_while_the_minute_still_counts_it() -> None:
    activity = QueueActivity()
    for second in range(30):
        activity.settled(later(second), ok=100, dead=0, retried=0)

    assert activity.rate(later(29), 10) == 100.0
    assert activity.rate(later(29), 60) == 100.0  # 30 s of work: measured over those 30 s, not over a minute
    assert activity.rate(later(45), 10) == 0.0
    assert activity.rate(later(45), 60) == 3000 / 46
    assert activity.rate(later(120), 60) == 0.0


def test_the_hourly_speed_spans_the_hour_or_since_the_queue_started_finishing() -> None:
    activity = QueueActivity()
    for minute in range(90):
        activity.settled(later(minute * 60), ok=60, dead=0, retried=0)

    assert activity.hourly_rate(later(89 * 60)) == 1.0  # 60 minutes of 60 messages each
    fresh = QueueActivity()
    fresh.settled(T0, ok=600, dead=0, retried=0)
    assert fresh.hourly_rate(later(599)) == 1.0
    assert fresh.hourly_rate(later(3700)) == 0.0


def test_dead_messages_are_finished_and_failed_retries_only_failed() -> None:
    activity = QueueActivity()
    activity.settled(T0, ok=0, dead=3, retried=5, error="attempt 1: timeout")

    minute = activity.minute(int(T0.timestamp()) // 60)
    assert minute is not None
    assert (minute.finished, minute.ok, minute.failed) == (3, 0, 8)
    assert activity.rate(T0, 10) == 3.0


def test_a_queue_whose_attempts_only_fail_is_failing_with_its_last_error() -> None:
    activity = QueueActivity()
    activity.settled(T0, ok=0, dead=0, retried=4, error="attempt 1: CRM fora do ar")
    activity.settled(later(5), ok=0, dead=0, retried=1, error="attempt 2: " + "x" * 900)

    assert activity.is_failing(later(6))
    assert activity.last_error == "x" * MAX_ERROR_CHARS  # the detail, its "attempt 2: " apart
    assert activity.last_error_attempt == 2


def test_one_failure_among_recent_successes_is_not_failing() -> None:
    activity = QueueActivity()
    activity.settled(T0, ok=50, dead=0, retried=0)
    activity.settled(later(20), ok=0, dead=0, retried=1, error="attempt 1: timeout")

    assert not activity.is_failing(later(30))
    # A minute with no success since: only failures since the last success.
    assert activity.is_failing(later(61))
    activity.settled(later(62), ok=1, dead=0, retried=0)
    assert not activity.is_failing(later(63))


def test_a_worker_speed_is_messages_over_the_time_its_tasks_took() -> None:
    activity = QueueActivity()
    assert activity.worker_speed(T0) is None
    activity.task_settled(T0, 500, 5.0)
    activity.task_settled(later(30), 500, 15.0)

    assert activity.worker_speed(later(30)) == 50.0
    assert activity.worker_speed(later(11 * 60)) is None  # nothing settled in the last 10 minutes


def test_the_minute_keeps_the_most_workers_seen() -> None:
    activity = QueueActivity()
    activity.running(T0, 2)
    activity.running(later(10), 5)
    activity.running(later(20), 3)

    minute = activity.minute(int(T0.timestamp()) // 60)
    assert minute is not None
    assert minute.workers == 5
    assert activity.minute(int(T0.timestamp()) // 60 + 1) is None
