"""A broker whose writes go through only while this coordinator leads: ACK and DLQ appends, topics made,
consumer-group commits. The log has no epoch to check, so the check is the leader's own (``holds``): a
process woken from a pause past its lead finds the time gone before it sends anything."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from re import Pattern

from xtreaming.broker import Broker, Message, Position, Record
from xtreaming.errors import NotLeader


class FencedBroker:
    """``broker`` (the port, unchanged), refusing writes with NotLeader once ``holds()`` is False."""

    def __init__(self, broker: Broker, holds: Callable[[], bool]) -> None:
        self._broker = broker
        self._holds = holds

    def _check(self, what: str) -> None:
        if not self._holds():
            raise NotLeader(f"this coordinator is not the leader now: it may not {what}")

    @property
    def max_record_bytes(self) -> int | None:
        return self._broker.max_record_bytes

    @property
    def local(self) -> bool:
        return self._broker.local

    def create_topic(self, topic: str, partitions: int) -> int:
        self._check(f"create topic {topic}")
        return self._broker.create_topic(topic, partitions)

    def list_topics(self, pattern: Pattern[str] | None = None) -> list[str]:
        return self._broker.list_topics(pattern)

    def partition_count(self, topic: str) -> int:
        return self._broker.partition_count(topic)

    def append(self, topic: str, records: Sequence[Record]) -> Sequence[Position]:
        self._check(f"append to {topic}")
        return self._broker.append(topic, records)

    def begin_append(self, topic: str, records: Sequence[Record]) -> Callable[[], Sequence[Position]]:
        self._check(f"append to {topic}")
        return self._broker.begin_append(topic, records)

    def read(
        self, topic: str, partition: int, offset: int, max_records: int = 1000, max_bytes: int = 1 << 20
    ) -> list[Message]:
        return self._broker.read(topic, partition, offset, max_records, max_bytes)

    def read_keys(
        self, topic: str, partition: int, offset: int, max_records: int = 1000
    ) -> list[tuple[int, bytes | None]]:
        return self._broker.read_keys(topic, partition, offset, max_records)

    def end_offsets(self, topic: str) -> dict[int, int]:
        return self._broker.end_offsets(topic)

    def end_offsets_of(self, topics: Iterable[str]) -> dict[str, dict[int, int]]:
        return self._broker.end_offsets_of(topics)

    def committed(self, group: str, topic: str) -> dict[int, int]:
        return self._broker.committed(group, topic)

    def commit(self, group: str, topic: str, offsets: Mapping[int, int]) -> None:
        self._check(f"commit {topic}'s offsets")
        self._broker.commit(group, topic, offsets)

    def close(self) -> None:
        self._broker.close()
