"""Queue formation: records → one message per key → ``Broker.append`` in atomic batches."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Final

from xtreaming.broker import Broker, Record, open_broker
from xtreaming.defaults import DEFAULT_BROKER_URL, DEFAULT_PARTITIONS, MAX_PARTITIONS
from xtreaming.errors import InvalidInput, XtreamingError
from xtreaming.keys import key_problem
from xtreaming.seen_keys import SeenKeys
from xtreaming.topics import TopicName

#: One append per this many records: large enough to amortize a transaction, small enough to stream.
DEFAULT_BATCH_SIZE: Final = 1000
#: How many duplicate keys a report names (it counts them all).
DUPLICATE_SAMPLES: Final = 10

RecordLike = Record | tuple[bytes | str | None, bytes | str]


@dataclass(slots=True)
class PublishReport:
    """What a publish did: counts, and the first duplicate keys it dropped."""

    topic: str
    published: int = 0
    duplicates: int = 0
    duplicate_samples: list[str] = field(default_factory=list)


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
    ) -> PublishReport:
        """Publish ``records`` to the work topic ``topic``, creating it with its first message.

        With ``dedupe`` (the default) only the first record of each key is published — "one
        message per client" — and later ones are counted in the report. Records are appended in
        atomic batches of ``batch_size``: a failure leaves whole batches, never part of one.
        ``on_batch`` is called after each batch is appended with the number of input records it
        consumed; ``report`` (a new one by default) is filled batch by batch, so a caller that passes
        one knows what was written when this raises.
        Raises InvalidTopicName before anything is written; InvalidInput for a key that is empty or
        longer than ``xtreaming.keys.MAX_KEY_BYTES`` (before its batch is written: earlier batches are).
        """
        TopicName.parse(topic)
        report = PublishReport(topic) if report is None else report
        created = False
        seen = SeenKeys() if dedupe else None
        try:
            for batch in _batches(map(_as_record, records), self.batch_size):
                kept = self._drop_duplicates(batch, seen, report) if seen is not None else batch
                if kept:
                    if not created:  # no topic for a load without a single message
                        self.broker.create_topic(topic, self.partitions)
                        created = True
                    self.broker.append(topic, kept)
                report.published += len(kept)
                if on_batch is not None:
                    on_batch(len(batch))
        finally:
            if seen is not None:
                seen.close()
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
