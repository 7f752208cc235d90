"""Consumer groups' committed offsets on Kafka, read and written without joining the groups."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping

from confluent_kafka import Consumer, TopicPartition

from xtreaming.broker.kafka.calls import ClusterCalls


class KafkaGroups:
    """One standalone consumer per group (made on first use, never subscribed), which only reads and
    commits the group's offsets: the coordinator commits its ledger watermarks; the finished offsets
    above them live in the coordinator's state store, not in commit metadata."""

    def __init__(self, make_consumer: Callable[[str], Consumer], calls: ClusterCalls) -> None:
        self._make_consumer = make_consumer
        self._calls = calls
        self._lock = threading.Lock()
        self._consumers: dict[str, Consumer] = {}

    def committed(self, group: str, topic: str, partitions: int) -> dict[int, int]:
        """The port's ``committed`` for a topic of ``partitions`` partitions."""
        consumer = self._consumer(group)
        asked = [TopicPartition(topic, p) for p in range(partitions)]
        answers = self._calls.call(
            f"read group {group!r} offsets of {topic!r}",
            lambda: consumer.committed(asked, timeout=self._calls.timeout_s),
        )
        for answer in answers:
            if answer.error is not None:
                raise self._calls.translate(answer.error, f"group {group!r} offsets of {topic!r}")
        return {a.partition: a.offset for a in answers if a.offset >= 0}

    def commit(self, group: str, topic: str, offsets: Mapping[int, int]) -> None:
        """The port's ``commit``, its partitions and offsets already checked."""
        if not offsets:
            return
        consumer = self._consumer(group)
        asked = [TopicPartition(topic, p, o) for p, o in offsets.items()]
        answers = self._calls.call(
            f"commit group {group!r} offsets of {topic!r}", lambda: consumer.commit(offsets=asked, asynchronous=False)
        )
        for answer in answers or ():
            if answer.error is not None:
                raise self._calls.translate(answer.error, f"commit group {group!r} offsets of {topic!r}")

    def close(self) -> None:
        for consumer in self._consumers.values():
            consumer.close()
        self._consumers.clear()

    def _consumer(self, group: str) -> Consumer:
        with self._lock:
            consumer = self._consumers.get(group)
            if consumer is None:
                consumer = self._consumers[group] = self._make_consumer(group)
            return consumer
