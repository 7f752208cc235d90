"""Writes failing under a coordinator process, for real: the disk under its log or its state store
refusing writes (the kernel's file-size limit of the process set to 0), a PostgreSQL backend killed
in the middle of its transaction or while idle. The farm's report fails with a clear 503 and changes
nothing for good: sent again once the fault is gone, it is accepted, or answered as settled already when its
results reached the log before the fault (memory reloaded settles them from there); no message is stranded,
none is ACKed twice."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Connection, create_engine, make_url, text
from sqlalchemy.pool import NullPool

from tests.broker.refused_writes import writes_refused
from tests.e2e.coordinator_process import TOPIC, CoordinatorProcess, settled
from tests.services import KILLED_BACKEND_WORDS, Tansu, fresh_postgres_schema
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

BATCH = 500  # IMPORTACAO's batch size
MESSAGES = 2 * BATCH


def two_tasks(site: CoordinatorProcess) -> tuple[str, dict[str, Any]]:
    """Publish two tasks' worth, lease both to a two-slot farm and report the first: the ACK topic
    exists, and what the coordinator writes for the second task's report is its ACKs and its settling.
    Returns the farm and the second task."""
    site.publish(TOPIC, MESSAGES)
    farm_id = site.register("farm-a", slots=2)
    first, second = site.lease(farm_id, [0, 1])
    assert settled(site.report(farm_id, first, 0)) == [(True, BATCH)]
    return farm_id, second


def assert_nothing_stranded(site: CoordinatorProcess) -> None:
    row = site.queue(TOPIC)
    assert (row["consumed"], row["pending"], row["in_flight"]) == (MESSAGES, 0, 0), row


def assert_all_acked_once_and_settled(site: CoordinatorProcess) -> None:
    """Every message ACKed once, nothing stranded: the ACKs of a report cut short after its append, in the log
    before the store's commit failed, were settled from the log, not run again."""
    assert site.acked(TOPIC) == dict.fromkeys(range(MESSAGES), 1)
    assert_nothing_stranded(site)


@contextmanager
def named_postgres() -> Iterator[tuple[str, str, str]]:
    """A fresh schema: its URL for the test, the same with an ``application_name`` for the coordinator, and
    that name, by which the coordinator's backends are found (other tests may share the server)."""
    name = f"xtreaming-test-{uuid.uuid4().hex[:12]}"
    with fresh_postgres_schema() as url:
        named = make_url(url).update_query_dict({"application_name": name}).render_as_string(hide_password=False)
        yield url, named, name


def backends(conn: Connection, name: str, *, waiting_on_a_lock: bool = False) -> list[int]:
    query = "SELECT pid FROM pg_stat_activity WHERE application_name = :name"
    if waiting_on_a_lock:
        query += " AND wait_event_type = 'Lock'"
    return [pid for (pid,) in conn.execute(text(query), {"name": name})]


@pytest.mark.postgres
def test_a_log_refusing_writes_fails_the_report_with_503_and_its_retry_acks_every_message_once(
    tmp_path: Path,
) -> None:
    with fresh_postgres_schema() as database_url:
        site = CoordinatorProcess(tmp_path, f"sqlite:///{tmp_path}/log.db", database_url).start()
        try:
            farm_id, second = two_tasks(site)
            with writes_refused(site.pid):
                refused = [site.report(farm_id, second, 1) for _ in range(2)]  # the farm sends it again
            again = site.report(farm_id, second, 1)

            assert [r.status_code for r in refused] == [503, 503], refused[0].text
            assert "commit failed: disk I/O error" in refused[0].json()["detail"]
            assert settled(again) == [(True, BATCH)]
            assert site.acked(TOPIC) == dict.fromkeys(range(MESSAGES), 1)
            assert_nothing_stranded(site)
        finally:
            site.close()


@pytest.mark.kafka
def test_a_state_store_refusing_writes_fails_the_report_with_503_and_its_retry_finishes_every_message(
    tmp_path: Path, fresh_tansu: Tansu
) -> None:
    site = CoordinatorProcess(tmp_path, fresh_tansu.url, f"sqlite:///{tmp_path}/state.db").start()
    try:
        farm_id, second = two_tasks(site)
        with writes_refused(site.pid):
            refused = [site.report(farm_id, second, 1) for _ in range(2)]
        again = site.report(farm_id, second, 1)

        assert [r.status_code for r in refused] == [503, 503], refused[0].text
        assert "disk I/O error" in refused[0].json()["detail"]
        assert settled(again) == [(False, 0)]  # its ACKs reached the log: settled from there
        assert_all_acked_once_and_settled(site)
    finally:
        site.close()


@pytest.mark.postgres
def test_a_postgresql_backend_killed_mid_transaction_fails_the_report_with_503_and_its_retry_is_accepted(
    tmp_path: Path,
) -> None:
    with named_postgres() as (database_url, coordinators_url, name):
        site = CoordinatorProcess(tmp_path, f"sqlite:///{tmp_path}/log.db", coordinators_url).start()
        engine = create_engine(database_url, poolclass=NullPool)
        try:
            farm_id, second = two_tasks(site)
            with (
                engine.connect() as locker,
                engine.connect().execution_options(isolation_level="AUTOCOMMIT") as watcher,
                ThreadPoolExecutor(1) as reporter,
            ):
                locker.execute(text("LOCK TABLE ledger IN ACCESS EXCLUSIVE MODE"))
                reporting = reporter.submit(site.report, farm_id, second, 1)
                [pid] = wait_until(
                    lambda: backends(watcher, name, waiting_on_a_lock=True),
                    10,
                    "the coordinator's store transaction to wait for the ledger",
                )
                assert watcher.execute(text("SELECT pg_terminate_backend(:pid, 10000)"), {"pid": pid}).scalar()
                locker.rollback()  # the lock goes
                refused = reporting.result(timeout=30)
            again = site.report(farm_id, second, 1)

            assert refused.status_code == 503, refused.text
            assert re.search(KILLED_BACKEND_WORDS, refused.json()["detail"]), refused.text
            assert settled(again) == [(False, 0)]  # its ACKs reached the log: settled from there
            assert_all_acked_once_and_settled(site)
        finally:
            engine.dispose()
            site.close()


@pytest.mark.postgres
def test_postgresql_backends_killed_while_idle_are_replaced_and_the_next_request_works(tmp_path: Path) -> None:
    with named_postgres() as (database_url, coordinators_url, name):
        site = CoordinatorProcess(tmp_path, f"sqlite:///{tmp_path}/log.db", coordinators_url).start()
        engine = create_engine(database_url, poolclass=NullPool)
        try:
            farm_id, second = two_tasks(site)
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as watcher:
                idle = backends(watcher, name)
                for pid in idle:
                    watcher.execute(text("SELECT pg_terminate_backend(:pid, 10000)"), {"pid": pid})
                assert idle, "the coordinator held no connection to kill"
                answer = site.report(farm_id, second, 1)
                replaced = backends(watcher, name)

            assert settled(answer) == [(True, BATCH)]
            assert not set(replaced) & set(idle)
            assert site.acked(TOPIC) == dict.fromkeys(range(MESSAGES), 1)
            assert_nothing_stranded(site)
        finally:
            engine.dispose()
            site.close()


@pytest.mark.postgres
def test_a_coordinator_killed_once_a_reports_acks_are_in_the_log_and_before_its_commit_runs_and_acks_nothing_again(
    tmp_path: Path,
) -> None:
    """SIGKILL while a report's writes wait for a lock on the state store's ledger and its ACKs are in the log:
    the decision was made, nothing committed. Started again, the coordinator settles those messages from the log
    as it loads: the farm's retry finds the task settled, so does a second one, and nothing runs or is ACKed
    again; no message is lost or stranded."""
    with named_postgres() as (database_url, coordinators_url, _):
        site = CoordinatorProcess(tmp_path, f"sqlite:///{tmp_path}/log.db", coordinators_url).start()
        engine = create_engine(database_url, poolclass=NullPool)
        try:
            farm_id, second = two_tasks(site)
            with engine.connect() as locker, ThreadPoolExecutor(1) as reporter:
                locker.execute(text("LOCK TABLE ledger IN ACCESS EXCLUSIVE MODE"))  # the report's commit waits
                reporting = reporter.submit(site.report, farm_id, second, 1)
                wait_until(lambda: sum(site.acked(TOPIC).values()) == MESSAGES, 10, "the report's ACKs in the log")
                assert not reporting.done()  # the answer waits for the commit
                site.kill()
                with pytest.raises(httpx.TransportError):
                    reporting.result(timeout=30)
                locker.rollback()
            site.start()
            again = site.report(farm_id, second, 1)
            once_more = site.report(farm_id, second, 1)

            assert settled(again) == [(False, 0)]  # its ACKs reached the log: settled from there
            assert settled(once_more) == [(False, 0)]
            assert_all_acked_once_and_settled(site)
        finally:
            engine.dispose()
            site.close()


@pytest.mark.postgres
def test_a_coordinator_killed_with_one_group_of_reports_committing_and_more_waiting_acks_each_message_once(
    tmp_path: Path,
) -> None:
    """Reports settle in groups (``lease_groups.py``): SIGKILL while one group's commit waits on a lock, its ACKs in
    the log, and more reports wait for the next group. Every farm's retry is then answered once: the first as
    settled already (from the log), the others accepted; every message is ACKed once."""
    with named_postgres() as (database_url, coordinators_url, _):
        site = CoordinatorProcess(tmp_path, f"sqlite:///{tmp_path}/log.db", coordinators_url).start()
        engine = create_engine(database_url, poolclass=NullPool)
        try:
            site.publish(TOPIC, 4 * BATCH)
            farm_id = site.register("farm-a", slots=4)
            tasks = site.lease(farm_id, [0, 1]) + site.lease(farm_id, [2, 3])  # an answer carries 1,000 at most
            assert settled(site.report(farm_id, tasks[3], 3)) == [(True, BATCH)]  # the ACK topic exists
            with engine.connect() as locker, ThreadPoolExecutor(3) as reporter:
                locker.execute(text("LOCK TABLE ledger IN ACCESS EXCLUSIVE MODE"))  # the first group's commit waits
                first = reporter.submit(site.report, farm_id, tasks[0], 0)
                wait_until(lambda: sum(site.acked(TOPIC).values()) == 2 * BATCH, 10, "the report's ACKs in the log")
                waiting = [reporter.submit(site.report, farm_id, task, slot) for slot, task in enumerate(tasks[1:3], 1)]
                time.sleep(0.5)  # in the next group by now (were one not there yet, it fails alike and is sent again)
                site.kill()
                for cut_short in [first, *waiting]:
                    with pytest.raises(httpx.TransportError):
                        cut_short.result(timeout=30)
                locker.rollback()
            site.start()
            answers = [settled(site.report(farm_id, task, slot)) for slot, task in enumerate(tasks)]

            assert answers == [[(False, 0)], [(True, BATCH)], [(True, BATCH)], [(False, 0)]]
            assert site.acked(TOPIC) == dict.fromkeys(range(4 * BATCH), 1)
            row = site.queue(TOPIC)
            assert (row["consumed"], row["pending"], row["in_flight"]) == (4 * BATCH, 0, 0), row
        finally:
            engine.dispose()
            site.close()
