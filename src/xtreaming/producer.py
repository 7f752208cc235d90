"""Queue formation: records → one message per key → ``Broker.append`` in atomic batches; and, when asked, the
wait for each message's outcome, read from the topic's ``.ACK`` records."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Final

from xtreaming.broker import Broker, Position, Record, open_broker
from xtreaming.defaults import (
    DEFAULT_BROKER_URL,
    DEFAULT_PARTITIONS,
    MAX_PARTITIONS,
    MAX_PUBLISH_WAIT_S,
    MAX_WAITED_MESSAGES,
)
from xtreaming.errors import InvalidInput, PartitionNotFound, TopicNotFound, XtreamingError
from xtreaming.keys import key_problem
from xtreaming.seen_keys import SeenKeys
from xtreaming.topics import TopicName
from xtreaming.wire.acks import MessageOutcome, parse_ack
from xtreaming.wire.message_id import message_id

#: One append per this many records: large enough to amortize a transaction, small enough to stream.
DEFAULT_BATCH_SIZE: Final = 1000
#: How many duplicate keys a report names (it counts them all).
DUPLICATE_SAMPLES: Final = 10
#: How often a wait reads the ``.ACK`` records written since it last read, while some outcome is missing.
ACK_READ_INTERVAL_S: Final = 0.05

RecordLike = Record | tuple[bytes | str | None, bytes | str]


@dataclass(slots=True)
class PublishReport:
    """What a publish did: counts, and the first duplicate keys it dropped; with a wait, the outcomes."""

    topic: str
    published: int = 0
    duplicates: int = 0
    duplicate_samples: list[str] = field(default_factory=list)
    #: With ``wait_s``: each message's final outcome, in the order published.
    outcomes: list[MessageOutcome] = field(default_factory=list)
    #: With ``wait_s``: the ids (``topic/partition/offset``) of the messages not finished when the wait ended.
    running: list[str] = field(default_factory=list)

    @property
    def timed_out(self) -> bool:
        """The wait ended with some message still running (it goes on, and is ACKed as usual)."""
        return bool(self.running)


class Producer:
    """Publishes records to work topics, one message per key.

    Library code: it takes what it needs as arguments and reads no environment (an entry point passes
    ``settings.broker_url`` and ``settings.default_partitions`` when it has ``Settings``).

    >>> with Producer("sqlite:///.xtreaming/log.db") as producer:
    ...     producer.publish("MULTCOB02.1186.IMPORTACAO.MAILING", [("12345678901", "<cliente/>")])
    """

    def __init__(
        self,
        broker: Broker | str = DEFAULT_BROKER_URL,
        *,
        partitions: int = DEFAULT_PARTITIONS,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        """``broker``: an open broker (left open by ``close``) or a URL to open (closed by ``close``);
        ``partitions``: of a topic ``publish`` creates, 1 to ``MAX_PARTITIONS`` (as the CLI and the API).
        Raises ValueError for a size out of its range."""
        if not 1 <= partitions <= MAX_PARTITIONS:
            raise ValueError(f"partitions must be from 1 to {MAX_PARTITIONS:,}, got {partitions:,}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self._owns_broker = isinstance(broker, str)
        self.broker = open_broker(broker) if isinstance(broker, str) else broker
        self.partitions = partitions
        self.batch_size = batch_size

    def publish(
        self,
        topic: str,
        records: Iterable[RecordLike],
        *,
        dedupe: bool = True,
        on_batch: Callable[[int], None] | None = None,
        report: PublishReport | None = None,
        wait_s: float | None = None,
    ) -> PublishReport:
        """Publish ``records`` to the work topic ``topic``, creating it with its first message.

        With ``dedupe`` (the default) only the first record of each key is published — "one
        message per client" — and later ones are counted in the report. Records are appended in
        atomic batches of ``batch_size``: a failure leaves whole batches, never part of one.
        ``on_batch`` is called after each batch is appended with the number of input records it
        consumed; ``report`` (a new one by default) is filled batch by batch, so a caller that passes
        one knows what was written when this raises.

        With ``wait_s`` (more than 0, at most ``MAX_PUBLISH_WAIT_S``), then wait until each message published
        has its ACK record (read from ``<topic>.ACK``, which the coordinator writes once a message is finished:
        ok, dead or duplicate), or ``wait_s`` seconds have passed since the last append: the report's
        ``outcomes`` and ``running`` say which. At most ``MAX_WAITED_MESSAGES`` messages may be waited on.

        Raises InvalidTopicName before anything is written, and ValueError for a ``wait_s`` out of its range;
        InvalidInput for a key that is empty or longer than ``xtreaming.keys.MAX_KEY_BYTES``, or for a message
        past ``MAX_WAITED_MESSAGES`` with ``wait_s`` (before its batch is written: earlier batches are).
        """
        TopicName.parse(topic)
        if wait_s is not None and not 0 < wait_s <= MAX_PUBLISH_WAIT_S:
            raise ValueError(f"wait_s must be more than 0 and at most {MAX_PUBLISH_WAIT_S:g} seconds, got {wait_s:g}")
        report = PublishReport(topic) if report is None else report
        created = False
        seen = SeenKeys() if dedupe else None
        watch = _AckWatch(self.broker, topic) if wait_s is not None else None  # before the first append
        try:
            for batch in _batches(map(_as_record, records), self.batch_size):
                kept = self._drop_duplicates(batch, seen, report) if seen is not None else batch
                if kept:
                    if watch is not None and watch.count + len(kept) > MAX_WAITED_MESSAGES:
                        raise InvalidInput(
                            f"a publish may wait for at most {MAX_WAITED_MESSAGES:,} messages; messages from "
                            f"{watch.count + 1:,} on were not published (the first {watch.count:,} were)"
                        )
                    if not created:  # no topic for a load without a single message
                        self.broker.create_topic(topic, self.partitions)
                        created = True
                    positions = self.broker.append(topic, kept)
                    if watch is not None:
                        watch.add(positions)
                report.published += len(kept)
                if on_batch is not None:
                    on_batch(len(batch))
        finally:
            if seen is not None:
                seen.close()
        if watch is not None and wait_s is not None:
            report.outcomes, report.running = watch.wait(wait_s)
        return report

    @staticmethod
    def _drop_duplicates(batch: list[Record], seen: SeenKeys, report: PublishReport) -> list[Record]:
        keyed = [r for r in batch if r.key is not None]
        flags = iter(seen.add([r.key for r in keyed if r.key is not None]))
        kept = []
        for record in batch:
            if record.key is None or next(flags):
                kept.append(record)
                continue
            report.duplicates += 1
            if len(report.duplicate_samples) < DUPLICATE_SAMPLES:
                report.duplicate_samples.append(record.key.decode("utf-8", "replace"))
        return kept

    def close(self) -> None:
        if self._owns_broker:
            self.broker.close()

    def __enter__(self) -> Producer:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _as_record(item: RecordLike) -> Record:
    if isinstance(item, Record):
        record = item
    else:
        try:
            key, value = item
        except (TypeError, ValueError) as exc:
            raise XtreamingError(f"expected a Record or a (key, value) pair, got {item!r:.80}") from exc
        record = Record(
            key.encode() if isinstance(key, str) else key, value.encode() if isinstance(value, str) else value
        )
    if record.key is not None and (problem := key_problem(record.key)) is not None:
        raise InvalidInput(f"key {record.key[:40]!r}{'…' if len(record.key) > 40 else ''} {problem}")
    return record


def _batches(records: Iterator[Record], size: int) -> Iterator[list[Record]]:
    while batch := list(islice(records, size)):
        yield batch


class _AckWatch:
    """The ``.ACK`` records of a publish's messages, read from where the ``.ACK`` topic ended before the first
    append (from its start when it did not exist yet: the coordinator makes it with its first result)."""

    def __init__(self, broker: Broker, topic: str) -> None:
        self.broker = broker
        self.topic = topic
        self.ack = TopicName.parse(topic).ack
        self.positions: list[Position] = []
        try:
            self.next_offsets = broker.end_offsets(self.ack)
        except TopicNotFound:
            self.next_offsets = {}

    @property
    def count(self) -> int:
        return len(self.positions)

    def add(self, positions: Sequence[Position]) -> None:
        self.positions += positions

    def wait(self, wait_s: float) -> tuple[list[MessageOutcome], list[str]]:
        """Read the ACK records until every message has one or ``wait_s`` passed: the outcomes found and the
        ids still running, each in the order published."""
        deadline = time.monotonic() + wait_s
        missing = set(self.positions)
        found: dict[Position, MessageOutcome] = {}
        while True:
            self._read(missing, found)
            left_s = deadline - time.monotonic()
            if not missing or left_s <= 0:
                break
            time.sleep(min(ACK_READ_INTERVAL_S, left_s))
        outcomes = [found[p] for p in self.positions if p in found]
        return outcomes, [message_id(self.topic, *p) for p in self.positions if p not in found]

    def _read(self, missing: set[Position], found: dict[Position, MessageOutcome]) -> None:
        """Read every ACK record written since the last read; the first one of each awaited message wins."""
        try:
            partitions = self.broker.partition_count(self.ack)
        except TopicNotFound:  # nothing finished yet
            return
        for partition in range(partitions):
            offset = self.next_offsets.get(partition, 0)
            try:
                while messages := self.broker.read(self.ack, partition, offset):
                    for message in messages:
                        acked = parse_ack(message.value)
                        if acked is not None and acked.topic == self.topic:
                            where = Position(acked.partition, acked.offset)
                            if where in missing:
                                missing.discard(where)
                                found[where] = acked.outcome
                    offset = messages[-1].offset + 1
            except PartitionNotFound:  # a topic made a moment ago, not in the client's metadata yet (Kafka)
                pass
            self.next_offsets[partition] = offset
