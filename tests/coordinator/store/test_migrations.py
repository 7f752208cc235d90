"""The state store's schema: migrations to the newest revision and back, and tasks stored by earlier versions."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import JSON, Integer, Text, column, insert, inspect, table

from tests.coordinator.store.builders import T0, TOPIC, connected, migrate, revision, task
from xtreaming.coordinator.records import BaseRecord, TaskMessage, TaskRecord, WindowRecord
from xtreaming.coordinator.schema import METADATA, UtcDateTime
from xtreaming.coordinator.store import MIGRATIONS, Store

TABLES = {"profiles", "queues", "bases", "windows", "farms", "tasks", "ledger", "retries", "audit_log"}
TABLES |= {"dead_letters", "dlq_positions", "replays"}
TABLES |= {"history_groups", "message_history"}
TABLES |= {"figure_points"}
TABLES |= {"schedules", "schedule_ticks"}
NEWEST = "0014"
#: ``tasks`` as versions before 0002 wrote it: messages as JSON (0002 adds ``packed``, NULL for these rows).
OLD_TASKS = table(
    "tasks",
    column("id", Text()),
    column("topic", Text()),
    column("farm_id", Text()),
    column("slot", Integer()),
    column("messages", JSON()),
    column("leased_at", UtcDateTime()),
    column("deadline_at", UtcDateTime()),
)
#: Messages as versions before 0002 leased them: keys of every kind, several partitions, retried ones.
LEASED = (
    TaskMessage(0, 10**12, b"12345678909", 1),
    TaskMessage(3, 5, None, 2),
    TaskMessage(3, 6, b"", 1),
    TaskMessage(1, 7, bytes(range(256)), 3),
)
#: The two JSON forms of ``tasks.messages`` versions before 0002 wrote: a list per message (the first
#: versions), then a list per field.
JSON_FORMS = {
    "a list per message": [[m.partition, m.offset, None if m.key is None else m.key.hex(), m.attempt] for m in LEASED],
    "a list per field": {
        "partitions": [m.partition for m in LEASED],
        "offsets": [m.offset for m in LEASED],
        "keys": [None if m.key is None else m.key.hex() for m in LEASED],
        "attempts": [m.attempt for m in LEASED],
    },
}


def leased(task_id: str) -> TaskRecord:
    return TaskRecord(task_id, TOPIC, "farm-1", 2, LEASED, T0, T0 + timedelta(minutes=10))


def insert_json_task(url: str, record: TaskRecord, messages: Any) -> None:
    """Store ``record`` as versions before 0002 did: ``messages`` JSON, nothing packed."""
    with connected(url) as conn:
        conn.execute(
            insert(OLD_TASKS).values(
                id=record.id, topic=record.topic, farm_id=record.farm_id, slot=record.slot, messages=messages,
                leased_at=record.leased_at, deadline_at=record.deadline_at,
            )
        )  # fmt: skip
        conn.commit()


def test_open_migrates_an_empty_database_to_the_newest_revision(store_url: str) -> None:
    Store.open(store_url).close()

    with connected(store_url) as conn:
        tables = set(inspect(conn).get_table_names())
    assert tables >= TABLES
    assert "slots" not in tables
    assert revision(store_url) == NEWEST


def test_reopening_keeps_the_data_and_migrates_nothing(store_url: str) -> None:
    with Store.open(store_url) as store:
        store.put_base(BaseRecord("MULTCOB03", 8))

    with Store.open(store_url) as store:
        assert store.list_bases() == [BaseRecord("MULTCOB03", 8)]
    assert revision(store_url) == NEWEST


def test_migrated_schema_matches_the_tables_the_store_uses(store: Store, store_url: str) -> None:
    with connected(store_url) as conn:
        differences = compare_metadata(MigrationContext.configure(conn), METADATA)

    assert differences == []


def test_migrations_downgrade_to_an_empty_database(store: Store, store_url: str) -> None:
    store.close()
    migrate(store_url, "downgrade", "base")

    with connected(store_url) as conn:
        assert set(inspect(conn).get_table_names()) & (TABLES | {"slots"}) == set()


@pytest.mark.parametrize("form", JSON_FORMS)
def test_tasks_leased_as_json_before_0002_are_packed_by_the_upgrade(store_url: str, form: str) -> None:
    Store.open(store_url).close()
    migrate(store_url, "downgrade", "0001")
    insert_json_task(store_url, leased("task-1"), JSON_FORMS[form])

    with Store.open(store_url) as store:
        assert store.active_tasks() == [leased("task-1")]
    assert revision(store_url) == NEWEST


def test_tasks_at_0002_packed_or_not_survive_the_upgrade(store_url: str) -> None:
    with Store.open(store_url) as store:
        store.add_task(task("task-1"))  # packed, as 0002's versions store tasks too
    migrate(store_url, "downgrade", "0002")
    insert_json_task(store_url, leased("task-2"), JSON_FORMS["a list per field"])  # leased before 0002

    with Store.open(store_url) as store:
        assert store.active_tasks() == [task("task-1"), leased("task-2")]


def test_the_sql_of_the_upgrade_without_a_database_drops_json_tasks_and_slots(
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    config.set_main_option("sqlalchemy.url", "postgresql+psycopg://xtreaming@db/xtreaming")

    command.upgrade(config, "0002:0003", sql=True)

    sql = capsys.readouterr().out
    assert "DELETE FROM tasks WHERE packed IS NULL" in sql
    assert "ALTER TABLE tasks DROP COLUMN messages" in sql
    assert "DROP TABLE slots" in sql


def test_windows_keep_their_ids_through_0009_and_a_removed_one_is_never_given_again(store_url: str) -> None:
    def window(day: int) -> WindowRecord:
        return WindowRecord(0, "MULTCOB03", frozenset({day}), "08:00", "18:00", 2)

    with Store.open(store_url) as store:
        store.put_base(BaseRecord("MULTCOB03", 8))
        first, newest = store.add_window(window(0)), store.add_window(window(1))
    migrate(store_url, "downgrade", "0008")

    with Store.open(store_url) as store:  # upgraded to 0009 again: the rows copied with their ids
        assert store.list_windows() == [first, newest]
        store.remove_window(newest.id)
        added = store.add_window(window(2))
    assert added.id > newest.id
