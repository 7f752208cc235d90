"""The broker contract against a Kafka broker (tansu), plus what only the Kafka adapter promises."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer  # a client of the CRM's kind: tests may use it

from tests.broker.contract import BrokerContract, read_all
from tests.services import Tansu
from tests.waiting import wait_until
from xtreaming.broker import Headers, Record, open_broker, partition_for
from xtreaming.broker.kafka import KafkaBroker
from xtreaming.broker.kafka.config import KafkaConfig
from xtreaming.broker.port import record_size
from xtreaming.errors import BrokerUnavailable, InvalidBrokerUrl
from xtreaming.localhost import free_port


@pytest.mark.kafka
@pytest.mark.parametrize("broker_url", ["kafka"], indirect=True)
class TestKafkaBroker(BrokerContract):
    """Every test of the contract, on the session's tansu broker, each with topics and groups of its own."""

    all_or_nothing_appends = False
    dense_offsets = False
    max_record_bytes = 1_000_000  # librdkafka's default message.max.bytes


# -- URLs and settings (no broker needed) ------------------------------------------------------------


def test_a_kafka_url_names_servers_librdkafka_settings_and_adapter_options(tmp_path: Path) -> None:
    secrets = tmp_path / "kafka.properties"
    secrets.write_text("# kept out of the URL\nsasl.password = s3cret\nsasl.username=from-file\n\n")

    config = KafkaConfig.from_url(
        f"kafka://k1:9092, k2:9093?security.protocol=SASL_SSL&sasl.username=xt&config_file={secrets}"
        "&timeout_s=2.5&replication_factor=3"
    )

    assert config.servers == "k1:9092,k2:9093"
    assert config.settings == {"security.protocol": "SASL_SSL", "sasl.username": "xt", "sasl.password": "s3cret"}
    assert (config.timeout_s, config.replication_factor) == (2.5, 3)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("kafka://", "expected kafka://host1:9092,host2:9092"),
        ("kafka://user:pw@k1:9092", "credentials go in sasl.username"),
        ("kafka://k1:9092,,k2:9092", "an empty server"),
        ("kafka://k1:9092/topic", "expected kafka://host1:9092"),
        ("kafka://k1:9092?timeout_s=soon", "timeout_s='soon' is not a float"),
        ("kafka://k1:9092?replication_factor=2.5", "replication_factor='2.5' is not a int"),
        ("kafka://k1:9092?group.id=mine", "'group.id' is set by Xtreaming"),
        ("kafka://k1:9092?config_file=/nonexistent/kafka.properties", "cannot read it"),
        ("kafka://k1:9092?message.max.bytes=lots", "message.max.bytes"),
    ],
)
def test_a_malformed_kafka_url_is_refused_in_a_sentence(url: str, message: str) -> None:
    with pytest.raises(InvalidBrokerUrl, match=message):
        open_broker(url)


def test_a_url_error_does_not_echo_the_query_which_may_hold_a_password() -> None:
    with pytest.raises(InvalidBrokerUrl) as caught:
        open_broker("kafka://user:pw@k1:9092?sasl.password=s3cret")

    assert "s3cret" not in str(caught.value)


@pytest.mark.parametrize(
    ("key", "headers"),
    [
        (None, ()),
        (b"", ()),
        (b"12345678909", (("xtreaming-source", b"T/0/1"),)),
        (b"k" * 300, (("a" * 63, b"v" * 63), ("b" * 64, b"v" * 64))),  # lengths whose varints widen
        (b"k", (("trace", b"t" * 8191), ("trace", b"t" * 8192), ("convênio", "ação".encode()), ("empty", b""))),
    ],
)
def test_record_size_is_what_librdkafka_measures(key: bytes | None, headers: Headers) -> None:
    """The producer's own check, in ``produce`` (no broker needed): a record of ``record_size`` equal to
    ``message.max.bytes`` is taken, one byte more is refused."""
    limit = 30_000
    producer = Producer({"bootstrap.servers": f"127.0.0.1:{free_port()}", "message.max.bytes": limit})

    def refusal(value_bytes: int) -> int | None:
        """librdkafka's error code for a record with a value of ``value_bytes``, or None when it takes it."""
        try:
            producer.produce("T", b"v" * value_bytes, key, 0, headers=list(headers) or None)
        except KafkaException as exc:
            code: int = exc.args[0].code()
            return code
        return None

    try:
        room = limit - record_size(Record(key, b"", headers))
        assert (refusal(room), refusal(room + 1)) == (None, KafkaError.MSG_SIZE_TOO_LARGE)
    finally:
        producer.purge()
        producer.flush(0)


@pytest.mark.kafka
def test_max_record_bytes_is_the_urls_message_max_bytes(tansu: Tansu, prefix: str) -> None:
    broker = open_broker(f"{tansu.url}?message.max.bytes=2000000")
    topic = f"{prefix}.A"
    broker.create_topic(topic, 1)
    record = Record(b"k", b"v" * 1_500_000)

    broker.append(topic, [record])

    assert broker.max_record_bytes == 2_000_000
    assert len(broker.read(topic, 0, 0, max_bytes=1 << 30)[0].value) == 1_500_000
    broker.close()


def test_an_unreachable_cluster_fails_clearly_within_the_timeout() -> None:
    port = free_port()  # nobody listens on it
    started = time.monotonic()

    with pytest.raises(BrokerUnavailable, match=rf"kafka 127\.0\.0\.1:{port} unreachable: reach the cluster"):
        open_broker(f"kafka://127.0.0.1:{port}?timeout_s=1")

    assert time.monotonic() - started < 5


# -- what only Kafka shows -------------------------------------------------------------------------------


@pytest.mark.kafka
def test_an_invalid_librdkafka_setting_is_named(tansu: Tansu) -> None:
    with pytest.raises(InvalidBrokerUrl, match=r"invalid client settings: No such configuration property: .no\.such"):
        open_broker(f"{tansu.url}?no.such.setting=1")


@pytest.mark.kafka
def test_records_of_another_client_are_read_as_they_are(tansu: Tansu, prefix: str) -> None:
    """The CRM's .NET producer (librdkafka, default partitioner, XML values, no headers) is one such client."""
    topic = f"{prefix}.CRM"
    broker = open_broker(tansu.url)
    broker.create_topic(topic, 3)
    crm = Producer({"bootstrap.servers": tansu.url.removeprefix("kafka://"), "partitioner": "consistent_random"})
    cpfs = [b"%011d" % (12345678900 + i) for i in range(30)]
    for cpf in cpfs:
        crm.produce(topic, value=b"<cliente cpf='%s'/>" % cpf, key=cpf)
    assert crm.flush(10) == 0

    messages = [m for ms in read_all(broker, topic).values() for m in ms]

    assert sorted(m.key or b"" for m in messages) == cpfs
    assert all(m.partition == partition_for(m.key or b"", 3) for m in messages)
    assert all(m.value == b"<cliente cpf='%s'/>" % m.key and m.headers == () for m in messages)
    assert sum(broker.end_offsets(topic).values()) == 30
    broker.close()


@pytest.mark.kafka
def test_the_first_append_of_a_broker_opened_a_while_ago_is_not_held_for_a_producer_id(
    tansu: Tansu, prefix: str
) -> None:
    """An idempotent producer holds its first records until it has its producer id (about a second on tansu): the
    producer is made as the broker is opened, so a coordinator's first results, appended once it has loaded, do not
    wait for it under its lock. A producer made at the first append took 0.95 s here."""
    topic = f"{prefix}.FIRST"
    maker = open_broker(tansu.url)
    maker.create_topic(topic, 1)
    maker.close()
    broker = open_broker(tansu.url)
    time.sleep(2)  # what loading takes, and more

    started = time.monotonic()
    broker.append(topic, [Record(b"k", b"v")])

    assert time.monotonic() - started < 0.4
    broker.close()


@pytest.mark.kafka
def test_the_adapters_own_appends_leave_no_offset_gaps(tansu: Tansu, prefix: str) -> None:
    """The port lets Kafka offsets skip, but appends without transactions write no control records."""
    topic = f"{prefix}.OWN"
    broker = open_broker(tansu.url)
    broker.create_topic(topic, 3)
    for size in (1, 7, 30):
        broker.append(topic, [Record(b"k%d" % i if i % 4 else None, b"v") for i in range(size)])

    ends = broker.end_offsets(topic)

    assert {p: [m.offset for m in ms] for p, ms in read_all(broker, topic).items()} == {
        p: list(range(end)) for p, end in ends.items()
    }
    assert sum(ends.values()) == 38
    broker.close()


@pytest.mark.kafka
def test_a_transactional_writer_leaves_offset_gaps_that_reads_step_over(tansu: Tansu, prefix: str) -> None:
    topic = f"{prefix}.TX"
    broker = open_broker(tansu.url)
    broker.create_topic(topic, 1)
    writer = Producer({"bootstrap.servers": tansu.url.removeprefix("kafka://"), "transactional.id": prefix})
    writer.init_transactions(10)
    for batch in range(3):
        writer.begin_transaction()
        for i in range(2):
            writer.produce(topic, value=b"%d-%d" % (batch, i), partition=0)
        writer.commit_transaction(10)

    messages = read_all(broker, topic)[0]

    assert [m.value for m in messages] == [b"0-0", b"0-1", b"1-0", b"1-1", b"2-0", b"2-1"]
    assert [m.offset for m in messages] == [0, 1, 3, 4, 6, 7]  # each commit marker takes an offset
    assert broker.end_offsets(topic) == {0: 9}
    assert broker.read(topic, 0, 8) == []
    broker.close()


@pytest.mark.kafka
def test_a_frozen_broker_makes_calls_fail_fast_then_recover(fresh_tansu: Tansu) -> None:
    broker = open_broker(f"{fresh_tansu.url}?timeout_s=2")
    assert isinstance(broker, KafkaBroker)
    broker.create_topic("T.1.A.B", 2)
    broker.append("T.1.A.B", [Record(b"k%d" % i, b"v") for i in range(10)])

    fresh_tansu.pause()
    try:
        started = time.monotonic()
        with pytest.raises(BrokerUnavailable, match=r"kafka 127\.0\.0\.1"):
            broker.end_offsets_of(["T.1.A.B"])
        first_s = time.monotonic() - started
        started = time.monotonic()
        with pytest.raises(BrokerUnavailable):
            broker.append("T.1.A.B", [Record(b"k", b"lost?")])
        again_s = time.monotonic() - started
    finally:
        fresh_tansu.resume()

    assert first_s < 3.5, "a call waits at most about timeout_s"
    assert again_s < 0.5, "while the broker is known down, calls fail at once"
    wait_until(
        lambda: broker.append("T.1.A.B", [Record(b"k", b"after")]),
        10,
        "the adapter to append again after the broker came back",
        every_s=0.2,
        ignoring=(BrokerUnavailable,),
    )
    assert sum(broker.end_offsets("T.1.A.B").values()) >= 11
    broker.close()
