"""Fixtures shared across packages: the Kafka broker (tansu), and a real coordinator over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.coordinator.server import RunningCoordinator
from tests.services import Tansu, running_tansu


@pytest.fixture(scope="session")
def tansu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tansu]:
    """One tansu broker for the session: tests on it use names of their own (the contract's ``prefix``)."""
    with running_tansu(tmp_path_factory.mktemp("tansu")) as broker:
        yield broker


@pytest.fixture
def fresh_tansu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tansu]:
    """A tansu broker of this test's own (it starts in milliseconds): for tests with fixed topic names,
    or that stop and resume the broker."""
    with running_tansu(tmp_path_factory.mktemp("tansu")) as broker:
        yield broker


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningCoordinator]:
    """A coordinator on the embedded log and state under ``tmp_path``, without tokens."""
    running = RunningCoordinator(tmp_path).start()
    yield running
    running.stop()


@pytest.fixture
def api(server: RunningCoordinator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client
