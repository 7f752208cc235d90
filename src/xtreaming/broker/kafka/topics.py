"""Kafka topics: created and listed with the admin client, their partition counts looked up and cached."""

from __future__ import annotations

import time
from collections.abc import Callable
from re import Pattern
from typing import TYPE_CHECKING

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from xtreaming.broker.kafka.calls import MISSING_TOPIC, ClusterCalls
from xtreaming.errors import BrokerUnavailable, PartitionNotFound, TopicNotFound

if TYPE_CHECKING:  # confluent_kafka.admin documents the class but does not re-export it for type checkers
    from confluent_kafka.admin._metadata import ClusterMetadata


class KafkaTopics:
    """The topic side of the adapter. Partition counts never change, so a count once seen is kept;
    ``metadata`` asks for one topic's fresh metadata (the reader's consumer answers it)."""

    def __init__(
        self,
        admin: AdminClient,
        calls: ClusterCalls,
        metadata: Callable[[str], ClusterMetadata],
        replication_factor: int,
    ) -> None:
        self._admin = admin
        self._calls = calls
        self._metadata = metadata
        self._replication_factor = replication_factor
        self._partitions: dict[str, int] = {}

    def create(self, topic: str, partitions: int) -> int:
        """The port's ``create_topic``: another creator winning the race is no error."""
        if partitions < 1:
            raise ValueError(f"topic {topic!r}: partitions must be at least 1, got {partitions}")
        known = self._partitions.get(topic) or self._lookup(topic)
        if known is not None:
            return known
        new = NewTopic(topic, num_partitions=partitions, replication_factor=self._replication_factor)
        timeout_s = self._calls.timeout_s

        def create() -> None:
            future = self._admin.create_topics([new], request_timeout=timeout_s)[topic]
            try:
                future.result(timeout=timeout_s)
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:  # another creator won the race
                    raise

        self._calls.call(f"create topic {topic!r}", create)
        deadline = time.monotonic() + timeout_s
        while (count := self._lookup(topic)) is None:  # created: wait until metadata shows it
            if time.monotonic() > deadline:
                raise BrokerUnavailable(f"kafka {self._calls.servers}: topic {topic!r} created but not visible yet")
            time.sleep(0.01)
        return count

    def names(self, pattern: Pattern[str] | None = None) -> list[str]:
        """The port's ``list_topics``; the counts seen on the way are kept."""
        metadata = self._calls.call("list topics", lambda: self._admin.list_topics(timeout=self._calls.timeout_s))
        names = []
        for name, meta in metadata.topics.items():
            if meta.error is None and meta.partitions:
                self._partitions[name] = len(meta.partitions)
                names.append(name)
        return sorted(n for n in names if pattern is None or pattern.fullmatch(n))

    def partition_count(self, topic: str) -> int:
        count = self._partitions.get(topic) or self._lookup(topic)
        if count is None:
            raise TopicNotFound(f"topic {topic!r} does not exist")
        return count

    def check_partition(self, topic: str, partition: int) -> None:
        """Raise ``TopicNotFound`` or ``PartitionNotFound`` unless ``partition`` is one of ``topic``'s."""
        count = self.partition_count(topic)
        if not 0 <= partition < count:
            raise PartitionNotFound(f"topic {topic!r} has partitions 0..{count - 1}, not {partition}")

    def _lookup(self, topic: str) -> int | None:
        """The topic's partition count from fresh metadata (then kept), or None when it does not exist."""
        meta = self._metadata(topic).topics.get(topic)
        if meta is None or meta.error is not None or not meta.partitions:
            if meta is not None and meta.error is not None and meta.error.code() not in MISSING_TOPIC:
                raise self._calls.translate(meta.error, f"look up topic {topic!r}")
            return None
        self._partitions[topic] = len(meta.partitions)
        return self._partitions[topic]
