"""The embedded log when the disk refuses its writes: each call fails with BrokerUnavailable, SQLite's
error as its cause (never hidden behind a ROLLBACK that fails in turn), a batch lands whole or not at all,
reads go on, and the log takes writes again once the disk does."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.broker.refused_writes import writes_refused
from xtreaming.broker import Broker, Record, open_broker
from xtreaming.broker.sqlite import COMMIT_ASIDE_FROM
from xtreaming.errors import BrokerUnavailable

TOPIC = "MULTCOB03.1189.IMPORTACAO.CARGA"
WRITTEN = 10


def records(count: int, first: int = 0) -> list[Record]:
    return [Record(b"%011d" % i, b"<cliente n='%d'/>" % i) for i in range(first, first + count)]


@pytest.fixture
def log(tmp_path: Path) -> Iterator[Broker]:
    broker = open_broker(f"sqlite:///{tmp_path / 'log.db'}")
    broker.create_topic(TOPIC, 1)
    broker.append(TOPIC, records(WRITTEN))
    yield broker
    broker.close()


def append(log: Broker, count: int) -> None:
    log.append(TOPIC, records(count, WRITTEN))


def begin_append(log: Broker, count: int) -> None:
    log.begin_append(TOPIC, records(count, WRITTEN))()


@pytest.mark.parametrize(
    ("write", "count"),
    [(append, 5), (begin_append, 5), (begin_append, COMMIT_ASIDE_FROM + 5)],
    ids=["append", "begin_append, committed at once", "begin_append, committed aside"],
)
def test_an_append_the_disk_refuses_is_broker_unavailable_caused_by_sqlites_error_and_writes_nothing(
    log: Broker, write: Callable[[Broker, int], None], count: int
) -> None:
    with writes_refused(), pytest.raises(BrokerUnavailable) as refused:
        write(log, count)

    assert "disk I/O error" in str(refused.value), refused.value
    assert isinstance(refused.value.__cause__, sqlite3.OperationalError)
    assert "disk I/O error" in str(refused.value.__cause__)
    assert log.end_offsets(TOPIC) == {0: WRITTEN}
    assert [m.offset for m in log.read(TOPIC, 0, 0)] == list(range(WRITTEN))
    again = log.append(TOPIC, records(count, WRITTEN))  # the disk takes writes again
    assert [p.offset for p in again] == list(range(WRITTEN, WRITTEN + count))
    assert len(log.read(TOPIC, 0, 0, max_records=10_000)) == WRITTEN + count


def test_every_write_the_disk_refuses_is_broker_unavailable_and_reads_go_on(log: Broker) -> None:
    with writes_refused():
        failures = []
        for write in (
            lambda: log.create_topic(f"{TOPIC}.ACK", 1),
            lambda: log.commit("xtreaming", TOPIC, {0: 5}),
            lambda: log.append(TOPIC, records(1, WRITTEN)),
        ):
            with pytest.raises(BrokerUnavailable) as refused:
                write()
            failures.append(refused.value)
        read = [m.offset for m in log.read(TOPIC, 0, 0)]

    assert all(isinstance(f.__cause__, sqlite3.Error) for f in failures), failures
    assert read == list(range(WRITTEN))
    assert log.committed("xtreaming", TOPIC) == {}
    assert f"{TOPIC}.ACK" not in log.list_topics()
    log.commit("xtreaming", TOPIC, {0: 5})
    assert log.committed("xtreaming", TOPIC) == {0: 5}
