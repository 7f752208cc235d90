"""Fixtures for the coordinator: a fresh state store per test, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.coordinator.test_service import Site
from tests.services import fresh_postgres_schema
from xtreaming.coordinator.store import Store


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database this test owns: a SQLite file in a folder not yet made, or a new schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state' / 'state.db'}"
    else:
        with fresh_postgres_schema() as url:
            yield url


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    with Store.open(store_url) as store:
        yield store


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    """A coordinator over the embedded log and SQLite state (a module needing another site defines its own)."""
    site = Site(f"sqlite:///{tmp_path}/log.db", f"sqlite:///{tmp_path}/state.db")
    yield site
    site.store.close()
    site.broker.close()
