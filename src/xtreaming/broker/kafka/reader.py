"""Reading Kafka: one consumer assigned the partitions recently read, their records fetched ahead.

The consumer uses ``assign()`` and ``seek``, never a group join: no rebalance waits. Partitions
stay assigned between reads so that the next read is already fetched; a partition whose unread
buffer is full is paused (back-pressure), and the least recently read partitions are unassigned
past ``MAX_STREAMS``. Offsets read may skip (records of other clients' transactions leave control
records; compaction removes records): readers accept gaps. End offsets are the last stable offsets
(``read_committed``) of all partitions asked, in one ListOffsets request per leader.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, TypeVar

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka import Message as KafkaMessage

from xtreaming.broker.kafka.calls import MISSING_TOPIC, ClusterCalls
from xtreaming.broker.port import Headers, Message
from xtreaming.errors import PartitionNotFound

if TYPE_CHECKING:  # confluent_kafka.admin documents the class but does not re-export it for type checkers
    from confluent_kafka.admin._metadata import ClusterMetadata

log = logging.getLogger("xtreaming.broker.kafka")

T = TypeVar("T")
#: What a read makes of each raw record, given its topic, partition, offset, key and value.
Build = Callable[[KafkaMessage, str, int, int, "bytes | None", bytes], T]

#: Partitions kept assigned to the reading consumer; the least recently read are unassigned past this.
MAX_STREAMS: Final = 256
#: Records one consume takes from what librdkafka fetched.
FETCH_RECORDS: Final = 1000
#: At most this many partitions get their end checked with a fetch per ``ends`` call (the others in
#: later calls): checking assigns them, and more than ``MAX_STREAMS`` would evict each other.
MAX_CHECKS: Final = 64
#: A partition with this many fetched, unread records is paused until it is read (bounded memory).
STREAM_BUFFER: Final = 4096
#: ``read_keys`` counts no bytes: it takes no values.
_NO_BYTE_LIMIT: Final = 1 << 62
#: librdkafka's "offset not set" (OFFSET_INVALID) in position() answers.
_NO_OFFSET: Final = -1001
_OFFSET_END: Final = -1


@dataclass(slots=True)
class _Stream:
    """One assigned partition: records fetched and not yet read, and where fetching stands."""

    buffer: deque[KafkaMessage] = field(default_factory=deque)
    #: The offset after the last record put in ``buffer`` (or where the partition was sought).
    fetched: int = 0
    #: The offset the next read is expected to ask for; another one means a seek.
    next: int = 0
    paused: bool = False


class KafkaReader:
    """Reads partitions and their ends through ``consumer`` (one call at a time); see the module docstring.

    ``appended`` is each partition's end as this instance's own appends know it (``KafkaAppender``):
    a read or an end never reports less than what this instance has seen appended.
    """

    def __init__(self, consumer: Consumer, calls: ClusterCalls, appended: Mapping[tuple[str, int], int]) -> None:
        self._consumer = consumer
        self._calls = calls
        self._appended = appended
        self._lock = threading.Lock()
        self._streams: OrderedDict[tuple[str, int], _Stream] = OrderedDict()
        #: The ListOffsets answer last checked with a fetch, per partition not assigned then.
        self._checked: dict[tuple[str, int], int] = {}

    def topic_metadata(self, topic: str) -> ClusterMetadata:
        """Fresh metadata of ``topic``, asked through the reading consumer."""
        with self._lock:
            return self._metadata(topic)

    def _metadata(self, topic: str) -> ClusterMetadata:
        """``topic_metadata`` with the lock held."""
        metadata: ClusterMetadata = self._calls.call(
            f"look up topic {topic!r}", lambda: self._consumer.list_topics(topic, timeout=self._calls.timeout_s)
        )
        return metadata

    def _list_ends(self, asked: Sequence[tuple[str, int]]) -> list[TopicPartition]:
        return self._calls.call(
            "read end offsets",
            lambda: self._consumer.offsets_for_times(
                [TopicPartition(t, p, _OFFSET_END) for t, p in asked], timeout=self._calls.timeout_s
            ),
        )

    def ends(self, asked: Sequence[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """End offsets: the larger of ListOffsets' answer, this instance's appends and the last fetch's
        high watermark. They agree on Kafka; tansu 0.6 answers ListOffsets with the first offset of the
        partition's last record batch plus one (measured), so a partition whose answer moved and that
        no fetch has seen is fetched once (it then stays assigned, and its fetches keep the end fresh).
        """
        with self._lock:
            try:
                listed = self._list_ends(asked)
            except PartitionNotFound:
                # The caller knows these partitions (the admin client's metadata): a topic made a moment ago that
                # this consumer's metadata does not show yet. Once its metadata is refreshed, ask again.
                for topic in sorted({t for t, _ in asked}):
                    self._metadata(topic)
                listed = self._list_ends(asked)
            ends: dict[tuple[str, int], int] = {}
            unsure: list[tuple[tuple[str, int], int]] = []
            for answer in listed:
                if answer.error is not None:
                    raise self._calls.translate(answer.error, f"end offset of {answer.topic!r} {answer.partition}")
                key = (answer.topic, answer.partition)
                fetched = self._fetched_end(key)
                ends[key] = max(answer.offset, self._appended.get(key, 0), fetched or 0)
                if (
                    fetched is None
                    and ends[key] == answer.offset > 0
                    and self._checked.get(key) != answer.offset
                    and len(unsure) < MAX_CHECKS
                ):
                    unsure.append((key, answer.offset))
                    self._checked[key] = answer.offset
            if unsure:
                self._fetch_ends(unsure)
                for key, _ in unsure:
                    ends[key] = max(ends[key], self._fetched_end(key) or 0)
            return ends

    def read(self, topic: str, partition: int, offset: int, max_records: int, max_bytes: int) -> list[Message]:
        with self._lock:
            try:
                return self._read(topic, partition, offset, max_records, max_bytes, _message)
            except KafkaException as exc:
                raise self._calls.translate(exc.args[0], f"read {topic!r} partition {partition}") from exc

    def read_keys(self, topic: str, partition: int, offset: int, max_records: int) -> list[tuple[int, bytes | None]]:
        """``read``'s records as ``(offset, key)``, no limit of bytes."""
        with self._lock:
            try:
                return self._read(topic, partition, offset, max_records, _NO_BYTE_LIMIT, _offset_and_key)
            except KafkaException as exc:
                raise self._calls.translate(exc.args[0], f"read keys of {topic!r} partition {partition}") from exc

    def close(self) -> None:
        with self._lock:
            self._streams.clear()
            self._consumer.close()

    def _fetched_end(self, key: tuple[str, int]) -> int | None:
        """The high watermark in the partition's last fetch response; None before its first one."""
        if key not in self._streams:
            return None
        cached = self._consumer.get_watermark_offsets(TopicPartition(*key), cached=True)
        return cached[1] if cached and cached[1] >= 0 else None

    def _fetch_ends(self, unsure: list[tuple[tuple[str, int], int]]) -> None:
        for (topic, partition), listed in unsure:
            if (topic, partition) not in self._streams:
                self._stream(topic, partition, listed - 1)
        deadline = time.monotonic() + self._calls.timeout_s
        while any(self._fetched_end(key) is None for key, _ in unsure):
            if time.monotonic() > deadline:
                raise self._calls.mark_down("read end offsets: no fetch answered within the timeout")
            self._fetch(0.01, None)

    def _read(
        self, topic: str, partition: int, offset: int, max_records: int, max_bytes: int, build: Build[T]
    ) -> list[T]:
        """Up to ``max_records`` records (and ``max_bytes`` of keys and values) from ``offset``, each as ``build``
        makes it of the raw record, its topic, partition, offset, key and value."""
        stream = self._stream(topic, partition, offset)
        tp = TopicPartition(topic, partition)
        result: list[T] = []
        size = 0
        end: int | None = None
        deadline: float | None = None
        with_values = max_bytes < _NO_BYTE_LIMIT  # keys only: no copy of each value (records of kilobytes)
        while True:
            buffer = stream.buffer
            while buffer and len(result) < max_records:
                raw = buffer[0]
                key, value = raw.key(), (raw.value() or b"") if with_values else b""
                size += len(value) + (len(key) if key else 0)
                if size > max_bytes and result:
                    return result
                buffer.popleft()
                at = raw.offset() or 0
                stream.next = at + 1
                result.append(build(raw, topic, partition, at, key, value))
            if len(result) >= max_records or size >= max_bytes:
                return result
            if stream.paused:
                self._consumer.resume([tp])
                stream.paused = False
            position = max(stream.fetched, self._position(tp))
            fetched_end = self._fetched_end((topic, partition))
            if fetched_end is not None:  # the first fetch since the assignment answered: it knows the end
                appended = self._appended.get((topic, partition), 0)  # what this broker appended is there too
                if end is None and position >= max(fetched_end, appended):
                    # At the end as last fetched; ask the cluster whether records came since (on tansu the
                    # answer may be short of the end, but it passes ``position`` when anything came).
                    end = self._calls.call(
                        f"read end of {topic!r} partition {partition}",
                        lambda: self._consumer.get_watermark_offsets(tp, timeout=self._calls.timeout_s),
                    )[1]
                if position >= max(fetched_end, end or 0, appended):
                    return result
            now = time.monotonic()
            deadline = deadline or now + self._calls.timeout_s
            if now > deadline:
                raise self._calls.mark_down(f"read {topic!r} partition {partition}: no records within the timeout")
            self._fetch(min(0.1, deadline - now), (topic, partition))

    def _stream(self, topic: str, partition: int, offset: int) -> _Stream:
        key = (topic, partition)
        stream = self._streams.get(key)
        if stream is None:
            if len(self._streams) >= MAX_STREAMS:
                (old_topic, old_partition), _ = self._streams.popitem(last=False)
                self._consumer.incremental_unassign([TopicPartition(old_topic, old_partition)])
            self._consumer.incremental_assign([TopicPartition(topic, partition, offset)])
            stream = self._streams[key] = _Stream(fetched=offset, next=offset)
        elif stream.next != offset:
            self._consumer.seek(TopicPartition(topic, partition, offset))
            stream.buffer.clear()
            stream.fetched = stream.next = offset
        self._streams.move_to_end(key)
        return stream

    def _position(self, tp: TopicPartition) -> int:
        """Where the consumer stands in the partition: past control records too, unlike ``fetched``."""
        [answer] = self._consumer.position([tp])
        return int(answer.offset) if answer.offset != _NO_OFFSET else 0

    def _fetch(self, timeout_s: float, reading: tuple[str, int] | None) -> None:
        """Consume what librdkafka has fetched into the partitions' buffers; pause full ones. Waits up to
        ``timeout_s`` for the first record only: ``consume(n, timeout)`` returns after n records or the whole
        timeout, so asking for many at once made a read of a record just written wait the full timeout."""
        raws = self._consumer.consume(FETCH_RECORDS, timeout=0)
        if not raws:
            raws = self._consumer.consume(1, timeout=timeout_s)
            if raws:
                raws += self._consumer.consume(FETCH_RECORDS - 1, timeout=0)
        key: tuple[str, int] | None = None
        stream: _Stream | None = None
        for raw in raws:
            error = raw.error()
            if error is not None:
                if error.fatal() or error.code() in MISSING_TOPIC:
                    raise KafkaException(error)
                log.debug("consumer: %s", error.str())
                continue
            topic, partition = raw.topic() or "", raw.partition() or 0
            if key is None or partition != key[1] or topic != key[0]:  # records come in runs of a partition
                key = (topic, partition)
                stream = self._streams.get(key)
            offset = raw.offset() or 0
            if stream is None or offset < stream.fetched:
                continue  # an unassigned partition, or fetched before a seek
            stream.buffer.append(raw)
            stream.fetched = offset + 1
            if len(stream.buffer) >= STREAM_BUFFER and not stream.paused and key != reading:
                self._consumer.pause([TopicPartition(*key)])
                stream.paused = True


def _offset_and_key(
    _raw: KafkaMessage, _topic: str, _partition: int, offset: int, key: bytes | None, _value: bytes
) -> tuple[int, bytes | None]:
    return offset, key


def _message(raw: KafkaMessage, topic: str, partition: int, offset: int, key: bytes | None, value: bytes) -> Message:
    """``raw`` as the port's message; its topic, partition and offset as the caller has them already (each of
    librdkafka's getters makes a new Python object, per record read)."""
    # A list of (name, bytes | None) pairs: librdkafka never hands back the dict form producers may use.
    pairs: list[tuple[str, Any]] | None = raw.headers()  # type: ignore[assignment]
    headers: Headers = tuple((name, data or b"") for name, data in pairs) if pairs else ()
    return Message(topic, partition, offset, key, value, headers, raw.timestamp()[1])
