"""The Kafka appender's producer: replaced after a delivery error that the same producer would repeat for every later
append, kept after one it would not. A scripted producer stands in for librdkafka's: no broker is needed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import KafkaError

from xtreaming.broker.kafka.appender import KafkaAppender
from xtreaming.broker.kafka.calls import ClusterCalls
from xtreaming.broker.port import Record
from xtreaming.errors import BrokerUnavailable

TOPIC = "MULTCOB03.1189.IMPORTACAO.CARGA.ACK"


class ScriptedProducer:
    """Reports each record produced as failed with ``error``, or delivered at the next offset when it is None."""

    def __init__(self, error: KafkaError | None) -> None:
        self.error = error
        self.offset = 0
        self._reports: list[tuple[Callable[[KafkaError | None, Any], None], Any]] = []

    def produce(self, topic: str, value: bytes, key: bytes | None, partition: int, on_delivery: Any, **_: Any) -> None:
        self._reports.append((on_delivery, Delivered(partition, self.offset)))
        self.offset += 1

    def flush(self, timeout: float = 0) -> int:
        reports, self._reports = self._reports, []
        for on_delivery, message in reports:
            on_delivery(self.error, message)
        return 0

    def poll(self, timeout: float = 0) -> int:
        return self.flush()


class Delivered:
    def __init__(self, partition: int, offset: int) -> None:
        self._partition, self._offset = partition, offset

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset


def appender(first_error: KafkaError) -> tuple[KafkaAppender, list[ScriptedProducer]]:
    """An appender whose first producer fails every record with ``first_error`` and whose later ones deliver."""
    made: list[ScriptedProducer] = []

    def make() -> Any:
        made.append(ScriptedProducer(None if made else first_error))
        return made[-1]

    calls = ClusterCalls("127.0.0.1:9", timeout_s=1.0, probe=lambda _: None)
    return KafkaAppender(make, calls, max_record_bytes=1_000_000), made


@pytest.mark.parametrize(
    "code", [KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH, KafkaError.OUT_OF_ORDER_SEQUENCE_NUMBER]
)
def test_a_producer_refused_for_its_own_state_is_replaced_and_the_next_append_goes_through(code: int) -> None:
    appending, made = appender(KafkaError(code))

    with pytest.raises(BrokerUnavailable, match=KafkaError(code).name()):
        appending.begin(TOPIC, 1, [Record(b"1", b"ok")])()
    positions = appending.begin(TOPIC, 1, [Record(b"2", b"ok")])()

    assert len(made) == 2
    assert [p.offset for p in positions] == [0]


def test_a_producer_whose_batch_failed_for_the_cluster_is_kept() -> None:
    appending, made = appender(KafkaError(KafkaError.NOT_ENOUGH_REPLICAS))

    with pytest.raises(BrokerUnavailable, match="NOT_ENOUGH_REPLICAS"):
        appending.begin(TOPIC, 1, [Record(b"1", b"ok")])()
    with pytest.raises(BrokerUnavailable, match="NOT_ENOUGH_REPLICAS"):
        appending.begin(TOPIC, 1, [Record(b"2", b"ok")])()

    assert len(made) == 1
