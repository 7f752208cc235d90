"""Fixtures for the dead-letter tests: a log of the test's own (embedded, then Kafka: a tansu broker) and the
site's dead letters on a fresh state store (SQLite, then PostgreSQL: ``store_url``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from xtreaming.broker import Broker, open_broker
from xtreaming.coordinator.dead_letters import DeadLetters
from xtreaming.coordinator.options import CoordinatorOptions
from xtreaming.coordinator.store import Store


@pytest.fixture(params=["sqlite", pytest.param("kafka", marks=pytest.mark.kafka)])
def broker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Broker]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'log.db'}"
    else:  # a broker of the test's own: the tests use fixed topic names
        url = request.getfixturevalue("fresh_tansu").url
    log = open_broker(url)
    yield log
    log.close()


@pytest.fixture
def letters(store: Store, broker: Broker) -> DeadLetters:
    return DeadLetters(store, broker, CoordinatorOptions())
