"""The Python producer API: one message per key, atomic batches, reports."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from xtreaming.broker import Record, open_broker
from xtreaming.broker.port import Broker
from xtreaming.config import Settings
from xtreaming.defaults import DEFAULT_PARTITIONS, MAX_PARTITIONS
from xtreaming.errors import InvalidInput, InvalidTopicName, XtreamingError
from xtreaming.keys import MAX_KEY_BYTES
from xtreaming.producer import Producer, PublishReport

TOPIC = "MULTCOB02.1186.IMPORTACAO.MAILING"


@pytest.fixture
def log(tmp_path: Path) -> Broker:
    return open_broker(f"sqlite:///{tmp_path}/log.db")


def all_values(log: Broker, topic: str) -> list[bytes]:
    values = []
    for partition in range(log.partition_count(topic)):
        values += [m.value for m in log.read(topic, partition, 0, max_records=100_000, max_bytes=1 << 30)]
    return values


def test_publish_keeps_the_first_message_of_each_key_and_reports_the_rest(log: Broker) -> None:
    records = [("111", "a"), ("222", "b"), ("111", "c"), ("333", "d"), ("222", "e")]

    report = Producer(log, batch_size=2).publish(TOPIC, records)

    assert (report.published, report.duplicates, report.duplicate_samples) == (3, 2, ["111", "222"])
    assert sorted(all_values(log, TOPIC)) == [b"a", b"b", b"d"]


def test_duplicates_are_found_across_batches_and_within_one(log: Broker) -> None:
    records = [(str(i % 700), str(i)) for i in range(2_000)]

    report = Producer(log, batch_size=300).publish(TOPIC, records)

    assert (report.published, report.duplicates) == (700, 1_300)


def test_publish_without_dedupe_keeps_every_record(log: Broker) -> None:
    report = Producer(log).publish(TOPIC, [("1", "a"), ("1", "b")], dedupe=False)

    assert (report.published, report.duplicates) == (2, 0)


def test_records_keep_their_order_within_a_key_partition(log: Broker) -> None:
    Producer(log, partitions=1).publish(TOPIC, [Record(str(i).encode(), str(i).encode()) for i in range(50)])

    assert all_values(log, TOPIC) == [str(i).encode() for i in range(50)]


def test_keyless_records_are_never_deduplicated(log: Broker) -> None:
    report = Producer(log).publish(TOPIC, [Record(None, b"x"), Record(None, b"x")])

    assert report.published == 2


def test_publish_creates_the_topic_with_the_requested_partitions(log: Broker) -> None:
    Producer(log, partitions=6).publish(TOPIC, [("1", "a")])

    assert log.partition_count(TOPIC) == 6


def test_an_invalid_topic_is_refused_before_anything_is_written(log: Broker) -> None:
    with pytest.raises(InvalidTopicName, match="convenio 'X1' must be digits"):
        Producer(log).publish("MULTCOB02.X1.IMPORTACAO.CARGA", [("1", "a")])

    assert log.list_topics() == []


def test_publishing_to_a_derived_topic_is_refused(log: Broker) -> None:
    with pytest.raises(InvalidTopicName, match="derived ACK topic"):
        Producer(log).publish(f"{TOPIC}.ACK", [("1", "a")])


def test_a_malformed_record_names_itself(log: Broker) -> None:
    with pytest.raises(XtreamingError, match="expected a Record or a \\(key, value\\) pair"):
        Producer(log).publish(TOPIC, ["just a string"])  # type: ignore[list-item]


def test_progress_callback_sees_every_input_record(log: Broker) -> None:
    seen: list[int] = []

    Producer(log, batch_size=4).publish(TOPIC, [(str(i % 3), "v") for i in range(10)], on_batch=seen.append)

    assert seen == [4, 4, 2]


def test_producer_opens_and_closes_its_own_broker_from_a_url(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/own.db"
    with Producer(url) as producer:
        producer.publish(TOPIC, [("1", "a")])

    assert all_values(open_broker(url), TOPIC) == [b"a"]


def test_the_producer_builds_no_server_settings_and_reads_no_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XTREAMING_HOST", "0.0.0.0")  # a server's Settings refuses this without tokens
    monkeypatch.delenv("XTREAMING_TOKENS", raising=False)
    monkeypatch.setenv("XTREAMING_DEFAULT_PARTITIONS", "9")
    with pytest.raises(ValidationError, match="not a loopback address and no tokens are configured"):
        Settings()
    url = f"sqlite:///{tmp_path}/own.db"

    with Producer(url, partitions=3) as producer:
        producer.publish(TOPIC, [("1", "a")])
    with Producer(url) as producer:
        producer.publish(f"{TOPIC}_2", [("1", "a")])

    log = open_broker(url)
    try:
        assert (log.partition_count(TOPIC), log.partition_count(f"{TOPIC}_2")) == (3, DEFAULT_PARTITIONS)
    finally:
        log.close()


@pytest.mark.parametrize("partitions", [0, MAX_PARTITIONS + 1])
def test_partitions_out_of_the_range_the_cli_and_api_take_are_refused(log: Broker, partitions: int) -> None:
    with pytest.raises(ValueError, match=f"partitions must be from 1 to 1,024, got {partitions:,}"):
        Producer(log, partitions=partitions)


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("", "key b'' is empty"),
        ("9" * (MAX_KEY_BYTES + 1), f"is {MAX_KEY_BYTES + 1:,} bytes long; a key is at most {MAX_KEY_BYTES:,} bytes"),
    ],
    ids=["empty", "too-long"],
)
def test_a_key_the_api_would_refuse_is_refused_before_its_batch_is_written(log: Broker, key: str, message: str) -> None:
    records = [("111", "a"), ("222", "b"), (key, "c"), ("333", "d")]

    with pytest.raises(InvalidInput, match=re.escape(message)):
        Producer(log, batch_size=2).publish(TOPIC, records)

    assert sorted(all_values(log, TOPIC)) == [b"a", b"b"]  # the batch before it only


def test_a_load_without_a_record_creates_no_topic(log: Broker) -> None:
    report = Producer(log).publish(TOPIC, [])

    assert report.published == 0
    assert log.list_topics() == []


def test_the_report_passed_in_says_what_was_written_when_publish_fails(log: Broker) -> None:
    report = PublishReport(TOPIC)

    with pytest.raises(InvalidInput):
        Producer(log, batch_size=2).publish(TOPIC, [("1", "a"), ("1", "b"), ("3", "c"), ("", "d")], report=report)

    assert (report.published, report.duplicates) == (1, 1)
