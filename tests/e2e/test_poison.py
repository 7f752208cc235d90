"""A poison message on Kafka is settled once: a foreign producer writes a 1,040,000-byte value (more than
the coordinator's producer takes, ``message.max.bytes`` 1,000,000), the worker answers ``error``, and its
DLQ record goes in with the value cut. Real processes: tansu, PostgreSQL, ``xtreaming coordinator``, one
``xtreaming farm`` running a worker command."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Producer  # the foreign producer, of the CRM's kind: tests may use it

from tests.broker.contract import read_all
from tests.e2e.test_kafka import KafkaSite
from tests.services import Tansu, fresh_postgres_schema
from tests.waiting import wait_until
from xtreaming.broker import Message, open_broker

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]

TOPIC = "MULTCOB03.1189.IMPORTACAO.ATUALIZA_BUREAU"
POISON_BYTES = 1_040_000
POISON_KEY = b"99999999999"
WORKER = (sys.executable, str(Path(__file__).with_name("poison_worker.py")))


class ForeignProducer:
    """A client that allows records of up to 10 MB, as the broker did: librdkafka's own producer."""

    def __init__(self, broker_url: str) -> None:
        servers = broker_url.removeprefix("kafka://")
        self.producer = Producer({"bootstrap.servers": servers, "message.max.bytes": 10_000_000})

    def write(self, records: list[tuple[bytes, bytes]]) -> None:
        for key, value in records:
            self.producer.produce(TOPIC, value, key, 0)
        assert self.producer.flush(10) == 0


def poison() -> bytes:
    return ("<cliente nome='João'>" + "x" * POISON_BYTES).encode()[:POISON_BYTES]


def read(broker_url: str, topic: str) -> list[Message]:
    log = open_broker(broker_url)
    try:
        return [m for messages in read_all(log, topic).values() for m in messages]
    finally:
        log.close()


@pytest.fixture
def site(tmp_path: Path, fresh_tansu: Tansu) -> Iterator[KafkaSite]:
    """A site whose work topic holds the poison message among six others before the coordinator starts:
    its first read takes them all, so the farm's first task carries the seven."""
    with fresh_postgres_schema() as database_url:
        site = KafkaSite(tmp_path, fresh_tansu.url, database_url)
        try:
            log = open_broker(fresh_tansu.url)
            log.create_topic(TOPIC, 1)
            log.close()
            small = [(b"%011d" % i, b"<cliente cpf='%011d'/>" % i) for i in range(6)]
            ForeignProducer(fresh_tansu.url).write([*small[:3], (POISON_KEY, poison()), *small[3:]])
            site.start_coordinator()
            wait_until(lambda: site.api.get(f"/api/queues/{TOPIC}").status_code == 200, 10, "the queue to be found")
            site.call("PATCH", f"/api/queues/{TOPIC}/settings", {"command": list(WORKER), "batch_size": 50})
            yield site
        finally:
            site.close()


def test_a_poison_message_goes_to_the_dlq_cut_once_and_the_farm_carries_on(site: KafkaSite) -> None:
    site.farm("farm-poa", slots=1)

    site.wait_consumed(TOPIC, 7, timeout_s=30)
    ForeignProducer(site.broker_url).write([(b"12345678909", b"<cliente/>")])  # after the poison: served too
    site.wait_consumed(TOPIC, 8, timeout_s=30)

    [dead] = read(site.broker_url, f"{TOPIC}.DLQ")
    headers = dict(dead.headers)
    [source] = [m for m in read(site.broker_url, TOPIC) if m.key == POISON_KEY]
    assert headers["xtreaming-source"] == f"{TOPIC}/0/{source.offset}".encode()  # the whole message is there
    assert len(source.value) == POISON_BYTES
    assert headers["xtreaming-truncated"] == b"1040000"
    assert 990_000 < len(dead.value) < POISON_BYTES
    assert poison().startswith(dead.value)
    acks = site.acks(TOPIC)
    assert Counter(a["offset"] for a in acks) == dict.fromkeys(range(8), 1)  # each message once
    assert Counter(a["status"] for a in acks) == {"ok": 7, "dead": 1}
    [poison_ack] = [a for a in acks if a["status"] == "dead"]
    assert poison_ack["detail"] == "XML grande demais"
    assert len([a for a in acks if a["task_id"] == poison_ack["task_id"]]) == 7  # one task: the seven
    status = site.call("GET", "/api/status")
    assert (status["broker_ok"], status["broker_error"]) == (True, None)
    assert "reloaded" not in site.coordinator.log()  # memory never taken as stale: the broker was never down
    farm_log = (site.root / "farm-poa.log").read_text(errors="replace")
    assert "unreachable" not in farm_log
    assert "refused" not in farm_log
