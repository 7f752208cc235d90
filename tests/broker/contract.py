"""The broker contract (``xtreaming.broker.port``), written once; each adapter's test module subclasses it.

Tests take the ``broker`` fixture (a fresh log) and ``broker_factory`` (another instance on the
same log, or its URL for subprocesses). Topic and group names start with the ``prefix`` fixture,
unique per test, so that adapters backed by a shared server can run the suite too.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO

import pytest

from xtreaming.broker import Broker, Message, Position, Record, open_broker, partition_for
from xtreaming.broker.port import record_size
from xtreaming.errors import PartitionNotFound, RecordRejected, TopicNotFound

APPENDER = Path(__file__).with_name("appender.py")


class BrokerFactory:
    """Opens brokers on one and the same log (a reopen is a new instance); closes them at teardown."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._opened: list[Broker] = []

    def __call__(self) -> Broker:
        broker = open_broker(self.url)
        self._opened.append(broker)
        return broker

    def close_all(self) -> None:
        for broker in self._opened:
            broker.close()
        self._opened.clear()


def read_all(broker: Broker, topic: str) -> dict[int, list[Message]]:
    """Every message of ``topic``, per partition, read in pages from offset 0."""
    result: dict[int, list[Message]] = {}
    for partition in broker.end_offsets(topic):
        messages: list[Message] = []
        while page := broker.read(topic, partition, messages[-1].offset + 1 if messages else 0, max_records=500):
            messages.extend(page)
        result[partition] = messages
    return result


def values_by_partition(broker: Broker, topic: str) -> dict[int, list[bytes]]:
    return {p: [m.value for m in messages] for p, messages in read_all(broker, topic).items()}


def keyed(*keys: bytes) -> list[Record]:
    """One record per key, its value naming its place in the batch."""
    return [Record(key, b"%d" % i) for i, key in enumerate(keys)]


def header(message: Message, name: str) -> str:
    return dict(message.headers)[name].decode()


@contextmanager
def spawn(*args: str, stdin: int | None = None) -> Iterator[subprocess.Popen[str]]:
    """Run ``appender.py`` with ``args``; kill it if the test leaves early, and always reap it."""
    with subprocess.Popen(
        [sys.executable, str(APPENDER), *args],
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()


def read_line(proc: subprocess.Popen[str]) -> str:
    """The child's next stdout line; a child that exits instead fails the test with its stderr."""
    stdout: IO[str] | None = proc.stdout
    assert stdout is not None
    line = stdout.readline()
    if not line:
        stderr = proc.stderr.read() if proc.stderr else ""
        pytest.fail(f"appender exited with {proc.wait()} before writing a line:\n{stderr}")
    return line.rstrip("\n")


def lone_spans(spans: list[tuple[float, float]]) -> list[int]:
    """The indexes of the time spans ``(start, end)`` that overlap no other span."""
    return [
        i
        for i, (start, end) in enumerate(spans)
        if not any(
            j != i and other_start < end and start < other_end for j, (other_start, other_end) in enumerate(spans)
        )
    ]


class BrokerContract:
    """What every ``Broker`` adapter guarantees."""

    #: Whether an append interrupted by a crash leaves all of its batch or none (the embedded log: one
    #: SQLite transaction). Kafka without transactions cannot: each partition keeps a prefix of the
    #: batch's records for it, never a gap or a duplicate, and only the batch in flight is torn
    #: (``xtreaming.broker.kafka.appender`` says why transactions are not used).
    all_or_nothing_appends: bool = True
    #: Whether offsets are dense: every offset below a partition's end holds a record (the embedded
    #: log). The port lets Kafka's skip (control records of transactions, compaction), so there the
    #: suite checks only that they strictly increase.
    dense_offsets: bool = True
    #: The largest record the adapter takes as the suite opens it (``Broker.max_record_bytes``), or None
    #: for no limit (the embedded log).
    max_record_bytes: int | None = None

    def check_offsets(self, offsets: Sequence[int], where: str, end: int | None = None) -> None:
        """What the port promises of a partition's offsets read in order: strictly increasing, below
        ``end``, and where the adapter is dense, every offset from 0 (up to ``end`` when given)."""
        assert all(a < b for a, b in itertools.pairwise(offsets)), f"{where}: offsets do not strictly increase"
        if end is not None:
            assert not offsets or offsets[-1] < end, f"{where}: offset {offsets[-1]} is not below the end {end}"
        if self.dense_offsets:
            assert list(offsets) == list(range(len(offsets) if end is None else end)), f"{where} has a gap"

    # -- topics ---------------------------------------------------------------------------------

    def test_create_topic_returns_the_partition_count(self, broker: Broker, prefix: str) -> None:
        assert broker.create_topic(f"{prefix}.A", 3) == 3
        assert broker.partition_count(f"{prefix}.A") == 3

    def test_create_topic_is_idempotent_and_keeps_the_existing_count(self, broker: Broker, prefix: str) -> None:
        broker.create_topic(f"{prefix}.A", 3)

        assert broker.create_topic(f"{prefix}.A", 3) == 3
        assert broker.create_topic(f"{prefix}.A", 8) == 3
        assert broker.partition_count(f"{prefix}.A") == 3

    @pytest.mark.parametrize("partitions", [0, -1])
    def test_create_topic_refuses_fewer_than_one_partition(self, broker: Broker, prefix: str, partitions: int) -> None:
        with pytest.raises(ValueError, match="partitions"):
            broker.create_topic(f"{prefix}.A", partitions)
        assert f"{prefix}.A" not in broker.list_topics()

    def test_list_topics_is_sorted(self, broker: Broker, prefix: str) -> None:
        names = [f"{prefix}.C", f"{prefix}.A", f"{prefix}.B"]
        for name in names:
            broker.create_topic(name, 1)

        listed = broker.list_topics()

        assert listed == sorted(listed)
        assert set(names) <= set(listed)

    def test_list_topics_pattern_must_match_the_whole_name(self, broker: Broker, prefix: str) -> None:
        for name in ("A.1.X.Y", "A.1.X.Y.ACK", "B.1.X.Y", "A.22.X.Y"):
            broker.create_topic(f"{prefix}{name}", 1)

        work = broker.list_topics(re.compile(rf"{prefix}A\.[0-9]+\.X\.Y"))
        partial = broker.list_topics(re.compile(rf"{prefix}A"))

        assert work == [f"{prefix}A.1.X.Y", f"{prefix}A.22.X.Y"]
        assert partial == []

    def test_a_topic_created_by_one_instance_is_seen_by_another(
        self, broker: Broker, broker_factory: BrokerFactory, prefix: str
    ) -> None:
        broker.create_topic(f"{prefix}.A", 2)

        other = broker_factory()

        assert other.partition_count(f"{prefix}.A") == 2
        assert other.create_topic(f"{prefix}.A", 5) == 2

    # -- append and read ------------------------------------------------------------------------

    def test_offsets_start_at_zero_and_increase_within_a_partition_across_appends(
        self, broker: Broker, prefix: str
    ) -> None:
        topic = f"{prefix}.A"
        broker.create_topic(topic, 3)
        keys = [b"client-%d" % i for i in range(9)]
        appended: defaultdict[int, list[int]] = defaultdict(list)

        for size in (1, 5, 2, 9, 4):
            batch_keys = [keys[(size + i) % len(keys)] for i in range(size)]
            positions = broker.append(topic, [Record(key, b"v") for key in batch_keys])

            assert [p.partition for p in positions] == [partition_for(key, 3) for key in batch_keys]
            for partition, offset in positions:
                appended[partition].append(offset)

        ends = broker.end_offsets(topic)
        read = read_all(broker, topic)
        assert sorted(appended) == [0, 1, 2], "the keys should exercise every partition"
        for partition, offsets in appended.items():
            assert offsets[0] == 0
            self.check_offsets(offsets, f"partition {partition}", end=ends[partition])
            assert [m.offset for m in read[partition]] == offsets

    def test_positions_point_at_the_appended_records(self, broker: Broker, prefix: str) -> None:
        topic = f"{prefix}.A"
        broker.create_topic(topic, 4)
        records = [Record(b"k%d" % i if i % 3 else None, b"value-%d" % i) for i in range(20)]

        positions = broker.append(topic, records)

        assert len(positions) == len(records)
        for record, (partition, offset) in zip(records, positions, strict=True):
            [message] = broker.read(topic, partition, offset, max_records=1)
            assert (message.partition, message.offset, message.key, message.value) == (
                partition,
                offset,
                record.key,
                record.value,
            )

    def test_order_is_kept_within_a_partition(self, broker: Broker, prefix: str) -> None:
        topic = f"{prefix}.A"
        broker.create_topic(topic, 4)
        keys = [b"client-%d" % i for i in range(7)]
        expected: defaultdict[int, list[bytes]] = defaultdict(list)

        for batch in range(3):
            keyed_values = [(keys[i % len(keys)], b"%d-%d" % (batch, i)) for i in range(25)]
            broker.append(topic, [Record(key, value) for key, value in keyed_values])
            for key, value in keyed_values:
                expected[partition_for(key, 4)].append(value)

        assert values_by_partition(broker, topic) == {p: expected[p] for p in range(4)}

    def test_same_key_goes_to_the_same_partition_across_batches_and_reopen(
        self, broker: Broker, broker_factory: BrokerFactory, prefix: str
    ) -> None:
        topic = f"{prefix}.A"
        broker.create_topic(topic, 6)
        cpfs = [b"%011d" % (12345678900 + i * 7919) for i in range(40)]

        first = broker.append(topic, keyed(*cpfs))
        second = broker.append(topic, keyed(*reversed(cpfs)))
        third = broker_factory().append(topic, keyed(*cpfs))

        expected = [partition_for(cpf, 6) for cpf in cpfs]
        assert [p.partition for p in first] == expected
        assert [p.partition for p in reversed(second)] == expected
        assert [p.partition for p in third] == expected
        assert len(set(expected)) > 1, "the keys should exercise several partitions"

    def test_keys_of_a_single_partition_topic_all_go_to_partition_zero(self, broker: Broker, prefix: str) -> None:
        broker.create_topic(f"{prefix}.A", 1)

        positions = broker.append(f"{prefix}.A", [*keyed(b"a", b"b", b"c"), Record(None, b"none")])

        assert positions == [Position(0, 0), Position(0, 1), Position(0, 2), Position(0, 3)]

    def test_keyless_records_are_spread_round_robin(self, broker: Broker, prefix: str) -> None:
        topic = f"{prefix}.A"
        broker.create_topic(topic, 4)

        in_one_batch = broker.append(topic, [Record(None, b"v%d" % i) for i in range(8)])
        one_by_one = [broker.append(topic, [Record(None, b"w%d" % i)])[0] for i in range(4)]

        assert Counter(p.partition for p in in_one_batch) == {0: 2, 1: 2, 2: 2, 3: 2}
        assert sorted(p.partition for p in one_by_one) == [0, 1, 2, 3]

    def test_keys_values_and_headers_round_trip(self, broker: Broker, prefix: str) -> None:
        topic = f"{prefix}.A"
        broker.create_topic(topic, 1)
        records = [
            Record(None, b"<xml>no key</xml>"),
            Record(b"", b"empty key is not a missing key"),
            Record(b"\x00\xff\x80", b"", (("binary", bytes(range(256))),)),
            Record(b"12345678909", b'{"cpf": 1}', (("trace", b"a"), ("trace", b"b"), ("empty", b""))),
            Record(b"k", b"v", (("convênio", "ação".encode()),)),
        ]

        broker.append(topic, records)

        messages = broker.read(topic, 0, 0)
        assert [Record(m.key, m.value, m.headers) for m in messages] == records
        assert messages[0].key is None

    def test_messages_carry_their_topic_partition_offset_and_timestamp(self, broker: Broker, prefix: str) -> None:
        topic = f"{prefix}.A"
        broker.create_topic(topic, 2)
        before_ms = time.time_ns() // 1_000_000

        [(partition, offset)] = broker.append(topic, [Record(b"key", b"value")])

        after_ms = time.time_ns() // 1_000_000
        [message] = broker.read(topic, partition, offset)
        assert (message.topic, message.partition, message.offset) == (topic, partition, offset)
        assert before_ms <= message.timestamp_ms <= after_ms

    def test_an_append_begun_and_waited_for_is_an_append(self, broker: Broker, prefix: str) -> None:
        broker.create_topic(f"{prefix}.A", 2)
        keys = [b"%d" % i for i in range(6)]
        records = [Record(key, b"v" + key) for key in keys]

        first, second = broker.begin_append(f"{prefix}.A", records), broker.begin_append(f"{prefix}.A", records[:2])
        positions = [*first(), *second()]

        assert [p.partition for p in positions] == [partition_for(key, 2) for key in [*keys, *keys[:2]]]
        read = {(m.partition, m.offset): m.value for p in (0, 1) for m in broker.read(f"{prefix}.A", p, 0)}
        assert [read[(p.partition, p.offset)] for p in positions] == [r.value for r in [*records, *records[:2]]]
        assert broker.begin_append(f"{prefix}.A", [])() == []

    def test_appending_nothing_returns_no_positions(self, broker: Broker, prefix: str) -> None:
        broker.create_topic(f"{prefix}.A", 2)

        assert broker.append(f"{prefix}.A", []) == []
        assert broker.end_offsets(f"{prefix}.A") == {0: 0, 1: 0}

    # -- the record size limit ------------------------------------------------------------------

    def test_max_record_bytes_is_the_adapters_limit(self, broker: Broker) -> None:
        assert broker.max_record_bytes == self.max_record_bytes

    def test_a_record_as_large_as_max_record_bytes_round_trips(self, broker: Broker, prefix: str) -> None:
        topic = f"{prefix}.A"
        broker.create_topic(topic, 1)
        size = broker.max_record_bytes or 3_000_000  # no limit: three times librdkafka's default
        headers = (("xtreaming-source", b"T/0/1"), ("origem", b"o" * 100), ("trace", b"t" * 9000))
        record = Record(b"12345678909", b"", headers)
        record.value = b"v" * (size - record_size(record))

        broker.append(topic, [record])

        [message] = broker.read(topic, 0, 0)
        assert Record(message.key, message.value, message.headers) == record
        assert record_size(record) == size

    def test_a_record_over_max_record_bytes_is_refused_alone_and_the_broker_stays_up(
        self, broker: Broker, prefix: str
    ) -> None:
        topic = f"{prefix}.A"
        broker.create_topic(topic, 1)
        limit = broker.max_record_bytes
        large = Record(b"12345678909", b"", (("trace", b"t" * 100),))
        large.value = b"v" * ((limit or 3_000_000) + 1 - record_size(large))
        records = [Record(b"1", b"before"), large, Record(b"2", b"after")]

        if limit is None:  # no limit: nothing is refused, however large
            broker.append(topic, records)
            read = broker.read(topic, 0, 0, max_bytes=1 << 30)
            assert [m.value == r.value for m, r in zip(read, records, strict=True)] == [True] * 3
            return
        with pytest.raises(RecordRejected, match=r"1 of 3 records refused.*record 1 \(key b'12345678909'\)") as caught:
            broker.begin_append(topic, records)()

        assert list(caught.value.rejected) == [1]
        assert f"{limit + 1:,} bytes" in caught.value.rejected[1]
        assert [m.value for m in broker.read(topic, 0, 0)] == [b"before", b"after"]
        broker.append(topic, [Record(b"3", b"next")])  # at once: the refusal was not taken as an outage
        assert [m.value for m in broker.read(topic, 0, 0)] == [b"before", b"after", b"next"]

    def test_read_starts_at_the_given_offset(self, broker: Broker, prefix: str) -> None:
        broker.create_topic(f"{prefix}.A", 1)
        broker.append(f"{prefix}.A", [Record(None, b"%d" % i) for i in range(10)])

        messages = broker.read(f"{prefix}.A", 0, 6)

        assert [(m.offset, m.value) for m in messages] == [(6, b"6"), (7, b"7"), (8, b"8"), (9, b"9")]

    def test_read_at_or_past_the_end_returns_nothing(self, broker: Broker, prefix: str) -> None:
        broker.create_topic(f"{prefix}.A", 2)
        broker.append(f"{prefix}.A", [Record(None, b"a"), Record(None, b"b"), Record(None, b"c")])
        ends = broker.end_offsets(f"{prefix}.A")
        full, empty = sorted(ends, key=lambda p: -ends[p])

        assert broker.read(f"{prefix}.A", full, ends[full]) == []
        assert broker.read(f"{prefix}.A", full, ends[full] + 1000) == []
        assert broker.read(f"{prefix}.A", empty, ends[empty]) == []

    def test_a_read_at_the_end_sees_what_the_same_broker_appends_next(self, broker: Broker, prefix: str) -> None:
        broker.create_topic(f"{prefix}.A", 1)
        broker.append(f"{prefix}.A", [Record(None, b"0"), Record(None, b"1")])
        assert [m.value for m in broker.read(f"{prefix}.A", 0, 0)] == [b"0", b"1"]
        assert broker.read(f"{prefix}.A", 0, 2) == []  # read to its end

        broker.append(f"{prefix}.A", [Record(None, b"2")])

        assert [(m.offset, m.value) for m in broker.read(f"{prefix}.A", 0, 2)] == [(2, b"2")]

    def test_read_stops_at_max_records(self, broker: Broker, prefix: str) -> None:
        broker.create_topic(f"{prefix}.A", 1)
        broker.append(f"{prefix}.A", [Record(None, b"%d" % i) for i in range(10)])

        assert [m.offset for m in broker.read(f"{prefix}.A", 0, 0, max_records=4)] == [0, 1, 2, 3]
        assert [m.offset for m in broker.read(f"{prefix}.A", 0, 8, max_records=4)] == [8, 9]

    @pytest.mark.parametrize(
        ("max_bytes", "count"),
        [(300, 3), (299, 2), (100, 1), (10_000, 10)],
        ids=["exactly-three", "just-under-three", "exactly-one", "all"],
    )
    def test_read_stops_at_max_bytes_of_keys_and_values(
        self, broker: Broker, prefix: str, max_bytes: int, count: int
    ) -> None:
        broker.create_topic(f"{prefix}.A", 1)
        # 100 bytes per record, 10 of key and 90 of value: a limit that ignored keys would return more.
        broker.append(f"{prefix}.A", [Record(b"k" * 10, b"v" * 90) for _ in range(10)])

        messages = broker.read(f"{prefix}.A", 0, 0, max_bytes=max_bytes)

        assert [m.offset for m in messages] == list(range(count))

    def test_read_returns_one_record_larger_than_max_bytes(self, broker: Broker, prefix: str) -> None:
        broker.create_topic(f"{prefix}.A", 1)
        broker.append(f"{prefix}.A", [Record(None, b"x" * 5000), Record(None, b"y" * 5000)])

        messages = broker.read(f"{prefix}.A", 0, 0, max_bytes=100)

        assert [(m.offset, len(m.value)) for m in messages] == [(0, 5000)]

    def test_read_keys_gives_the_offsets_and_keys_read_gives(self, broker: Broker, prefix: str) -> None:
        topic = f"{prefix}.A"
        broker.create_topic(topic, 1)
        broker.append(topic, [Record(None if i % 3 == 0 else b"k%d" % i, b"v" * 100) for i in range(12)])

        keys = broker.read_keys(topic, 0, 2, max_records=5)

        assert keys == [(m.offset, m.key) for m in broker.read(topic, 0, 2, max_records=5)]
        assert keys == [(2, b"k2"), (3, None), (4, b"k4"), (5, b"k5"), (6, None)]
        assert broker.read_keys(topic, 0, 12) == []
        assert broker.read_keys(topic, 0, 0, max_records=0) == []

    def test_keys_read_ahead_and_records_read_behind_in_turn_each_go_on_where_they_were(
        self, broker: Broker, prefix: str
    ) -> None:
        """The scout of one message per key reads a partition's keys ahead while intake reads its records behind."""
        topic = f"{prefix}.A"
        broker.create_topic(topic, 1)
        broker.append(topic, [Record(b"%04d" % i, b"%d" % i) for i in range(400)])
        keys: list[tuple[int, bytes | None]] = []
        records: list[Message] = []

        for _ in range(4):
            keys += broker.read_keys(topic, 0, len(keys) + 200 if keys else 200, max_records=50)
            records += broker.read(topic, 0, len(records), max_records=50)

        assert keys == [(i, b"%04d" % i) for i in range(200, 400)]
        assert [(m.offset, m.value) for m in records] == [(i, b"%d" % i) for i in range(200)]

    def test_reading_keys_of_a_missing_partition_or_a_negative_offset_is_refused(
        self, broker: Broker, prefix: str
    ) -> None:
        broker.create_topic(f"{prefix}.A", 2)

        with pytest.raises(PartitionNotFound, match=re.escape(f"{prefix}.A")):
            broker.read_keys(f"{prefix}.A", 2, 0)
        with pytest.raises(ValueError, match="-1"):
            broker.read_keys(f"{prefix}.A", 0, -1)
        with pytest.raises(TopicNotFound, match=re.escape(f"{prefix}.MISSING")):
            broker.read_keys(f"{prefix}.MISSING", 0, 0)

    def test_end_offsets_are_the_next_offset_of_each_partition(self, broker: Broker, prefix: str) -> None:
        topic = f"{prefix}.A"
        broker.create_topic(topic, 3)
        assert broker.end_offsets(topic) == {0: 0, 1: 0, 2: 0}

        positions = broker.append(topic, [Record(b"client-%d" % i, b"v") for i in range(30)])

        counts = Counter(p.partition for p in positions)
        assert broker.end_offsets(topic) == {p: counts[p] for p in range(3)}

    def test_end_offsets_of_several_topics_follow_appends_by_others(
        self, broker: Broker, broker_factory: BrokerFactory, prefix: str
    ) -> None:
        first, second = f"{prefix}.A", f"{prefix}.B"
        broker.create_topic(first, 2)
        broker.create_topic(second, 1)
        assert broker.end_offsets_of([first, second]) == {first: {0: 0, 1: 0}, second: {0: 0}}
        other = broker_factory()

        other.append(second, [Record(b"k", b"v")] * 3)
        broker.append(first, [Record(None, b"v")] * 4)

        both = broker.end_offsets_of([first, second])
        assert both == {first: broker.end_offsets(first), second: {0: 3}}
        assert sum(both[first].values()) == 4
        other.close()

    def test_appends_survive_reopen(self, broker: Broker, broker_factory: BrokerFactory, prefix: str) -> None:
        topic = f"{prefix}.A"
        broker.create_topic(topic, 3)
        broker.append(topic, [Record(b"client-%d" % i, b"%d" % i) for i in range(30)])
        ends, contents = broker.end_offsets(topic), values_by_partition(broker, topic)
        broker.close()

        reopened = broker_factory()

        assert reopened.end_offsets(topic) == ends
        assert values_by_partition(reopened, topic) == contents

    # -- consumer groups ------------------------------------------------------------------------

    def test_committed_is_empty_for_a_group_that_never_committed(self, broker: Broker, prefix: str) -> None:
        broker.create_topic(f"{prefix}.A", 3)

        assert broker.committed(f"{prefix}-group", f"{prefix}.A") == {}

    def test_committed_lists_only_committed_partitions(self, broker: Broker, prefix: str) -> None:
        topic, group = f"{prefix}.A", f"{prefix}-group"
        broker.create_topic(topic, 3)

        broker.commit(group, topic, {0: 5, 2: 7})

        assert broker.committed(group, topic) == {0: 5, 2: 7}

    def test_a_commit_replaces_the_previous_offset(self, broker: Broker, prefix: str) -> None:
        topic, group = f"{prefix}.A", f"{prefix}-group"
        broker.create_topic(topic, 3)
        broker.commit(group, topic, {0: 5, 2: 7})

        broker.commit(group, topic, {0: 9})

        assert broker.committed(group, topic) == {0: 9, 2: 7}

    def test_commits_are_kept_per_group_and_per_topic(self, broker: Broker, prefix: str) -> None:
        broker.create_topic(f"{prefix}.A", 2)
        broker.create_topic(f"{prefix}.B", 2)

        broker.commit(f"{prefix}-one", f"{prefix}.A", {0: 1})
        broker.commit(f"{prefix}-two", f"{prefix}.A", {1: 2})
        broker.commit(f"{prefix}-one", f"{prefix}.B", {1: 3})

        assert broker.committed(f"{prefix}-one", f"{prefix}.A") == {0: 1}
        assert broker.committed(f"{prefix}-two", f"{prefix}.A") == {1: 2}
        assert broker.committed(f"{prefix}-one", f"{prefix}.B") == {1: 3}
        assert broker.committed(f"{prefix}-two", f"{prefix}.B") == {}

    def test_commits_survive_reopen(self, broker: Broker, broker_factory: BrokerFactory, prefix: str) -> None:
        topic, group = f"{prefix}.A", f"{prefix}-group"
        broker.create_topic(topic, 3)
        broker.append(topic, [Record(b"client-%d" % i, b"v") for i in range(12)])
        broker.commit(group, topic, {0: 2, 1: 1})
        broker.close()

        reopened = broker_factory()

        assert reopened.committed(group, topic) == {0: 2, 1: 1}

    def test_a_commit_naming_a_missing_partition_changes_nothing(self, broker: Broker, prefix: str) -> None:
        topic, group = f"{prefix}.A", f"{prefix}-group"
        broker.create_topic(topic, 3)
        broker.commit(group, topic, {0: 1})

        with pytest.raises(PartitionNotFound, match=re.escape(topic)):
            broker.commit(group, topic, {0: 4, 1: 4, 3: 4})

        assert broker.committed(group, topic) == {0: 1}

    # -- errors ---------------------------------------------------------------------------------

    @pytest.mark.parametrize(
        "operation",
        [
            pytest.param(lambda b, t: b.partition_count(t), id="partition_count"),
            pytest.param(lambda b, t: b.append(t, [Record(b"k", b"v")]), id="append"),
            pytest.param(lambda b, t: b.read(t, 0, 0), id="read"),
            pytest.param(lambda b, t: b.end_offsets(t), id="end_offsets"),
            pytest.param(lambda b, t: b.committed("group", t), id="committed"),
            pytest.param(lambda b, t: b.commit("group", t, {0: 1}), id="commit"),
        ],
    )
    def test_a_missing_topic_raises_topic_not_found(
        self, broker: Broker, prefix: str, operation: Callable[[Broker, str], object]
    ) -> None:
        broker.create_topic(f"{prefix}.OTHER", 1)

        with pytest.raises(TopicNotFound, match=re.escape(f"{prefix}.MISSING")):
            operation(broker, f"{prefix}.MISSING")

    @pytest.mark.parametrize("partition", [3, 4, -1])
    def test_reading_a_partition_outside_the_topic_raises_partition_not_found(
        self, broker: Broker, prefix: str, partition: int
    ) -> None:
        broker.create_topic(f"{prefix}.A", 3)

        with pytest.raises(PartitionNotFound, match=re.escape(f"{prefix}.A")):
            broker.read(f"{prefix}.A", partition, 0)

    def test_reading_a_negative_offset_raises_value_error(self, broker: Broker, prefix: str) -> None:
        broker.create_topic(f"{prefix}.A", 1)
        broker.append(f"{prefix}.A", [Record(None, b"v")])

        with pytest.raises(ValueError, match="-1"):
            broker.read(f"{prefix}.A", 0, -1)

    # -- several processes ----------------------------------------------------------------------

    def test_concurrent_appenders_lose_nothing(
        self, broker: Broker, broker_factory: BrokerFactory, prefix: str
    ) -> None:
        topic, writers, batches, size = f"{prefix}.A", 4, 200, 10
        broker.create_topic(topic, 4)

        with ExitStack() as stack:
            procs = [
                stack.enter_context(
                    spawn("concurrent", broker_factory.url, topic, *map(str, (w, batches, size)), stdin=subprocess.PIPE)
                )
                for w in range(writers)
            ]
            for proc in procs:
                assert read_line(proc) == "ready"
            for proc in procs:  # every writer has opened the log: release them together
                assert proc.stdin is not None
                proc.stdin.write("go\n")
                proc.stdin.close()
            reports = [json.loads(read_line(proc)) for proc in procs]
            assert [proc.wait() for proc in procs] == [0] * writers
        positions = [[Position(*p) for p in report["positions"]] for report in reports]
        alone = lone_spans([(r["started"], r["finished"]) for r in reports])
        assert alone == [], "writers that appended while no other one did: the test proved nothing"

        messages = {(m.partition, m.offset): m for ms in read_all(broker, topic).values() for m in ms}
        for partition, end in broker.end_offsets(topic).items():
            self.check_offsets(sorted(o for p, o in messages if p == partition), f"partition {partition}", end=end)
        assert len(messages) == writers * batches * size
        assert len({p for ps in positions for p in ps}) == len(messages), "two records were given one position"
        for writer, writer_positions in enumerate(positions):
            values = [f"{writer}:{b}:{i}".encode() for b in range(batches) for i in range(size)]
            assert [messages[p].value for p in writer_positions] == values
            for partition in range(4):  # each writer's records keep their order within a partition
                offsets = [o for p, o in writer_positions if p == partition]
                assert offsets == sorted(offsets)

    @pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
    def test_a_writer_killed_mid_batch_tears_at_most_the_batch_in_flight(
        self, broker: Broker, broker_factory: BrokerFactory, prefix: str
    ) -> None:
        topic, rounds, seed = f"{prefix}.A", 6, random.randrange(1 << 32)
        broker.create_topic(topic, 4)
        rng = random.Random(seed)  # named in failures, to replay a run
        acknowledged: set[str] = set()
        in_flight: set[str] = set()

        for round_ in range(rounds):
            writer_seed = str(rng.randrange(1 << 32))
            with spawn("crash", broker_factory.url, topic, str(round_), writer_seed, stdin=subprocess.PIPE) as proc:
                lines: list[str] = []
                for _ in range(rng.randint(1, 3)):
                    while not (line := read_line(proc)).startswith("appended"):
                        lines.append(line)
                    lines.append(line)
                # A random delay, not a wait for something: it spreads the kill over the next append.
                time.sleep(rng.uniform(0, 0.02))
                os.kill(proc.pid, signal.SIGKILL)
                assert proc.wait() == -signal.SIGKILL
                assert proc.stdout is not None
                lines += proc.stdout.read().splitlines()
            acknowledged |= {line.split()[1] for line in lines if line.startswith("appended")}
            if lines[-1].startswith("begin"):
                in_flight.add(lines[-1].split()[1])

        sizes: dict[str, int] = {}
        indexes: defaultdict[str, list[int]] = defaultdict(list)
        for partition, messages in read_all(broker_factory(), topic).items():
            self.check_offsets([m.offset for m in messages], f"partition {partition} (seed {seed})")
            for message in messages:
                batch = header(message, "batch")
                sizes[batch] = int(header(message, "size"))
                indexes[batch].append(int(header(message, "index")))
            for batch in {header(m, "batch") for m in messages}:
                order = [int(header(m, "index")) for m in messages if header(m, "batch") == batch]
                assert order == sorted(order), f"batch {batch} lost its order in partition {partition}; seed {seed}"
        torn = {batch: (len(found), sizes[batch]) for batch, found in indexes.items() if len(found) != sizes[batch]}
        if self.all_or_nothing_appends:
            assert torn == {}, f"batches partly in the log: (records found, batch size); seed {seed}"
        else:
            assert set(torn) <= in_flight, f"batches torn though not in flight at a kill; seed {seed}"
        for batch, found in indexes.items():
            assert len(set(found)) == len(found), f"batch {batch} has duplicate records; seed {seed}"
            if batch not in torn:
                assert sorted(found) == list(range(sizes[batch])), f"batch {batch} has unknown records; seed {seed}"
        assert acknowledged <= set(sizes), f"a batch whose append returned was lost; seed {seed}"
        assert acknowledged.isdisjoint(torn), f"a batch whose append returned is incomplete; seed {seed}"
        assert in_flight, f"no writer was killed inside an append: the test proved nothing; seed {seed}"
