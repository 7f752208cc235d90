"""The broker contract against the embedded SQLite log, plus what only that adapter promises."""

from __future__ import annotations

import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.broker.contract import BrokerContract
from xtreaming.broker import Record, open_broker, partition_for
from xtreaming.broker.sqlite import COMMIT_ASIDE_FROM, FEW_TOPICS, SqliteBroker
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


def test_a_log_without_partition_heads_gets_them_from_its_records(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    broker = SqliteBroker(path)
    broker.create_topic("T", 3)
    broker.append("T", [Record(b"k%d" % i, b"v") for i in range(20)])
    expected = broker.end_offsets("T")
    broker.close()
    with sqlite3.connect(path) as con:  # as a log written before the table existed
        con.execute("DELETE FROM heads")

    reopened = SqliteBroker(path)

    assert reopened.end_offsets("T") == expected
    assert reopened.append("T", [Record(b"k0", b"next")])[0].offset == expected[partition_for(b"k0", 3)]
    reopened.close()


def test_appends_begun_from_several_threads_land_whole_with_their_own_offsets(tmp_path: Path) -> None:
    log = SqliteBroker(tmp_path / "log.db")
    log.create_topic("T", 3)
    other = SqliteBroker(tmp_path / "log.db")  # another connection, as another process would read

    def appender(worker: int) -> list[tuple[int, int]]:
        positions: list[tuple[int, int]] = []
        for batch in range(10):
            size = COMMIT_ASIDE_FROM if batch % 2 else 7  # committed on the committing thread, or at once
            records = [Record(b"%d-%d-%d" % (worker, batch, i), b"%d" % i) for i in range(size)]
            done = log.begin_append("T", records)
            positions += log.append("T", records[:1])  # while that commit may still be going on
            positions += done()
        return positions

    with ThreadPoolExecutor(4) as pool:
        positions = [p for found in pool.map(appender, range(4)) for p in found]

    assert len(positions) == len(set(positions)) == 4 * (5 * (COMMIT_ASIDE_FROM + 1) + 5 * (7 + 1))
    stored = {(m.partition, m.offset) for p in range(3) for m in other.read("T", p, 0, max_records=100_000)}
    assert stored == set(positions)
    log.close()
    other.close()


def test_ends_of_a_few_topics_and_of_many_agree_whatever_was_asked_before_and_whoever_appended(
    tmp_path: Path,
) -> None:
    broker = SqliteBroker(tmp_path / "log.db")
    other = SqliteBroker(tmp_path / "log.db")  # another process's appends
    topics = [f"T.{i}" for i in range(FEW_TOPICS + 8)]
    for number, topic in enumerate(topics):
        broker.create_topic(topic, 2)
        broker.append(topic, [Record(None, b"v")] * number)
    few, last = topics[:2], topics[-1]

    assert broker.end_offsets_of(few) == {"T.0": {0: 0, 1: 0}, "T.1": {0: 1, 1: 0}}  # read a topic at a time
    every = broker.end_offsets_of(topics)  # read whole, after a few
    assert every == {topic: broker.end_offsets(topic) for topic in topics}
    assert sum(every[last].values()) == len(topics) - 1
    other.append(last, [Record(None, b"v")] * 3)
    assert sum(broker.end_offsets_of([last])[last].values()) == len(topics) + 2  # a few, after all and an append
    broker.append("T.0", [Record(None, b"v")])
    assert broker.end_offsets_of(topics) == {topic: broker.end_offsets(topic) for topic in topics}
    assert sum(broker.end_offsets_of(few)["T.0"].values()) == 1
    other.close()
    broker.close()


@pytest.mark.parametrize("count", [1, 255, 256, 257, 700])
def test_records_appended_in_any_number_land_in_order_with_their_offsets(tmp_path: Path, count: int) -> None:
    log = SqliteBroker(tmp_path / "log.db")
    log.create_topic("T", 1)
    log.append("T", [Record(b"first", b"0")])
    records = [Record(f"{n:011d}".encode(), f"value {n}".encode(), (("n", b"%d" % n),) * (n % 2)) for n in range(count)]

    positions = log.append("T", records)

    read = log.read("T", 0, 0, max_records=count + 1)
    assert [(m.offset, m.key, m.value, m.headers) for m in read[1:]] == [
        (n + 1, r.key, r.value, r.headers) for n, r in enumerate(records)
    ]
    assert [p.offset for p in positions] == list(range(1, count + 1))
    log.close()
