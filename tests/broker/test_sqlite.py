"""The broker contract against the embedded SQLite log, plus what only that adapter promises."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.broker.contract import BrokerContract
from xtreaming.broker import Record, open_broker
from xtreaming.broker.sqlite import SqliteBroker
from xtreaming.errors import InvalidBrokerUrl


@pytest.mark.parametrize("broker_url", ["sqlite"], indirect=True)
class TestSqliteBroker(BrokerContract):
    """Every test of the contract, each on a fresh SQLite file in ``tmp_path``."""


def test_open_broker_reads_an_absolute_path_and_the_synchronous_option(tmp_path: Path) -> None:
    broker = open_broker(f"sqlite:///{tmp_path / 'sub' / 'log.db'}?synchronous=full")
    broker.create_topic("T", 1)
    broker.append("T", [Record(None, b"v")])
    broker.close()

    assert isinstance(broker, SqliteBroker)
    assert broker.path == tmp_path / "sub" / "log.db"
    assert broker.path.exists()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgres://host/db", "unknown scheme 'postgres'"),
        ("sqlite://host/log.db", "expected sqlite:///path/to/log.db"),
        ("sqlite:///log.db?fsync=1", "unknown option 'fsync'"),
        ("sqlite:///log.db?synchronous=sometimes", "synchronous='sometimes': expected one of OFF, NORMAL, FULL, EXTRA"),
    ],
)
def test_open_broker_refuses_a_malformed_url(url: str, message: str) -> None:
    with pytest.raises(InvalidBrokerUrl, match=message):
        open_broker(url)
