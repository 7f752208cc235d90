"""Leased tasks in the state store, on SQLite and PostgreSQL: their messages and times round trip."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import insert, text

from tests.coordinator.store.builders import task
from xtreaming.coordinator.records import TaskMessage
from xtreaming.coordinator.schema import TASKS
from xtreaming.coordinator.store import Store
from xtreaming.coordinator.store.tasks import task_rows
from xtreaming.errors import InvalidRecord


def test_a_task_round_trips_its_messages_and_times(store: Store) -> None:
    placed: list[tuple[int, bytes | None]] = [(0, b"12345678909"), (3, None), (3, b""), (1, bytes(range(256)))]
    messages = tuple(TaskMessage(p, 10**12 + o, key, o + 1) for o, (p, key) in enumerate(placed))
    record = task(messages=messages)

    store.add_task(record)

    got = store.active_tasks()
    assert got == [record]
    assert got[0].leased_at.utcoffset() == timedelta(0)


def test_several_tasks_are_added_together_and_listed_oldest_lease_first(store: Store) -> None:
    later = task("task-a", range(3, 5), leased_at=task().leased_at + timedelta(seconds=1))

    store.add_tasks([later, task("task-b")])

    assert store.active_tasks() == [task("task-b"), later]


def test_a_task_id_is_taken_once(store: Store) -> None:
    store.add_task(task("task-1"))

    with pytest.raises(InvalidRecord, match="state store refused the write"):
        store.add_task(task("task-1", range(5, 6)))

    assert store.active_tasks() == [task("task-1")]


def test_a_naive_datetime_is_refused(store: Store) -> None:
    with pytest.raises(InvalidRecord, match="is naive"):
        store.add_task(task(leased_at=datetime(2025, 3, 4, 10, 0)))

    assert store.active_tasks() == []


@pytest.mark.parametrize(
    "leased_at",
    [
        datetime(2026, 3, 3, 13, 0, tzinfo=UTC),  # no microseconds: still written with them, as SQLAlchemy does
        datetime(2026, 3, 3, 10, 0, 0, 7, tzinfo=timezone(timedelta(hours=-3))),  # another zone: stored in UTC
    ],
)
def test_a_task_written_on_the_driver_is_stored_as_sqlalchemy_stores_it(store: Store, leased_at: datetime) -> None:
    """The hot path writes tasks on the driver; a row SQLAlchemy writes from the same values is the same row,
    so reads, ordering and comparisons in SQL see no difference."""
    record = task("driver", leased_at=leased_at)
    store.add_task(record)
    database = store._database  # the portable path writes beside the driver
    with database.write() as conn:
        conn.execute(insert(TASKS), task_rows([replace(record, id="core")]))

    with database.read() as conn:
        rows = conn.execute(text("SELECT id, topic, farm_id, slot, packed, leased_at, deadline_at FROM tasks"))
        stored = {row[0]: row[1:] for row in rows}
    assert stored["driver"] == stored["core"]
    assert store.active_tasks()[0].leased_at == leased_at


@pytest.mark.parametrize("count", [1, 63, 64, 65, 200])
def test_tasks_added_and_deleted_in_any_number_are_exactly_those(store: Store, count: int) -> None:
    records = [task(f"task-{n:03d}", range(n % 3)) for n in range(count)]
    store.add_tasks(records)
    added = store.active_tasks()
    kept = records[count // 2]

    store.settle(finished_tasks=[r.id for r in records if r is not kept] + ["unknown"])

    assert added == records  # the same lease time: by id
    assert store.active_tasks() == [kept]
