"""The status answer keeps each queue's row between reads (``screen_rows.py``, ``api/status_json.py``) and is never
stale: whatever changes one input of a row, the next answer shows it, and figures that move with time move without
anything being written. Every answer here is also checked whole against the figures worked out afresh."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import uvicorn
from pydantic import TypeAdapter

from tests.coordinator.test_service import Site, farm, keys
from tests.waiting import wait_until
from xtreaming.broker import Record
from xtreaming.config import Settings
from xtreaming.coordinator.activity import QueueActivity
from xtreaming.coordinator.api.app import create_app
from xtreaming.coordinator.core.pending import PendingMessage
from xtreaming.coordinator.figures import BaseFigures, QueueFigures, queue_figures
from xtreaming.coordinator.records import QueueRecord, WorkSettings
from xtreaming.coordinator.runtime import QueueRuntime
from xtreaming.coordinator.screen_rows import QueueRows
from xtreaming.coordinator.service import Report
from xtreaming.localhost import free_port
from xtreaming.wire.verdict import Verdict

TOPIC = "MULTCOB03.1189.IMPORTACAO.ATUALIZA_BUREAU"
OTHER = "MULTCOB02.1186.IMPORTACAO.CARGA"
ROWS = TypeAdapter(list[QueueFigures])

Status = Callable[[], dict[str, Any]]


@pytest.fixture
def status(site: Site) -> Iterator[Status]:
    """``GET /api/status`` over real HTTP from an app serving the site's coordinator (its clock the test's), with no
    background loop: nothing changes but what the test does. Each answer is checked against the figures worked
    out afresh, every row (``Coordinator.figures``, which keeps none)."""
    settings = Settings.model_validate({"broker_url": site.broker_url, "database_url": site.store_url, "tokens": []})
    app = create_app(settings, site.coordinator)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started or not thread.is_alive(), 10, "the status server to start", every_s=0.01)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as api:

        def get() -> dict[str, Any]:
            answer: dict[str, Any] = api.get("/api/status").raise_for_status().json()
            afresh, _ = site.coordinator.figures()
            assert sorted(answer["queues"], key=topic_of) == sorted(ROWS.dump_python(afresh, mode="json"), key=topic_of)
            return answer

        yield get
    server.should_exit = True
    thread.join(timeout=10)


def topic_of(row: dict[str, Any]) -> str:
    return str(row["topic"])


def row(answer: dict[str, Any], topic: str = TOPIC) -> dict[str, Any]:
    return next(r for r in answer["queues"] if r["topic"] == topic)


@pytest.fixture
def arranged(site: Site, status: Status) -> Status:
    """Two queues of 10 messages on two bases, tasks of 4, one farm of 2 slots; the other queue paused (every task
    is the queue's, and the other's row the one that stays); the status read once (rows kept)."""
    site.store.add_profile(".*", WorkSettings(batch_size=4, max_attempts=2, backoff_s=0, command=("worker.exe",)))
    site.broker.create_topic(OTHER, 1)
    site.broker.append(OTHER, [Record(key.encode(), b"<cliente/>") for key in keys(10, start=100)])
    site.publish(TOPIC, keys(10))  # both discovered by its pass
    site.coordinator.controls.update_queue(OTHER, "test", paused=True)
    farm(site)
    answer = status()
    assert (row(answer)["pending"], row(answer)["state"], row(answer, OTHER)["state"]) == (10, "waiting", "paused")
    return status


def lease(site: Site, slots: int = 1) -> list[str]:
    return [task.task_id for task in site.coordinator.lease("farm-a", list(range(slots)))]


def fail(site: Site, error: str) -> None:
    [task_id] = lease(site)
    site.clock.advance(1)
    site.coordinator.complete(task_id, Report(Verdict.RETRY, {}, error))


def finish(site: Site) -> None:
    for task_id in lease(site):
        site.clock.advance(1)
        site.coordinator.complete(task_id, Report(Verdict.OK, {}))


def test_more_messages_show_as_pending(site: Site, arranged: Status) -> None:
    site.publish(TOPIC, keys(5, start=10))

    assert row(arranged())["pending"] == 15


def test_a_lease_shows_its_worker_and_its_messages_in_flight(site: Site, arranged: Status) -> None:
    lease(site)

    found = row(arranged())
    assert (found["state"], found["workers"], found["in_flight"], found["base_in_use"]) == ("running", 1, 4, 1)


def test_finished_messages_leave_pending_and_count_as_consumed_with_a_speed_and_an_eta(
    site: Site, arranged: Status
) -> None:
    finish(site)

    found = row(arranged())
    assert (found["consumed"], found["pending"], found["workers"], found["in_flight"]) == (4, 6, 0, 0)
    assert found["speed_10s"] > 0
    assert found["eta_s"] is not None


def test_a_failed_attempt_shows_its_failures_and_its_error(site: Site, arranged: Status) -> None:
    fail(site, "CRM recusou a conexão")

    found = row(arranged())
    assert (found["failures"], found["last_error"], found["state"]) == (4, "CRM recusou a conexão", "failing")


def test_messages_out_of_attempts_show_as_dead(site: Site, arranged: Status) -> None:
    fail(site, "primeira")
    fail(site, "segunda")  # max_attempts 2: the same 4 messages, now dead

    found = row(arranged())
    assert (found["dead"], found["failures"], found["consumed"], found["last_error"]) == (4, 0, 4, "segunda")


def test_pausing_and_resuming_a_queue_shows_at_once(site: Site, arranged: Status) -> None:
    site.coordinator.controls.update_queue(TOPIC, "test", paused=True)
    paused = row(arranged())["state"]
    site.coordinator.controls.update_queue(TOPIC, "test", paused=False)

    assert (paused, row(arranged())["state"]) == ("paused", "waiting")


def test_a_new_priority_shows_and_orders_the_rows(site: Site, arranged: Status) -> None:
    site.coordinator.controls.update_queue(OTHER, "test", priority=9)

    answer = arranged()
    assert row(answer, OTHER)["priority"] == 9
    assert [r["topic"] for r in answer["queues"]] == [OTHER, TOPIC]


def test_a_queue_without_a_worker_says_so(site: Site, arranged: Status) -> None:
    site.coordinator.controls.configure_queue(TOPIC, "test", {"command": ()})

    assert row(arranged())["state"] == "no-worker"


def test_a_base_limit_and_a_base_pause_show_on_its_queues_only(site: Site, arranged: Status) -> None:
    site.coordinator.controls.update_base("MULTCOB03", "test", max_workers=1)
    limited = arranged()
    site.coordinator.controls.update_base("MULTCOB03", "test", paused=True)
    paused = arranged()

    assert (row(limited)["base_limit"], row(limited, OTHER)["base_limit"]) == (1, 4)
    assert (row(paused)["state"], row(paused, OTHER)["state"]) == ("base-paused", "paused")


def test_a_window_added_and_removed_shows_on_the_rows_and_the_base(site: Site, arranged: Status) -> None:
    window = site.coordinator.controls.add_window(
        "MULTCOB03", "test", weekdays=range(7), start="00:00", end="23:59", max_workers=2
    )
    added = arranged()
    site.coordinator.controls.remove_window(window.id, "test")
    removed = arranged()

    assert (row(added)["base_limit"], row(added)["base_window"]) == (2, "00:00–23:59")
    assert [w["id"] for w in next(b for b in added["bases"] if b["name"] == "MULTCOB03")["windows"]] == [window.id]
    assert (row(removed)["base_limit"], row(removed)["base_window"]) == (4, None)
    assert next(b for b in removed["bases"] if b["name"] == "MULTCOB03")["windows"] == []


def test_a_finished_queue_is_done_with_when_it_finished(site: Site, arranged: Status) -> None:
    for _ in range(3):  # tasks of 4, 4 and 2
        finish(site)

    found = row(arranged())
    assert (found["state"], found["pending"], found["consumed"]) == ("done", 0, 10)
    assert found["finished_at"] == site.clock.now.isoformat().replace("+00:00", "Z")


def test_speeds_fall_and_the_eta_moves_as_time_passes_with_nothing_written(site: Site, arranged: Status) -> None:
    finish(site)
    just = row(arranged())
    site.clock.advance(15)
    later = row(arranged())
    site.clock.advance(60)
    minutes_later = row(arranged())
    site.clock.advance(3600)
    hours_later = arranged()

    assert (just["speed_10s"], just["speed"], just["eta_s"]) == (4.0, 4.0, 1.5)
    # 4 finished in the 16 s since it began: 0.25/s, and 6 left.
    assert (later["speed_10s"], later["speed"], later["eta_s"]) == (0.0, 0.2, 24.0)
    assert (minutes_later["speed"], minutes_later["eta_s"]) == (0.0, None)
    assert minutes_later["speed_1h"] > 0
    assert (row(hours_later)["speed_1h"], row(hours_later)["state"]) == (0.0, "waiting")


def test_a_queue_whose_last_success_ages_turns_failing_with_nothing_written(site: Site, arranged: Status) -> None:
    finish(site)
    fail(site, "CRM fora do ar")
    succeeded_lately = row(arranged())["state"]
    site.clock.advance(61)

    assert (succeeded_lately, row(arranged())["state"]) == ("waiting", "failing")


def test_a_window_that_begins_sets_the_limit_with_nothing_written(site: Site, arranged: Status) -> None:
    site.clock.now = datetime(2026, 3, 3, 23, 59, 50, tzinfo=UTC)  # 20:59:50 in São Paulo
    site.coordinator.controls.add_window(
        "MULTCOB03", "test", weekdays=range(7), start="21:00", end="06:00", max_workers=1
    )
    before = row(arranged())
    site.clock.advance(20)
    after = row(arranged())

    assert (before["base_limit"], before["base_window"]) == (4, None)
    assert (after["base_limit"], after["base_window"]) == (1, "21:00–06:00")


def test_rows_are_kept_while_nothing_changes_and_worked_out_again_when_something_does(
    site: Site, arranged: Status
) -> None:
    def rows() -> dict[str, QueueFigures]:
        return {r.topic: r for r in site.coordinator.screen().queues}

    first = rows()
    site.clock.advance(30)
    kept = rows()
    lease(site)
    changed = rows()

    assert (kept[TOPIC] is first[TOPIC], kept[OTHER] is first[OTHER]) == (True, True)
    assert (changed[TOPIC] is kept[TOPIC], changed[OTHER] is kept[OTHER]) == (False, True)


def test_a_queue_that_finished_lately_is_worked_out_on_every_read_until_it_is_still(
    site: Site, arranged: Status
) -> None:
    finish(site)

    def topic_row() -> QueueFigures:
        return next(r for r in site.coordinator.screen().queues if r.topic == TOPIC)

    moving = [topic_row(), topic_row()]
    site.clock.advance(timedelta(minutes=61).total_seconds())
    still = [topic_row(), topic_row()]

    assert moving[0] is not moving[1]
    assert still[0] is still[1]
    assert still[0].speed_1h == 0.0


# -- each input alone, on a queue's runtime: the row kept is dropped and the one given is worked out afresh --------

NOW = datetime(2026, 3, 3, 13, 0, tzinfo=UTC)
BASE = BaseFigures("MULTCOB03", in_use=1, limit=4, window=None, default_max_workers=4, min_workers=0, paused=False)


def still_queue() -> QueueRuntime:
    """A queue of 2 partitions, 30 messages, 5 finished, a task running, a failure two hours ago: still."""
    queue = QueueRuntime(QueueRecord(TOPIC, "MULTCOB03", "IMPORTACAO", WorkSettings(command=("worker.exe",))))
    for partition in (0, 1):
        queue.restore_partition(partition, None).end = 15
    queue.partitions[0].ledger.skip_to(5)
    queue.running.add("task-1")
    queue.activity.settled(NOW - timedelta(hours=2), ok=0, dead=0, retried=1, error="attempt 1: CRM fora do ar")
    assert queue.activity.is_still(NOW)
    return queue


def change_activity(queue: QueueRuntime, name: str) -> None:
    """Give the activity's field ``name`` another value of its type, leaving the queue still."""
    value = getattr(queue.activity, name)
    if isinstance(value, datetime) or name.endswith("_at"):
        setattr(queue.activity, name, NOW - timedelta(hours=3))
    elif isinstance(value, str) or name.endswith("error"):
        setattr(queue.activity, name, "outro erro")
    else:
        setattr(queue.activity, name, (value or 0) + 7)


CHANGES: dict[str, Callable[[QueueRuntime], None]] = {
    "more messages in the log": lambda q: setattr(q.partitions[1], "end", 20),
    "offsets finished (a gap skipped)": lambda q: q.partitions[1].ledger.skip_to(3),
    "a task more": lambda q: q.running.add("task-2"),
    "a message back for another attempt": lambda q: q.add_pending([PendingMessage(0, 5, b"cpf", attempt=2)]),
    "a dead letter": lambda q: setattr(q, "dead", q.dead + 1),
    "a duplicate": lambda q: setattr(q, "duplicates", q.duplicates + 1),
    "paused": lambda q: q.with_record(replace(q.record, paused=True)),
    "a priority": lambda q: q.with_record(replace(q.record, settings=replace(q.record.settings, priority=9))),
    "no worker": lambda q: q.with_record(replace(q.record, settings=replace(q.record.settings, command=()))),
    **{
        f"activity's {f.name}": functools.partial(change_activity, name=f.name)
        for f in fields(QueueActivity)
        if f.name not in ("seconds", "minutes")
    },
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_a_row_is_worked_out_again_when_any_one_input_changes(change: str) -> None:
    queue, rows = still_queue(), QueueRows()
    kept = rows.row(queue, BASE, 4, NOW)
    assert rows.row(queue, BASE, 4, NOW) is kept

    CHANGES[change](queue)
    row_now = rows.row(queue, BASE, 4, NOW + timedelta(seconds=1))

    assert row_now is not kept
    assert row_now == queue_figures(queue, BASE, 4, NOW + timedelta(seconds=1))


@pytest.mark.parametrize(
    ("base", "in_flight"),
    [
        (replace(BASE, in_use=2), 4),
        (replace(BASE, limit=1), 4),
        (replace(BASE, window="08:00–18:00"), 4),
        (replace(BASE, paused=True), 4),
        (BASE, 8),
    ],
    ids=["base in use", "base limit", "base window", "base paused", "messages in flight"],
)
def test_a_row_is_worked_out_again_when_its_base_or_its_messages_in_flight_change(
    base: BaseFigures, in_flight: int
) -> None:
    queue, rows = still_queue(), QueueRows()
    kept = rows.row(queue, BASE, 4, NOW)

    row_now = rows.row(queue, base, in_flight, NOW)

    assert row_now is not kept
    assert row_now == queue_figures(queue, base, in_flight, NOW)


@pytest.mark.parametrize("minutes", [1, 30, 45, 59, 60, 61, 62, 120])
def test_a_row_of_a_queue_that_finished_within_the_hour_moves_with_time_until_it_is_still(minutes: int) -> None:
    queue, rows = still_queue(), QueueRows()
    finished_at = NOW + timedelta(seconds=59)  # late in its minute: the 1 h speed counts whole minutes
    queue.activity.settled(finished_at, ok=1000, dead=0, retried=0)
    rows.row(queue, BASE, 4, finished_at)
    reads = [finished_at + timedelta(minutes=minutes), finished_at + timedelta(minutes=minutes, seconds=50)]

    shown = [rows.row(queue, BASE, 4, now) for now in reads]

    assert shown == [queue_figures(queue, BASE, 4, now) for now in reads]
