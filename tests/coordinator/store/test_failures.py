"""The state store when the database fails or refuses: every driver error leaves as ours with its cause
(a value the column cannot hold → InvalidRecord; a disk refusing writes, a killed backend →
StoreUnavailable), the transaction changes nothing, and the next call works on a sound connection."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.pool import NullPool

from tests.broker.refused_writes import writes_refused
from tests.coordinator.store.builders import task
from tests.services import KILLED_BACKEND_WORDS, fresh_postgres_schema
from xtreaming.coordinator.records import TaskRecord
from xtreaming.coordinator.store import Store
from xtreaming.errors import InvalidRecord, StoreUnavailable


def add_in_one_transaction(store: Store, first: TaskRecord, then: TaskRecord, between: Callable[[], object]) -> None:
    """Store ``first``, call ``between``, store ``then``: one transaction."""
    with store.transaction():
        store.add_task(first)
        between()
        store.add_task(then)


def test_a_slot_no_64_bit_integer_holds_is_refused_as_invalid_record_and_nothing_is_stored(store: Store) -> None:
    store.add_task(task("kept"))

    for slot in (2**63, -(2**63) - 1):
        with pytest.raises(InvalidRecord, match="state store refused"):
            store.add_tasks([task("fits", slot=1), task("too-large", slot=slot)])

    assert [t.id for t in store.active_tasks()] == ["kept"]
    store.add_task(task("next", slot=1))
    assert [t.id for t in store.active_tasks()] == ["kept", "next"]


@pytest.mark.postgres
def test_postgresql_refuses_a_slot_past_its_32_bit_column_as_invalid_record_inside_a_transaction() -> None:
    with fresh_postgres_schema() as url, Store.open(url) as store:
        with pytest.raises(InvalidRecord, match="integer out of range"):
            add_in_one_transaction(store, task("fits"), task("too-large", slot=2**31), lambda: None)

        assert store.active_tasks() == []
        store.add_task(task("next", slot=2**31 - 1))
        assert [(t.id, t.slot) for t in store.active_tasks()] == [("next", 2**31 - 1)]


def test_a_disk_refusing_the_stores_writes_is_store_unavailable_and_the_transaction_changes_nothing(
    tmp_path: Path,
) -> None:
    with Store.open(f"sqlite:///{tmp_path / 'state.db'}") as store:
        store.add_task(task("kept"))

        with writes_refused(), pytest.raises(StoreUnavailable, match="disk I/O error") as refused:
            add_in_one_transaction(store, task("a"), task("b"), lambda: None)

        assert refused.value.__cause__ is not None
        assert [t.id for t in store.active_tasks()] == ["kept"]
        store.add_task(task("a"))  # the disk takes writes again, and so does the store
        assert [t.id for t in store.active_tasks()] == ["a", "kept"]


@pytest.mark.postgres
def test_a_backend_killed_idle_or_mid_transaction_is_replaced_and_the_next_call_works() -> None:
    name = f"xtreaming-test-{uuid.uuid4().hex[:12]}"
    with fresh_postgres_schema() as url:
        named = make_url(url).update_query_dict({"application_name": name}).render_as_string(hide_password=False)
        admin = create_engine(url, poolclass=NullPool)
        with Store.open(named) as store, admin.connect().execution_options(isolation_level="AUTOCOMMIT") as killer:
            store.add_task(task("kept"))

            def kill_the_stores_backends() -> None:
                killer.execute(
                    text("SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity WHERE application_name = :n"),
                    {"n": name},
                )

            kill_the_stores_backends()  # the connection left idle in the pool dies: the next call replaces it
            after_idle_kill = [t.id for t in store.active_tasks()]
            with pytest.raises(StoreUnavailable, match=KILLED_BACKEND_WORDS) as killed:
                add_in_one_transaction(store, task("a"), task("b"), kill_the_stores_backends)
            after_kill_mid_transaction = [t.id for t in store.active_tasks()]
            store.add_task(task("next"))

            assert after_idle_kill == ["kept"]
            assert killed.value.__cause__ is not None
            assert after_kill_mid_transaction == ["kept"]
            assert [t.id for t in store.active_tasks()] == ["kept", "next"]
        admin.dispose()
