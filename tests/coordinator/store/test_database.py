"""The state store's database: concurrent writers, an unreachable or unusable database, invalid URLs."""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from tests.coordinator.store.builders import queue
from xtreaming.coordinator.records import WorkSettings
from xtreaming.coordinator.store import Store, database
from xtreaming.errors import InvalidStoreUrl, StoreUnavailable
from xtreaming.localhost import free_port


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


def test_a_sqlite_write_kept_out_past_the_busy_timeout_fails_as_unavailable_and_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process holds the file's write lock: the store's ``BEGIN IMMEDIATE`` waits its busy timeout, then
    fails as the store's own error (the driver's "database is locked" as its reason), the write made nowhere."""
    monkeypatch.setattr(database, "BUSY_TIMEOUT_S", 0.2)
    path = tmp_path / "state.db"
    with Store.open(f"sqlite:///{path}") as store:
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(StoreUnavailable, match="database is locked"):
                store.add_queue(queue("MULTCOB01.1.IMPORTACAO.CARGA"))
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert store.list_queues() == []
        store.add_queue(queue("MULTCOB01.1.IMPORTACAO.CARGA"))  # the lock gone, the same write lands
        assert [q.topic for q in store.list_queues()] == ["MULTCOB01.1.IMPORTACAO.CARGA"]
