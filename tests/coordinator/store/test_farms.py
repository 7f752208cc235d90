"""Farms in the state store, on SQLite and PostgreSQL: registration and heartbeats."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.coordinator.store.builders import T0, farm
from xtreaming.coordinator.store import Store
from xtreaming.errors import FarmNotFound


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
        store.record_heartbeat("farm-9", T0)


def test_a_heartbeat_moves_only_its_farms_last_heartbeat(store: Store) -> None:
    store.put_farm(farm("farm-1"))
    store.put_farm(farm("farm-2"))
    later = T0 + timedelta(seconds=7)

    store.record_heartbeat("farm-1", later)

    assert store.get_farm("farm-1") == farm("farm-1", last_heartbeat_at=later)
    assert store.get_farm("farm-2") == farm("farm-2")
