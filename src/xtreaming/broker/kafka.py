"""The Kafka adapter on confluent-kafka (librdkafka): the only module that imports ``confluent_kafka``.

What the port's words mean here (the contract suite runs against tansu to prove it):

* **append** goes through one idempotent producer (``acks=all``): no duplicates from retries, the
  order of a batch kept within each partition, dense offsets. Partitions are computed here with
  ``partition_for`` (librdkafka's ``consistent`` partitioner, so the CRM's .NET producer agrees).
  **Atomic** means less than on the embedded log: Kafka has no cross-partition batch write
  without transactions, and transactions are not used — tansu 0.6 hands aborted records to
  ``read_committed`` readers (measured), so they would promise what the test broker cannot show,
  and their control records would leave gaps in the offsets. If the process dies in ``append``
  (or ``append`` raises), each partition holds a *prefix* of the batch's records for it, never a
  gap or a duplicate; an ``append`` that returned is complete. Xtreaming relies on no more: results
  are at-least-once, and a producer that sends a failed batch again delivers what had made it twice,
  like any at-least-once redelivery.
* **read** uses one consumer with ``assign()`` and ``seek`` (never a group join: no rebalance
  waits). Partitions stay assigned between reads so the next read is already fetched; a partition
  whose unread buffer is full is paused (back-pressure), and the least recently read partitions
  are unassigned past ``MAX_STREAMS``. Offsets read may skip (records of other clients'
  transactions leave control records; compaction removes records): readers accept gaps.
* **end_offsets** are the last stable offsets (``read_committed``) of all partitions asked, in one
  ListOffsets request per leader.
* **committed/commit** use the group's offsets without joining it (a standalone consumer per group):
  the coordinator commits its ledger watermarks; the finished-above-watermark set lives in the
  coordinator's state store, not in commit metadata.
* Outages: every call waits at most ``timeout_s``. After one call finds the cluster unreachable,
  calls fail at once with the same ``BrokerUnavailable`` and a cheap probe asks again every
  ``PROBE_INTERVAL_S``, so a caller holding a lock (the coordinator) is not stuck in timeouts.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from re import Pattern
from typing import Any, Final, TypeVar

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka import Message as KafkaMessage
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from xtreaming.broker.kafka_config import KafkaConfig
from xtreaming.broker.partitioning import partitions_for
from xtreaming.broker.port import Headers, Message, Positions, Record
from xtreaming.errors import BrokerUnavailable, InvalidBrokerUrl, PartitionNotFound, TopicNotFound, XtreamingError

log = logging.getLogger("xtreaming.broker.kafka")

#: Partitions kept assigned to the reading consumer; the least recently read are unassigned past this.
MAX_STREAMS: Final = 256
#: At most this many partitions get their end checked with a fetch per ``end_offsets_of`` call (the
#: others in later calls): checking assigns them, and more than ``MAX_STREAMS`` would evict each other.
MAX_CHECKS: Final = 64
#: A partition with this many fetched, unread records is paused until it is read (bounded memory).
STREAM_BUFFER: Final = 4096
#: While the cluster is known down, calls fail at once; one cheap probe per interval asks again.
PROBE_INTERVAL_S: Final = 1.0
PROBE_TIMEOUT_S: Final = 0.5
#: librdkafka's "offset not set" (OFFSET_INVALID) in committed() and position() answers.
_NO_OFFSET: Final = -1001
_OFFSET_END: Final = -1
_MISSING_TOPIC: Final = frozenset({KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC})
#: Measured on tansu (KAFKA-NOTES.md): without these, a partition's next fetch waits a second.
_READER_DEFAULTS: Final = {"fetch.queue.backoff.ms": "10", "fetch.wait.max.ms": "10"}

T = TypeVar("T")


class KafkaBroker:
    """The broker port on a Kafka cluster (see the module docstring for what each method means here)."""

    def __init__(self, config: KafkaConfig) -> None:
        self.config = config
        self.timeout_s = config.timeout_s
        self._base: dict[str, Any] = {
            **config.settings,
            "bootstrap.servers": config.servers,
            "logger": log,
            "error_cb": self._on_error,
        }
        self._lock = threading.Lock()
        self._partitions: dict[str, int] = {}
        #: Each partition's end as far as this instance's own appends know it.
        self._appended: dict[tuple[str, int], int] = {}
        self._round_robin = itertools.count()
        self._last_error: str | None = None
        self._down: str | None = None
        self._next_probe = 0.0
        self._closed = False
        self._producer: Producer | None = None
        self._groups: dict[str, Consumer] = {}
        self._admin = self._make(AdminClient, dict(self._base))
        self._reader = _Reader(self._consumer(f"xtreaming-reader-{uuid.uuid4().hex}", _READER_DEFAULTS), self)
        self._call("reach the cluster", lambda: self._admin.list_topics(timeout=self.timeout_s))

    @classmethod
    def from_url(cls, url: str) -> KafkaBroker:
        """``kafka://host1:9092,host2:9092[?librdkafka settings, config_file, timeout_s, replication_factor]``."""
        return cls(KafkaConfig.from_url(url))

    # -- topics ---------------------------------------------------------------------------------

    def create_topic(self, topic: str, partitions: int) -> int:
        if partitions < 1:
            raise ValueError(f"topic {topic!r}: partitions must be at least 1, got {partitions}")
        known = self._partitions.get(topic) or self._lookup(topic)
        if known is not None:
            return known
        new = NewTopic(topic, num_partitions=partitions, replication_factor=self.config.replication_factor)

        def create() -> None:
            future = self._admin.create_topics([new], request_timeout=self.timeout_s)[topic]
            try:
                future.result(timeout=self.timeout_s)
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:  # another creator won the race
                    raise

        self._call(f"create topic {topic!r}", create)
        deadline = time.monotonic() + self.timeout_s
        while (count := self._lookup(topic)) is None:  # created: wait until metadata shows it
            if time.monotonic() > deadline:
                raise BrokerUnavailable(f"kafka {self.config.servers}: topic {topic!r} created but not visible yet")
            time.sleep(0.01)
        return count

    def list_topics(self, pattern: Pattern[str] | None = None) -> list[str]:
        metadata = self._call("list topics", lambda: self._admin.list_topics(timeout=self.timeout_s))
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

    # -- records --------------------------------------------------------------------------------

    def append(self, topic: str, records: Sequence[Record]) -> Positions:
        return self.begin_append(topic, records)()

    def begin_append(self, topic: str, records: Sequence[Record]) -> Callable[[], Positions]:
        """Hands the records to librdkafka now; the returned function waits for the broker's
        acknowledgements (the round trip a caller can spend on other work)."""
        count = self.partition_count(topic)
        if not records:
            return lambda: Positions([], [])
        self._fail_fast()
        partitions = partitions_for([r.key for r in records], count, self._round_robin)
        delivered: dict[int, list[int]] = {}
        failures: list[KafkaError] = []

        def on_delivery(error: KafkaError | None, message: KafkaMessage) -> None:
            if error is not None:
                failures.append(error)
            else:
                delivered.setdefault(message.partition() or 0, []).append(message.offset() or 0)

        producer = self._producing()
        produce = producer.produce
        for record, partition in zip(records, partitions, strict=True):
            headers: list[tuple[str, str | bytes | None]] | None = list(record.headers) if record.headers else None
            while True:
                try:
                    produce(topic, record.value, record.key, partition, on_delivery, headers=headers)
                    break
                except BufferError:  # the local queue is full: let deliveries drain it
                    producer.poll(0.05)
                except KafkaException as exc:
                    raise self._translate(exc.args[0], f"append to topic {topic!r}") from exc

        def confirmed() -> Positions:
            self._flush(producer, topic, len(records), delivered, failures)
            for p, offsets in delivered.items():
                self._appended[(topic, p)] = max(self._appended.get((topic, p), 0), offsets[-1] + 1)
            ends = {p: iter(offsets) for p, offsets in delivered.items()}
            return Positions(partitions, [next(ends[p]) for p in partitions])

        return confirmed

    def _flush(
        self, producer: Producer, topic: str, total: int, delivered: dict[int, list[int]], failures: list[KafkaError]
    ) -> None:
        deadline = time.monotonic() + self.timeout_s
        while sum(map(len, delivered.values())) + len(failures) < total:
            left = deadline - time.monotonic()
            if left <= 0:
                producer.purge(in_queue=True, in_flight=False, blocking=False)  # not sent yet: never will be
                self._mark_down(f"append to topic {topic!r}: not confirmed within {self.timeout_s:g} s")
                raise BrokerUnavailable(
                    f"kafka {self.config.servers}: append to topic {topic!r}: "
                    f"{total - sum(map(len, delivered.values()))} of {total} records not confirmed within "
                    f"{self.timeout_s:g} s{self._last_error_note()}"
                )
            producer.flush(min(left, 1.0))
        if failures:
            error = failures[0]
            if error.fatal():
                self._producer = None  # an idempotent producer in a fatal state must be replaced
            raise self._translate(error, f"append to topic {topic!r}: {len(failures)} of {total} records failed")
        self._up()

    def read(
        self, topic: str, partition: int, offset: int, max_records: int = 1000, max_bytes: int = 1 << 20
    ) -> list[Message]:
        if offset < 0:
            raise ValueError(f"offset must be >= 0, got {offset}")
        self._check_partition(topic, partition)
        if max_records < 1:
            return []
        self._fail_fast()
        return self._reader.read(topic, partition, offset, max_records, max_bytes)

    def end_offsets(self, topic: str) -> dict[int, int]:
        return self.end_offsets_of([topic])[topic]

    def end_offsets_of(self, topics: Iterable[str]) -> dict[str, dict[int, int]]:
        wanted = [(topic, self.partition_count(topic)) for topic in topics]
        result: dict[str, dict[int, int]] = {topic: {} for topic, _ in wanted}
        asked = [(topic, p) for topic, count in wanted for p in range(count)]
        if asked:
            self._fail_fast()
            for (topic, partition), end in self._reader.ends(asked, self._appended).items():
                result[topic][partition] = end
        return result

    # -- consumer groups ------------------------------------------------------------------------

    def committed(self, group: str, topic: str) -> dict[int, int]:
        count = self.partition_count(topic)
        consumer = self._group(group)
        asked = [TopicPartition(topic, p) for p in range(count)]
        answers = self._call(
            f"read group {group!r} offsets of {topic!r}", lambda: consumer.committed(asked, timeout=self.timeout_s)
        )
        for answer in answers:
            if answer.error is not None:
                raise self._translate(answer.error, f"group {group!r} offsets of {topic!r}")
        return {a.partition: a.offset for a in answers if a.offset >= 0}

    def commit(self, group: str, topic: str, offsets: Mapping[int, int]) -> None:
        for partition, offset in offsets.items():
            self._check_partition(topic, partition)
            if offset < 0:
                raise ValueError(f"topic {topic!r} partition {partition}: committed offset must be >= 0, got {offset}")
        if not offsets:
            return
        consumer = self._group(group)
        asked = [TopicPartition(topic, p, o) for p, o in offsets.items()]
        answers = self._call(
            f"commit group {group!r} offsets of {topic!r}", lambda: consumer.commit(offsets=asked, asynchronous=False)
        )
        for answer in answers or ():
            if answer.error is not None:
                raise self._translate(answer.error, f"commit group {group!r} offsets of {topic!r}")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._producer is not None:
            self._producer.flush(min(self.timeout_s, 5.0))
        self._reader.close()
        for consumer in self._groups.values():
            consumer.close()
        self._groups.clear()

    # -- plumbing -------------------------------------------------------------------------------

    def _lookup(self, topic: str) -> int | None:
        """The topic's partition count from fresh metadata (cached: counts never change), or None."""
        metadata = self._reader.call(
            f"look up topic {topic!r}", lambda consumer: consumer.list_topics(topic, timeout=self.timeout_s)
        )
        meta = metadata.topics.get(topic)
        if meta is None or meta.error is not None or not meta.partitions:
            if meta is not None and meta.error is not None and meta.error.code() not in _MISSING_TOPIC:
                raise self._translate(meta.error, f"look up topic {topic!r}")
            return None
        self._partitions[topic] = len(meta.partitions)
        return self._partitions[topic]

    def _check_partition(self, topic: str, partition: int) -> None:
        count = self.partition_count(topic)
        if not 0 <= partition < count:
            raise PartitionNotFound(f"topic {topic!r} has partitions 0..{count - 1}, not {partition}")

    def _producing(self) -> Producer:
        with self._lock:
            if self._producer is None:
                settings = {
                    "enable.idempotence": True,
                    "acks": "all",
                    "partitioner": "consistent",
                    "allow.auto.create.topics": False,
                    "linger.ms": 1,
                    **self._base,
                }
                self._producer = self._make(Producer, settings)
            return self._producer

    def _group(self, group: str) -> Consumer:
        with self._lock:
            consumer = self._groups.get(group)
            if consumer is None:
                consumer = self._groups[group] = self._consumer(group, {})
            return consumer

    def _consumer(self, group: str, defaults: Mapping[str, str]) -> Consumer:
        settings = {
            **defaults,
            "enable.auto.offset.store": False,
            **self._base,
            "group.id": group,
            "enable.auto.commit": False,
        }
        return self._make(Consumer, settings)

    def _make(self, kind: Callable[[dict[str, Any]], T], settings: dict[str, Any]) -> T:
        try:
            return kind(settings)
        except KafkaException as exc:
            raise InvalidBrokerUrl(
                f"kafka {self.config.servers}: invalid client settings: {exc.args[0].str()}"
            ) from exc

    def _call(self, what: str, call: Callable[[], T]) -> T:
        """Run one blocking client call, failing fast while the cluster is known down; errors translated."""
        self._fail_fast()
        try:
            result = call()
        except KafkaException as exc:
            raise self._translate(exc.args[0], what) from exc
        except TimeoutError as exc:  # an admin future that did not complete in time
            self._mark_down(f"{what}: no answer within {self.timeout_s:g} s")
            raise BrokerUnavailable(self._down or what) from exc
        self._up()
        return result

    def _fail_fast(self) -> None:
        if self._closed:
            raise BrokerUnavailable(f"kafka {self.config.servers}: the broker client is closed")
        if self._down is None:
            return
        if time.monotonic() < self._next_probe:
            raise BrokerUnavailable(self._down)
        try:
            self._admin.list_topics(timeout=PROBE_TIMEOUT_S)
        except KafkaException as exc:
            self._next_probe = time.monotonic() + PROBE_INTERVAL_S  # from the probe's end: callers get turns
            raise BrokerUnavailable(self._down) from exc
        self._up()

    def _mark_down(self, why: str) -> None:
        self._down = f"kafka {self.config.servers} unreachable: {why}{self._last_error_note()}"
        self._next_probe = time.monotonic() + PROBE_INTERVAL_S

    def _up(self) -> None:
        if self._down is not None:
            log.info("kafka %s reachable again", self.config.servers)
        self._down = None
        self._last_error = None

    def _on_error(self, error: KafkaError) -> None:
        """librdkafka's background errors (connection refused, all brokers down): kept for messages."""
        self._last_error = error.str()

    def _last_error_note(self) -> str:
        return f" (last error: {self._last_error})" if self._last_error else ""

    def _translate(self, error: KafkaError | object, what: str) -> XtreamingError:
        """A librdkafka error as ours: missing topic/partition, or the cluster unavailable (remembered)."""
        if not isinstance(error, KafkaError):
            return BrokerUnavailable(f"kafka {self.config.servers}: {what}: {error}")
        code = error.code()
        if code in _MISSING_TOPIC:
            return TopicNotFound(f"{what}: topic does not exist ({error.str()})")
        if code == KafkaError._UNKNOWN_PARTITION:
            return PartitionNotFound(f"{what}: {error.str()}")
        if code in _UNREACHABLE:
            self._mark_down(f"{what}: {error.str()}")
            return BrokerUnavailable(self._down or what)
        return BrokerUnavailable(f"kafka {self.config.servers}: {what}: {error.name()}: {error.str()}")


_UNREACHABLE: Final = frozenset(
    {
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError._TIMED_OUT,
        KafkaError._MSG_TIMED_OUT,
        KafkaError._RESOLVE,
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError.NETWORK_EXCEPTION,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.NOT_COORDINATOR,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.NOT_LEADER_FOR_PARTITION,
    }
)


@dataclass(slots=True)
class _Stream:
    """One assigned partition: records fetched and not yet read, and where fetching stands."""

    buffer: deque[KafkaMessage] = field(default_factory=deque)
    #: The offset after the last record put in ``buffer`` (or where the partition was sought).
    fetched: int = 0
    #: The offset the next read is expected to ask for; another one means a seek.
    next: int = 0
    paused: bool = False


class _Reader:
    """One consumer, assigned (never subscribed) to the partitions recently read; see the module docstring."""

    def __init__(self, consumer: Consumer, broker: KafkaBroker) -> None:
        self._consumer = consumer
        self._broker = broker
        self._lock = threading.Lock()
        self._streams: OrderedDict[tuple[str, int], _Stream] = OrderedDict()
        #: The ListOffsets answer last checked with a fetch, per partition not assigned then.
        self._checked: dict[tuple[str, int], int] = {}

    def call(self, what: str, call: Callable[[Consumer], T]) -> T:
        with self._lock:
            return self._broker._call(what, lambda: call(self._consumer))

    def ends(
        self, asked: Sequence[tuple[str, int]], appended: Mapping[tuple[str, int], int]
    ) -> dict[tuple[str, int], int]:
        """End offsets: the larger of ListOffsets' answer, this instance's appends and the last fetch's
        high watermark. They agree on Kafka; tansu 0.6 answers ListOffsets with the first offset of the
        partition's last record batch plus one (measured), so a partition whose answer moved and that
        no fetch has seen is fetched once (it then stays assigned, and its fetches keep the end fresh).
        """
        with self._lock:
            listed = self._broker._call(
                "read end offsets",
                lambda: self._consumer.offsets_for_times(
                    [TopicPartition(t, p, _OFFSET_END) for t, p in asked], timeout=self._broker.timeout_s
                ),
            )
            ends: dict[tuple[str, int], int] = {}
            unsure: list[tuple[tuple[str, int], int]] = []
            for answer in listed:
                if answer.error is not None:
                    raise self._broker._translate(answer.error, f"end offset of {answer.topic!r} {answer.partition}")
                key = (answer.topic, answer.partition)
                fetched = self._fetched_end(key)
                ends[key] = max(answer.offset, appended.get(key, 0), fetched or 0)
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
        deadline = time.monotonic() + self._broker.timeout_s
        while any(self._fetched_end(key) is None for key, _ in unsure):
            if time.monotonic() > deadline:
                self._broker._mark_down("read end offsets: no fetch answered within the timeout")
                raise BrokerUnavailable(self._broker._down or "kafka: read end offsets: timed out")
            self._fetch(0.01, None)

    def read(self, topic: str, partition: int, offset: int, max_records: int, max_bytes: int) -> list[Message]:
        with self._lock:
            try:
                return self._read(topic, partition, offset, max_records, max_bytes)
            except KafkaException as exc:
                raise self._broker._translate(exc.args[0], f"read {topic!r} partition {partition}") from exc

    def _read(self, topic: str, partition: int, offset: int, max_records: int, max_bytes: int) -> list[Message]:
        stream = self._stream(topic, partition, offset)
        tp = TopicPartition(topic, partition)
        result: list[Message] = []
        size = 0
        end: int | None = None
        deadline: float | None = None
        while True:
            buffer = stream.buffer
            while buffer and len(result) < max_records:
                raw = buffer[0]
                key, value = raw.key(), raw.value() or b""
                size += len(value) + (len(key) if key else 0)
                if size > max_bytes and result:
                    return result
                buffer.popleft()
                stream.next = (raw.offset() or 0) + 1
                result.append(_message(raw, key, value))
            if len(result) >= max_records or size >= max_bytes:
                return result
            if stream.paused:
                self._consumer.resume([tp])
                stream.paused = False
            position = max(stream.fetched, self._position(tp))
            fetched_end = self._fetched_end((topic, partition))
            if fetched_end is not None:  # the first fetch since the assignment answered: it knows the end
                if end is None and position >= max(fetched_end, self._broker._appended.get((topic, partition), 0)):
                    # At the end as last fetched; ask the cluster whether records came since (on tansu the
                    # answer may be short of the end, but it passes ``position`` when anything came).
                    end = self._broker._call(
                        f"read end of {topic!r} partition {partition}",
                        lambda: self._consumer.get_watermark_offsets(tp, timeout=self._broker.timeout_s),
                    )[1]
                if position >= max(fetched_end, end or 0):
                    return result
            now = time.monotonic()
            deadline = deadline or now + self._broker.timeout_s
            if now > deadline:
                self._broker._mark_down(f"read {topic!r} partition {partition}: no records within the timeout")
                raise BrokerUnavailable(self._broker._down or f"kafka: read {topic!r} partition {partition}: timed out")
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
        """Consume what librdkafka has fetched into the partitions' buffers; pause full ones."""
        for raw in self._consumer.consume(1000, timeout=timeout_s):
            error = raw.error()
            if error is not None:
                if error.fatal() or error.code() in _MISSING_TOPIC:
                    raise KafkaException(error)
                log.debug("consumer: %s", error.str())
                continue
            key = (raw.topic() or "", raw.partition() or 0)
            stream = self._streams.get(key)
            if stream is None or (raw.offset() or 0) < stream.fetched:
                continue  # an unassigned partition, or fetched before a seek
            stream.buffer.append(raw)
            stream.fetched = (raw.offset() or 0) + 1
            if len(stream.buffer) >= STREAM_BUFFER and not stream.paused and key != reading:
                self._consumer.pause([TopicPartition(*key)])
                stream.paused = True

    def close(self) -> None:
        with self._lock:
            self._streams.clear()
            self._consumer.close()


def _message(raw: KafkaMessage, key: bytes | None, value: bytes) -> Message:
    # A list of (name, bytes | None) pairs: librdkafka never hands back the dict form producers may use.
    pairs: list[tuple[str, Any]] = raw.headers() or []  # type: ignore[assignment]
    headers: Headers = tuple((name, data or b"") for name, data in pairs)
    return Message(raw.topic() or "", raw.partition() or 0, raw.offset() or 0, key, value, headers, raw.timestamp()[1])
