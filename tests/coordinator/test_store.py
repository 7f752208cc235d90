"""The state store, on SQLite and PostgreSQL: schema migrations, round trips, upserts, errors, atomic settling."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, create_engine, insert, inspect, update
from sqlalchemy.pool import NullPool

from xtreaming.coordinator.core.ledger import LedgerState
from xtreaming.coordinator.records import (
    BaseRecord,
    FarmRecord,
    LedgerRecord,
    QueueRecord,
    RetryRecord,
    SlotRecord,
    TaskMessage,
    TaskRecord,
    WindowRecord,
    WorkSettings,
)
from xtreaming.coordinator.schema import METADATA, TASKS
from xtreaming.coordinator.store import MIGRATIONS, Store
from xtreaming.errors import (
    BaseNotFound,
    FarmNotFound,
    InvalidProfile,
    InvalidRecord,
    InvalidStoreUrl,
    InvalidWindow,
    ProfileNotFound,
    QueueNotFound,
    StoreUnavailable,
    WindowNotFound,
)
from xtreaming.localhost import free_port

SITE = ZoneInfo("America/Sao_Paulo")
#: A site-local moment with microseconds: it must come back equal, in UTC.
T0 = datetime(2025, 3, 4, 10, 0, 0, 123456, tzinfo=SITE)
TOPIC = "MULTCOB03.1186.IMPORTACAO.CARGA"
TABLES = {"profiles", "queues", "bases", "windows", "farms", "slots", "tasks", "ledger", "retries", "audit_log"}
FULL_SETTINGS = WorkSettings(
    priority=9,
    batch_size=1,
    command=("MultcobWorker.exe", "IMPORTAR", "--base", "{base}", "--entrada", "{input}"),
    handler="workers.cobsinc:handle",
    timeout_s=12.5,
    max_attempts=7,
    backoff_s=0.25,
    backoff_max_s=30.0,
    required_labels={"os": "windows", "site": "sp"},
    max_workers=4,
)


def queue(topic: str = TOPIC, **changes: Any) -> QueueRecord:
    base, _, kind, _ = topic.split(".")
    return replace(QueueRecord(topic, base, kind, WorkSettings(), discovered_at=T0), **changes)


def farm(farm_id: str = "farm-1", **changes: Any) -> FarmRecord:
    record = FarmRecord(farm_id, f"Farm {farm_id}", {"os": "linux"}, 4, 2.5, T0, T0 + timedelta(seconds=1))
    return replace(record, **changes)


def task(task_id: str = "task-1", offsets: range = range(3), **changes: Any) -> TaskRecord:
    messages = tuple(TaskMessage(0, o, f"cpf-{o}".encode(), 1) for o in offsets)
    return replace(TaskRecord(task_id, TOPIC, "farm-1", 0, messages, T0, T0 + timedelta(minutes=10)), **changes)


def retry(offset: int, attempts: int = 1, topic: str = TOPIC) -> RetryRecord:
    return RetryRecord(topic, 0, offset, attempts, T0 + timedelta(seconds=5 * attempts), ("exit code 3",) * attempts)


@contextmanager
def connected(url: str) -> Iterator[Connection]:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


def revision(url: str) -> str | None:
    with connected(url) as conn:
        return MigrationContext.configure(conn).get_current_revision()


# -- schema --------------------------------------------------------------------------------------


def test_open_migrates_an_empty_database_to_the_newest_revision(store_url: str) -> None:
    Store.open(store_url).close()

    with connected(store_url) as conn:
        assert set(inspect(conn).get_table_names()) >= TABLES
    assert revision(store_url) == "0002"


def test_reopening_keeps_the_data_and_migrates_nothing(store_url: str) -> None:
    with Store.open(store_url) as store:
        store.put_base(BaseRecord("MULTCOB03", 8))

    with Store.open(store_url) as store:
        assert store.list_bases() == [BaseRecord("MULTCOB03", 8)]
    assert revision(store_url) == "0002"


def test_migrated_schema_matches_the_tables_the_store_uses(store: Store, store_url: str) -> None:
    with connected(store_url) as conn:
        differences = compare_metadata(MigrationContext.configure(conn), METADATA)

    assert differences == []


def migrate(url: str, direction: str, target: str) -> None:
    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    engine = create_engine(url, poolclass=NullPool)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        getattr(command, direction)(config, target)
    engine.dispose()


def test_migrations_downgrade_to_an_empty_database(store: Store, store_url: str) -> None:
    store.close()
    migrate(store_url, "downgrade", "base")

    with connected(store_url) as conn:
        assert set(inspect(conn).get_table_names()) & TABLES == set()


# -- profiles ------------------------------------------------------------------------------------


def test_profiles_append_in_order_and_insert_at_a_position(store: Store) -> None:
    first = store.add_profile(r"MULTCOB03\..*", WorkSettings())
    last = store.add_profile(r".*\.IMPORTACAO\..*", WorkSettings())
    urgent = store.add_profile(r".*\.COBSINC\..*", WorkSettings(priority=9, batch_size=1), position=0)

    assert [p.pattern for p in store.list_profiles()] == [urgent.pattern, first.pattern, last.pattern]
    assert [p.position for p in store.list_profiles()] == [0, 1, 2]


def test_a_profile_round_trips_every_setting(store: Store) -> None:
    added = store.add_profile(r"MULTCOB0[23]\..*", FULL_SETTINGS)

    assert store.list_profiles() == [added]
    assert added.settings == FULL_SETTINGS


@pytest.mark.parametrize(
    ("pattern", "position", "message"),
    [
        ("MULTCOB(03", None, "profile pattern 'MULTCOB(03' is not a valid regular expression: missing ), unterminated"),
        (".*", -1, "profile position -1 is negative; give 0 or more"),
    ],
)
def test_an_invalid_profile_is_refused(store: Store, pattern: str, position: int | None, message: str) -> None:
    with pytest.raises(InvalidProfile, match=re.escape(message)):
        store.add_profile(pattern, WorkSettings(), position)

    assert store.list_profiles() == []


def test_removing_a_profile_keeps_the_queues_it_configured(store: Store) -> None:
    profile = store.add_profile(".*", FULL_SETTINGS)
    store.add_queue(queue(settings=FULL_SETTINGS, profile_id=profile.id))

    store.remove_profile(profile.id)

    assert store.list_profiles() == []
    assert store.get_queue(TOPIC) == queue(settings=FULL_SETTINGS, profile_id=None)


def test_removing_an_unknown_profile_raises(store: Store) -> None:
    with pytest.raises(ProfileNotFound, match="profile 42 does not exist"):
        store.remove_profile(42)


# -- queues --------------------------------------------------------------------------------------


def test_a_queue_round_trips_in_utc(store: Store) -> None:
    profile = store.add_profile(".*", FULL_SETTINGS)
    record = queue(settings=FULL_SETTINGS, paused=True, profile_id=profile.id)

    store.add_queue(record)

    got = store.get_queue(TOPIC)
    assert got == record
    assert got.discovered_at is not None
    assert got.discovered_at.utcoffset() == timedelta(0)


def test_adding_an_existing_queue_returns_it_unchanged(store: Store) -> None:
    original = store.add_queue(queue())

    again = store.add_queue(queue(settings=FULL_SETTINGS, paused=True))

    assert again == original
    assert store.list_queues() == [original]


def test_a_new_queue_without_discovery_time_is_stamped_now(store: Store) -> None:
    before = datetime.now(UTC)

    record = store.add_queue(queue(discovered_at=None))

    assert record.discovered_at is not None
    assert before <= record.discovered_at <= datetime.now(UTC)
    assert store.get_queue(TOPIC) == record


def test_updating_a_queue_pauses_it_and_replaces_its_settings(store: Store) -> None:
    store.add_queue(queue())

    paused = store.update_queue(TOPIC, paused=True)
    changed = store.update_queue(TOPIC, settings=FULL_SETTINGS)

    assert paused == queue(paused=True)
    assert changed == queue(paused=True, settings=FULL_SETTINGS)
    assert store.get_queue(TOPIC) == changed


def test_queues_are_listed_by_topic(store: Store) -> None:
    topics = ["MULTCOB03.9.COBSINC.SYNC", "MULTCOB02.1.IMPORTACAO.CARGA", TOPIC]
    for topic in topics:
        store.add_queue(queue(topic))

    assert [q.topic for q in store.list_queues()] == sorted(topics)


def test_an_unknown_queue_raises(store: Store) -> None:
    with pytest.raises(QueueNotFound, match=r"queue 'NOPE\.1\.X\.Y' does not exist"):
        store.get_queue("NOPE.1.X.Y")
    with pytest.raises(QueueNotFound, match=r"queue 'NOPE\.1\.X\.Y' does not exist"):
        store.update_queue("NOPE.1.X.Y", paused=True)


# -- bases and windows ---------------------------------------------------------------------------


def test_putting_a_base_creates_then_replaces_it(store: Store) -> None:
    store.put_base(BaseRecord("MULTCOB03", 8))
    store.put_base(BaseRecord("MULTCOB02", 2))

    store.put_base(BaseRecord("MULTCOB03", 6, min_workers=2, paused=True))

    assert store.get_base("MULTCOB03") == BaseRecord("MULTCOB03", 6, 2, True)
    assert store.list_bases() == [BaseRecord("MULTCOB02", 2), BaseRecord("MULTCOB03", 6, 2, True)]


def test_an_unknown_base_raises(store: Store) -> None:
    with pytest.raises(BaseNotFound, match="base 'MULTCOB99' does not exist"):
        store.get_base("MULTCOB99")


def test_windows_get_ids_and_round_trip(store: Store) -> None:
    store.put_base(BaseRecord("MULTCOB03", 8))
    store.put_base(BaseRecord("MULTCOB02", 8))

    business = store.add_window(WindowRecord(0, "MULTCOB03", frozenset({0, 1, 2, 3, 4}), "08:00", "18:00", 4))
    night = store.add_window(WindowRecord(0, "MULTCOB03", frozenset({4}), "22:00", "06:00", 0))
    other = store.add_window(WindowRecord(0, "MULTCOB02", frozenset(range(7)), "00:00", "24:00", 1))

    assert len({business.id, night.id, other.id}) == 3
    assert business == WindowRecord(business.id, "MULTCOB03", frozenset({0, 1, 2, 3, 4}), "08:00", "18:00", 4)
    assert store.list_windows("MULTCOB03") == [business, night]
    assert store.list_windows() == [other, business, night]


def test_a_window_of_an_unknown_base_is_refused(store: Store) -> None:
    with pytest.raises(BaseNotFound, match="base 'MULTCOB99' does not exist"):
        store.add_window(WindowRecord(0, "MULTCOB99", frozenset({0}), "08:00", "18:00", 4))

    assert store.list_windows() == []


def test_an_invalid_window_is_refused_and_nothing_stored(store: Store) -> None:
    store.put_base(BaseRecord("MULTCOB03", 8))

    with pytest.raises(InvalidWindow, match="end equals start"):
        store.add_window(WindowRecord(0, "MULTCOB03", frozenset({0}), "08:00", "08:00", 4))

    assert store.list_windows() == []


def test_removing_windows(store: Store) -> None:
    store.put_base(BaseRecord("MULTCOB03", 8))
    kept = store.add_window(WindowRecord(0, "MULTCOB03", frozenset({0}), "08:00", "18:00", 4))
    removed = store.add_window(WindowRecord(0, "MULTCOB03", frozenset({1}), "08:00", "18:00", 4))

    store.remove_window(removed.id)

    assert store.list_windows() == [kept]
    with pytest.raises(WindowNotFound, match=f"window {removed.id} does not exist"):
        store.remove_window(removed.id)


# -- farms and slots -----------------------------------------------------------------------------


def test_putting_a_farm_creates_then_replaces_it(store: Store) -> None:
    store.put_farm(farm("farm-2"))
    store.put_farm(farm("farm-1"))

    store.put_farm(farm("farm-1", labels={"os": "windows", "local-ana": "1"}, slots=32))

    assert store.get_farm("farm-1") == farm("farm-1", labels={"os": "windows", "local-ana": "1"}, slots=32)
    assert [f.id for f in store.list_farms()] == ["farm-1", "farm-2"]
    assert store.get_farm("farm-2").registered_at.utcoffset() == timedelta(0)


def test_an_unknown_farm_raises(store: Store) -> None:
    with pytest.raises(FarmNotFound, match="farm 'farm-9' does not exist"):
        store.get_farm("farm-9")
    with pytest.raises(FarmNotFound, match="farm 'farm-9' is not registered"):
        store.record_heartbeat("farm-9", T0, [])


def test_a_heartbeat_moves_the_last_heartbeat_and_replaces_the_slots(store: Store) -> None:
    store.put_farm(farm("farm-1"))
    store.put_farm(farm("farm-2"))
    store.record_heartbeat("farm-2", T0, [SlotRecord("farm-2", 0, "idle")])
    store.record_heartbeat("farm-1", T0, [SlotRecord("farm-1", i, "idle") for i in range(4)])
    busy = SlotRecord("farm-1", 1, "busy", "task-1", 4242, 10, 500, 3 * 2**30)
    later = T0 + timedelta(seconds=7)

    store.record_heartbeat("farm-1", later, [SlotRecord("farm-1", 0, "idle"), busy])

    assert store.get_farm("farm-1").last_heartbeat_at == later
    assert store.list_slots("farm-1") == [SlotRecord("farm-1", 0, "idle"), busy]
    assert store.list_slots() == [SlotRecord("farm-1", 0, "idle"), busy, SlotRecord("farm-2", 0, "idle")]


def test_a_heartbeat_with_another_farms_slot_changes_nothing(store: Store) -> None:
    store.put_farm(farm("farm-1"))

    with pytest.raises(InvalidRecord, match="heartbeat of farm 'farm-1' describes slots of farm\\(s\\) farm-2"):
        store.record_heartbeat("farm-1", T0 + timedelta(hours=1), [SlotRecord("farm-2", 0, "idle")])

    assert store.get_farm("farm-1") == farm("farm-1")
    assert store.list_slots() == []


# -- tasks, ledgers, retries ---------------------------------------------------------------------


def test_a_task_round_trips_its_messages_and_times(store: Store) -> None:
    placed: list[tuple[int, bytes | None]] = [(0, b"12345678909"), (3, None), (3, b""), (1, bytes(range(256)))]
    messages = tuple(TaskMessage(p, 10**12 + o, key, o + 1) for o, (p, key) in enumerate(placed))
    record = task(messages=messages)

    store.add_task(record)

    got = store.active_tasks()
    assert got == [record]
    assert got[0].leased_at.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "written",
    [
        [[0, o, f"cpf-{o}".encode().hex(), 1] for o in range(3)],  # a list per message
        {"partitions": [0] * 3, "offsets": [0, 1, 2], "keys": [f"cpf-{o}".encode().hex() for o in range(3)],
         "attempts": [1] * 3},  # a JSON list per field
    ],
)  # fmt: skip
def test_a_task_stored_by_an_earlier_version_still_loads(store: Store, store_url: str, written: object) -> None:
    store.add_task(task("task-1"))
    with connected(store_url) as conn:
        conn.execute(update(TASKS).values(messages=written, packed=None))
        conn.commit()

    assert store.active_tasks() == [task("task-1")]


def test_tasks_leased_before_the_packed_form_survive_the_upgrade(store_url: str) -> None:
    Store.open(store_url).close()
    migrate(store_url, "downgrade", "0001")
    leased = task("task-1")
    with connected(store_url) as conn:  # a row as that version wrote it
        conn.execute(
            insert(TASKS).values(
                id=leased.id, topic=leased.topic, farm_id=leased.farm_id, slot=leased.slot,
                messages=[[0, o, f"cpf-{o}".encode().hex(), 1] for o in range(3)],
                leased_at=leased.leased_at, deadline_at=leased.deadline_at,
            )
        )  # fmt: skip
        conn.commit()

    with Store.open(store_url) as store:
        assert store.active_tasks() == [task("task-1")]
    assert revision(store_url) == "0002"


def test_a_task_id_is_taken_once(store: Store) -> None:
    store.add_task(task("task-1"))

    with pytest.raises(InvalidRecord, match="state store refused the write"):
        store.add_task(task("task-1", range(5, 6)))

    assert store.active_tasks() == [task("task-1")]


def test_settling_lands_every_part_together(store: Store) -> None:
    store.add_task(task("task-1"))
    store.add_task(task("task-2", range(3, 5)))
    store.settle(retries=[retry(1), retry(2)])
    ledger = LedgerRecord(TOPIC, 0, LedgerState(1, ((3, 5), (7, 8))))

    store.settle(
        finished_tasks=["task-1", "task-unknown"],
        ledgers=[ledger],
        retries=[retry(4, attempts=2)],
        cleared_retries=[(TOPIC, 0, 1), (TOPIC, 0, 99)],
    )

    assert store.active_tasks() == [task("task-2", range(3, 5))]
    assert store.load_ledgers() == [ledger]
    assert store.load_retries() == [retry(2), retry(4, attempts=2)]


def test_settling_replaces_ledgers_and_retries_of_the_same_place(store: Store) -> None:
    other = LedgerRecord("MULTCOB02.1.IMPORTACAO.CARGA", 2, LedgerState(0))
    store.settle(ledgers=[LedgerRecord(TOPIC, 0, LedgerState(1, ((3, 5),))), other], retries=[retry(1)])

    store.settle(ledgers=[LedgerRecord(TOPIC, 0, LedgerState(6))], retries=[retry(1, attempts=2)])

    assert store.load_ledgers() == [other, LedgerRecord(TOPIC, 0, LedgerState(6))]
    assert store.load_retries() == [retry(1, attempts=2)]


def test_a_refused_row_rolls_the_whole_settle_back(store: Store) -> None:
    store.add_task(task("task-1"))
    ledger = LedgerRecord(TOPIC, 0, LedgerState(0, ((1, 2),)))
    store.settle(ledgers=[ledger], retries=[retry(1)])

    with pytest.raises(InvalidRecord, match="state store refused the write"):
        store.settle(
            finished_tasks=["task-1"],
            ledgers=[LedgerRecord(TOPIC, 0, LedgerState(3))],
            retries=[retry(2), retry(-1)],  # a negative offset breaks the table's CHECK constraint
            cleared_retries=[(TOPIC, 0, 1)],
        )

    assert store.active_tasks() == [task("task-1")]
    assert store.load_ledgers() == [ledger]
    assert store.load_retries() == [retry(1)]


def test_a_naive_datetime_is_refused(store: Store) -> None:
    with pytest.raises(InvalidRecord, match="is naive"):
        store.add_task(task(leased_at=datetime(2025, 3, 4, 10, 0)))

    assert store.active_tasks() == []


# -- audit log -----------------------------------------------------------------------------------


def test_audit_entries_page_newest_first(store: Store) -> None:
    entries = [store.audit("admin", "queue.update", TOPIC, {"priority": n}) for n in range(5)]

    first_page = store.list_audit(limit=2)
    second_page = store.list_audit(limit=2, before_id=first_page[-1].id)
    last_page = store.list_audit(limit=2, before_id=second_page[-1].id)

    assert first_page == [entries[4], entries[3]]
    assert second_page == [entries[2], entries[1]]
    assert last_page == [entries[0]]
    assert store.list_audit(before_id=entries[0].id) == []


def test_an_audit_entry_round_trips(store: Store) -> None:
    before = datetime.now(UTC)

    entry = store.audit("ana", "window.add", "MULTCOB03", {"weekdays": [0, 1], "start": "08:00", "max": 4})

    assert store.list_audit() == [entry]
    assert entry.details == {"weekdays": [0, 1], "start": "08:00", "max": 4}
    assert before <= entry.at <= datetime.now(UTC)
    assert entry.at.utcoffset() == timedelta(0)


# -- concurrency and failures --------------------------------------------------------------------


def test_concurrent_writers_all_land(store_url: str) -> None:
    errors: list[BaseException] = []

    def write(store: Store, worker: int) -> None:
        try:
            for n in range(20):
                store.add_queue(queue(f"MULTCOB{worker:02d}.{n}.IMPORTACAO.CARGA"))
                store.add_profile(f"P{worker}-{n}", WorkSettings())
        except BaseException as exc:  # reported below: a thread's exception is otherwise lost
            errors.append(exc)

    with Store.open(store_url) as store, Store.open(store_url) as other:
        threads = [threading.Thread(target=write, args=(s, w)) for w, s in enumerate([store, other, store, other])]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert errors == []
        assert len(store.list_queues()) == 80
        assert sorted(p.position for p in store.list_profiles()) == list(range(80))


def test_an_unreachable_postgresql_fails_quickly() -> None:
    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test"
    started = time.monotonic()

    with pytest.raises(StoreUnavailable, match=r"state store postgresql\+psycopg://postgres@127\.0\.0\.1:\d+/test is"):
        Store.open(url)

    assert time.monotonic() - started < 10


def test_an_unusable_sqlite_path_fails(tmp_path: Path) -> None:
    (tmp_path / "plain-file").write_text("not a folder")

    with pytest.raises(StoreUnavailable, match="cannot create its folder"):
        Store.open(f"sqlite:///{tmp_path / 'plain-file' / 'state.db'}")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("not a url", "state store URL 'not a url' is not a SQLAlchemy URL such as sqlite:///path/state.db"),
        ("postgres://host/db", "state store URL postgres://host/db: unknown database 'postgres'; use sqlite:///"),
    ],
)
def test_an_invalid_url_is_refused(url: str, message: str) -> None:
    with pytest.raises(InvalidStoreUrl, match=re.escape(message)):
        Store(url)
