"""Fixtures shared across packages: the Kafka broker (tansu) the Kafka tests run against."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

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
