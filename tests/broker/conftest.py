"""Fixtures for the broker contract: one log per test, opened by URL so subprocesses can open it too."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.broker.contract import BrokerFactory
from xtreaming.broker import Broker


def _sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'log.db'}"


#: Adapter name → URL of a log this test owns. The Kafka adapter adds its entry here (a URL to a
#: broker it starts or reaches, skipping on a laptop and failing under CI=true when it cannot), and
#: a test module that runs the contract with ``indirect=True`` on that name.
ADAPTER_URLS: dict[str, Callable[[Path], str]] = {"sqlite": _sqlite_url}


@pytest.fixture
def broker_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a fresh log; the adapter name comes from ``parametrize(..., indirect=True)``."""
    adapter: str = request.param
    return ADAPTER_URLS[adapter](tmp_path)


@pytest.fixture
def broker_factory(broker_url: str) -> Iterator[BrokerFactory]:
    factory = BrokerFactory(broker_url)
    yield factory
    factory.close_all()


@pytest.fixture
def broker(broker_factory: BrokerFactory) -> Broker:
    return broker_factory()


@pytest.fixture
def prefix() -> str:
    """A name prefix unique to the test, so that tests may share one Kafka cluster."""
    return f"CONTRACT_{uuid.uuid4().hex[:12].upper()}"
