"""The broker port: the contract every log adapter (embedded SQLite, Kafka) implements faithfully.

Semantics are Kafka's, reduced to what Xtreaming needs: a topic has a fixed number of
partitions; each partition is an append-only sequence of records whose offsets start at 0 and
strictly increase; a record's partition comes from its key (same key → same partition, for ever);
consumer groups keep one committed offset per partition ("the next offset to process").

Offsets are dense (every offset below the end holds a record) on the embedded log only. On Kafka
they may skip: other clients' transactions leave control records, which take offsets, and
compaction removes records. So callers continue a read after the last offset they got, and never
count records by subtracting offsets.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from re import Pattern
from typing import Final, NamedTuple, Protocol, overload

Headers = tuple[tuple[str, bytes], ...]

#: A record's framing at its largest in Kafka's record format v2 (length, attributes, timestamp and
#: offset deltas, key and value lengths, header count: varints at their widest), as librdkafka counts
#: it against ``message.max.bytes``.
RECORD_OVERHEAD_BYTES: Final = 36


@dataclass(slots=True)
class Record:
    """What a producer appends: the key is the client id (CPF); the value is opaque bytes.

    Treat it as immutable. Not ``frozen``: the coordinator builds one per finished message (its
    ACK), and a frozen dataclass's ``__init__`` takes more than twice as long (measured).
    """

    key: bytes | None
    value: bytes
    headers: Headers = field(default=())


def record_size(record: Record) -> int:
    """The bytes ``record`` counts for against ``Broker.max_record_bytes``: its key, value and headers
    (each name and value with their varint lengths) and its framing, as librdkafka measures a record
    before accepting it (a record fits when this is at most the limit)."""
    key = record.key
    size = RECORD_OVERHEAD_BYTES + len(record.value) + (0 if key is None else len(key))
    for name, value in record.headers:
        name_bytes = len(name.encode())
        size += name_bytes + len(value) + _varint_bytes(name_bytes) + _varint_bytes(len(value))
    return size


def _varint_bytes(length: int) -> int:
    """The width of a length in Kafka's zigzag varints: 7 bits a byte, of twice the number."""
    return max(1, ((2 * length).bit_length() + 6) // 7)


class Position(NamedTuple):
    """Where an appended record landed (a tuple: one is built per appended record, so it is cheap)."""

    partition: int
    offset: int


class Positions(Sequence[Position]):
    """The positions of an appended batch, built on access: most producers only count them."""

    __slots__ = ("_offsets", "_partitions")

    def __init__(self, partitions: Sequence[int], offsets: Sequence[int]) -> None:
        self._partitions = partitions
        self._offsets = offsets

    def __len__(self) -> int:
        return len(self._offsets)

    @overload
    def __getitem__(self, index: int) -> Position: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Position]: ...
    def __getitem__(self, index: int | slice) -> Position | Sequence[Position]:
        if isinstance(index, slice):
            return Positions(self._partitions[index], self._offsets[index])
        return Position(self._partitions[index], self._offsets[index])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Positions({list(self)!r})"


@dataclass(slots=True)
class Message:
    """A record as read back from the log. Treat it as immutable.

    Not ``frozen``: one is built per record read, and a frozen dataclass's ``__init__`` made the
    embedded log's reads 40% slower (measured); nothing in Xtreaming mutates a message.
    """

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: Headers
    timestamp_ms: int


class Broker(Protocol):
    """A partitioned, durable log with consumer-group offsets.

    Every method may raise ``BrokerUnavailable`` when the log cannot be reached. Methods that
    name a topic raise ``TopicNotFound`` when it does not exist, and ``PartitionNotFound`` for a
    partition outside ``range(partition_count(topic))``. A record the broker refuses for what it is
    raises ``RecordRejected`` instead, which never means the broker is down.
    """

    @property
    def max_record_bytes(self) -> int | None:
        """The largest ``record_size`` an append takes, or None when the log sets no limit (the
        embedded log). On Kafka, the producer's ``message.max.bytes`` (librdkafka's default 1,000,000,
        or the URL's setting); a cluster whose own limit is lower refuses records below it, which
        ``append`` reports as ``RecordRejected`` too."""
        ...

    @property
    def local(self) -> bool:
        """Whether the log answers from this machine, holding up no other call: ``end_offsets_of`` of a few topics
        in microseconds while nothing was appended, a read in a local query. Then a caller may poll the ends
        every few milliseconds (the coordinator watches its urgent queues so: ``coordinator/log_watch.py``) and
        read while others wait for it (the coordinator tops up a short queue under its lock). True on the
        embedded log; False on Kafka, where each call is a round trip to the cluster, which the coordinator
        never waits for holding its lock."""
        ...

    def create_topic(self, topic: str, partitions: int) -> int:
        """Create ``topic`` with ``partitions`` partitions unless it exists.

        Returns the topic's partition count (the existing one when it already existed: partition
        counts never change, or keys would move). Raises ``ValueError`` for ``partitions < 1``.
        """
        ...

    def list_topics(self, pattern: Pattern[str] | None = None) -> list[str]:
        """Names of existing topics, sorted; with ``pattern``, only names it matches in full."""
        ...

    def partition_count(self, topic: str) -> int:
        """Number of partitions of ``topic``."""
        ...

    def append(self, topic: str, records: Sequence[Record]) -> Sequence[Position]:
        """Append ``records``; once this returns, all of them are in the log.

        After a crash mid-append, the embedded log holds all of them or none (one transaction);
        Kafka keeps, in each partition, a prefix of the batch's records for it: none skipped, none
        twice (no transactions: ``xtreaming.broker.kafka.appender`` says why).

        A record with a key goes to ``partition_for(key, partition_count)``; records without a
        key are spread round-robin. Within a partition, records keep their order in
        ``records`` and get increasing offsets (consecutive on the embedded log; on Kafka, records
        of other writers may come between). Returns one position per record, in order.

        Raises ``RecordRejected`` naming the records the broker refused for what they are (larger
        than ``max_record_bytes``, or refused by the cluster): every other record of the batch is in
        the log, each partition's in their order, and the broker is not reported down.
        """
        ...

    def begin_append(self, topic: str, records: Sequence[Record]) -> Callable[[], Sequence[Position]]:
        """``append``, in two steps: start it, and later call what this returns to wait until the
        records are appended and get their positions (same guarantees; an error may come from
        either call). Lets a caller do other work while the batch is confirmed: Kafka's
        acknowledgements, or the embedded log's commit of a large batch (a small one commits at once)."""
        ...

    def read(
        self, topic: str, partition: int, offset: int, max_records: int = 1000, max_bytes: int = 1 << 20
    ) -> list[Message]:
        """Read records of one partition from ``offset`` on, in offset order.

        The first record returned is the first one at or after ``offset`` (on Kafka its offset may
        be larger: offsets skip). Stops at ``max_records`` records or once ``max_bytes`` of values
        and keys are reached (at least one record is returned when one exists, however large).
        Reading at or past the end returns ``[]``; a negative offset raises ``ValueError``.
        """
        ...

    def read_keys(
        self, topic: str, partition: int, offset: int, max_records: int = 1000
    ) -> list[tuple[int, bytes | None]]:
        """The ``(offset, key)`` of the records ``read`` would return (no limit of bytes), for a reader that needs
        only keys and reads ahead of the partition's other reader (the coordinator's scout of one message per
        key). Neither disturbs the other: on Kafka it reads through a consumer of its own (one consumer reading
        a partition at two places would seek back and forth, fetching again at each turn), and it makes no
        message of what it reads."""
        ...

    def end_offsets(self, topic: str) -> dict[int, int]:
        """For each partition, its end (the high watermark): past every record it holds, and reading
        from it returns ``[]``. On the embedded log, the offset the next appended record will get
        and the partition's record count; on Kafka, the last stable offset, which may also be past
        control records (so not a count)."""
        ...

    def end_offsets_of(self, topics: Iterable[str]) -> dict[str, dict[int, int]]:
        """``end_offsets`` of several topics in one call: the coordinator polls every queue often."""
        ...

    def committed(self, group: str, topic: str) -> dict[int, int]:
        """The group's committed offsets per partition; partitions never committed are absent."""
        ...

    def commit(self, group: str, topic: str, offsets: Mapping[int, int]) -> None:
        """Durably store ``offsets`` (partition → next offset to process) for ``group``, atomically."""
        ...

    def close(self) -> None:
        """Release connections; the broker is unusable afterwards."""
        ...
