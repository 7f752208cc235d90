"""Fixtures for the broker contract: one log per test, opened by URL so subprocesses can open it too."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.broker.contract import BrokerFactory
from tests.services import Tansu
from xtreaming.broker import Broker


def _sqlite_url(request: pytest.FixtureRequest) -> str:
    tmp_path: Path = request.getfixturevalue("tmp_path")
    return f"sqlite:///{tmp_path / 'log.db'}"


def _kafka_url(request: pytest.FixtureRequest) -> str:
    """The session's tansu broker (started on first use; skipped on a laptop, failing under CI=true
    when it cannot start): tests keep apart through the ``prefix`` of their topic and group names."""
    tansu: Tansu = request.getfixturevalue("tansu")
    return tansu.url


#: Adapter name → URL of a log this test owns, given the test's request (for ``tmp_path`` or a
#: server fixture). A test module runs the contract with ``parametrize("broker_url", [name], indirect=True)``.
ADAPTER_URLS: dict[str, Callable[[pytest.FixtureRequest], str]] = {"sqlite": _sqlite_url, "kafka": _kafka_url}


@pytest.fixture
def broker_url(request: pytest.FixtureRequest) -> str:
    """The URL of a fresh log; the adapter name comes from ``parametrize(..., indirect=True)``."""
    adapter: str = request.param
    return ADAPTER_URLS[adapter](request)


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
