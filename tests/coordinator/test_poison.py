"""Messages too large for their result records are settled once, not retried for ever.

On Kafka the coordinator's producer refuses records over its ``message.max.bytes`` (1,000,000 by
default), while a foreign producer may write larger ones to a work topic; its DLQ record (the value
plus headers) or its ACK (the key twice) would not fit. On the embedded log nothing is cut. Each test
runs on the embedded log with SQLite state and on tansu with PostgreSQL state.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer  # the foreign producer, of the CRM's kind: tests may use it

from tests.coordinator.test_service import Site, farm, keys
from tests.coordinator.workers import give_workers
from tests.services import Tansu, fresh_postgres_schema
from tests.waiting import wait_until
from xtreaming.broker import Message, Record, partition_for
from xtreaming.broker.kafka import KafkaBroker
from xtreaming.broker.kafka.config import KafkaConfig
from xtreaming.broker.port import record_size
from xtreaming.coordinator.fitting import DROPPED_HEADERS, REFUSED_RECORD_BYTES, TRUNCATED
from xtreaming.coordinator.options import CoordinatorOptions
from xtreaming.coordinator.service import Coordinator, Report
from xtreaming.wire.message_id import message_id
from xtreaming.wire.verdict import Verdict

TOPIC = "MULTCOB03.1189.IMPORTACAO.ATUALIZA_BUREAU"
#: The size of the value in the report that led here.
POISON_BYTES = 1_040_000


class PoisonSite(Site):
    """A site whose work topic is written by a foreign producer that allows records of any size."""

    def write(self, records: list[Record]) -> None:
        self.broker.create_topic(TOPIC, 1)
        if self.broker_url.startswith("kafka://"):
            servers = self.broker_url.removeprefix("kafka://")
            foreign = Producer({"bootstrap.servers": servers, "message.max.bytes": 10_000_000})
            for record in records:
                foreign.produce(TOPIC, record.value, record.key, partition_for(record.key or b"", 1))
            assert foreign.flush(10) == 0
        else:
            self.broker.append(TOPIC, records)
        wait_until(lambda: self._pending() == len(records), 10, f"the coordinator to read the {len(records)} messages")
        give_workers(self.coordinator)

    def _pending(self) -> int:
        self.coordinator.run_once()
        [row], _ = self.coordinator.figures()
        return row.pending

    def messages(self, topic: str) -> list[Message]:
        return self.broker.read(topic, 0, 0, max_records=100_000, max_bytes=1 << 30)

    def acks(self) -> list[dict[str, Any]]:
        return [json.loads(m.value) for m in self.messages(f"{TOPIC}.ACK")]


@pytest.fixture(params=["sqlite", pytest.param("kafka", marks=[pytest.mark.kafka, pytest.mark.postgres])])
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[PoisonSite]:
    with ExitStack() as stack:
        if request.param == "sqlite":
            site = PoisonSite(f"sqlite:///{tmp_path}/log.db", f"sqlite:///{tmp_path}/state.db")
        else:
            tansu: Tansu = request.getfixturevalue("fresh_tansu")
            site = PoisonSite(tansu.url, stack.enter_context(fresh_postgres_schema()))
        yield site
        site.store.close()
        site.broker.close()


def poisoned_batch() -> list[Record]:
    value = ("<cliente nome='João'>" + "x" * POISON_BYTES).encode()[:POISON_BYTES]
    return [Record(k.encode(), f"<cliente cpf='{k}'/>".encode()) for k in keys(3)] + [
        Record(b"99999999999", value),
        *[Record(k.encode(), b"<ok/>") for k in keys(3, start=3)],
    ]


def test_a_message_too_large_for_its_dlq_record_is_settled_once(site: PoisonSite) -> None:
    records = poisoned_batch()
    site.write(records)
    farm_id = farm(site)
    [task] = site.coordinator.lease(farm_id, [0])
    poison = next(m for m in task.messages if m.key == b"99999999999")
    poison_id = message_id(TOPIC, poison.partition, poison.offset)

    settled = site.coordinator.complete(task.task_id, Report(Verdict.OK, {poison_id: (Verdict.ERROR, "XML inválido")}))

    assert (settled.ok, settled.dead) == (6, 1)
    [dead] = site.messages(f"{TOPIC}.DLQ")
    headers = dict(dead.headers)
    assert headers["xtreaming-source"] == poison_id.encode()  # where the whole message still is
    if site.broker.max_record_bytes is None:  # the embedded log: nothing cut
        assert dead.value == records[3].value
        assert TRUNCATED not in headers
    else:
        assert headers[TRUNCATED] == b"%d" % POISON_BYTES
        assert records[3].value.startswith(dead.value)
        assert site.broker.max_record_bytes - 3 <= record_size(Record(dead.key, dead.value, dead.headers))
        assert json.loads(headers["xtreaming-errors"]) == ["attempt 1: XML inválido"]
    acks = site.acks()
    assert sorted(a["offset"] for a in acks) == [m.offset for m in task.messages]  # each message once
    assert [a["status"] for a in acks if a["offset"] == poison.offset] == ["dead"]
    site.write([Record(b"12345678909", b"<next/>")])
    [following] = site.coordinator.lease(farm_id, [0])  # the farm goes on
    assert [m.key for m in following.messages] == [b"12345678909"]


def test_a_key_too_large_for_its_ack_is_cut_in_the_json_and_acked_once(site: PoisonSite) -> None:
    key = b"1" * 600_000
    site.write([Record(b"111", b"<a/>"), Record(key, b"<huge key/>"), Record(b"222", b"<b/>")])
    [task] = site.coordinator.lease(farm(site), [0])

    settled = site.coordinator.complete(task.task_id, Report(Verdict.OK, {}))

    assert settled.ok == 3
    acks = {a["offset"]: a for a in site.acks()}
    assert sorted(acks) == [m.offset for m in task.messages]
    [huge] = [a for a in acks.values() if a["key"] not in ("111", "222")]
    if site.broker.max_record_bytes is None:
        assert (huge["key"], "key_truncated" in huge) == (key.decode(), False)
    else:
        assert huge["key_truncated"] == 600_000
        assert key.decode().startswith(huge["key"])
        assert len(huge["key"]) < 600_000


class UnknownLimit(KafkaBroker):
    """A Kafka broker whose coordinator does not know the record limit, as when the cluster's own limit
    is below the producer's: records are not cut first, so the refusal comes from the append itself."""

    @property
    def max_record_bytes(self) -> None:  # type: ignore[override]
        return None


@pytest.mark.kafka
@pytest.mark.parametrize("batched", [False, True], ids=["complete", "settle_and_lease"])
def test_a_result_record_the_broker_refuses_anyway_goes_in_cut_and_the_others_once(
    fresh_tansu: Tansu, tmp_path: Path, batched: bool
) -> None:
    site = PoisonSite(fresh_tansu.url, f"sqlite:///{tmp_path}/state.db")
    site.broker.close()
    site.broker = broker = UnknownLimit(KafkaConfig.from_url(fresh_tansu.url))
    site.coordinator = Coordinator(site.store, broker, CoordinatorOptions(lease_grace_s=0), clock=site.clock)
    site.write(poisoned_batch())
    farm_id = farm(site)
    [task] = site.coordinator.lease(farm_id, [0])
    poison = next(m for m in task.messages if m.key == b"99999999999")
    report = Report(Verdict.OK, {message_id(TOPIC, poison.partition, poison.offset): (Verdict.ERROR, "XML")})

    if batched:
        [settled], _ = site.coordinator.settle_and_lease(farm_id, [(task.task_id, report)], [0])
    else:
        settled = site.coordinator.complete(task.task_id, report)

    assert (settled.ok, settled.dead) == (6, 1)
    [dead] = site.messages(f"{TOPIC}.DLQ")
    headers = dict(dead.headers)
    assert headers[TRUNCATED] == b"%d" % POISON_BYTES
    assert DROPPED_HEADERS in headers or "xtreaming-errors" in headers
    assert record_size(Record(dead.key, dead.value, dead.headers)) <= REFUSED_RECORD_BYTES
    assert sorted(a["offset"] for a in site.acks()) == [m.offset for m in task.messages]
    site.store.close()
    broker.close()
