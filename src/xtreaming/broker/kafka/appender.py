"""Appends to Kafka: one idempotent producer, its delivery reports turned into positions.

``acks=all`` with idempotence: no duplicates from retries, and the order of a batch kept within
each partition. **Atomic** means less than on the embedded log: Kafka has no cross-partition batch
write without transactions, and transactions are not used — tansu 0.6 hands aborted records to
``read_committed`` readers (measured), so they would promise what the test broker cannot show, and
their control records would leave gaps in the offsets. If the process dies in ``append`` (or
``append`` raises), each partition holds a *prefix* of the batch's records for it, never a gap or a
duplicate; an ``append`` that returned is complete. Xtreaming relies on no more: results are
at-least-once, and a producer that sends a failed batch again delivers what had made it twice, like
any at-least-once redelivery.

A record refused for what it is (larger than the producer's ``message.max.bytes``, which librdkafka
checks in ``produce``; or refused by the cluster in its delivery report) is not an outage: the
batch's other records are still appended, and ``RecordRejected`` names the refused ones once they
are confirmed. Callers cut records to ``max_record_bytes`` before appending; this is the safety net.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Final

from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka import Message as KafkaMessage

from xtreaming.broker.kafka.calls import ClusterCalls, is_refused_record
from xtreaming.broker.partitioning import partitions_for
from xtreaming.broker.port import Positions, Record, record_size
from xtreaming.errors import BrokerUnavailable, RecordRejected

#: How much of a refused record's key its error message shows: keys may be as large as the record.
_KEY_PREVIEW: Final = 40
#: Delivery errors about the producer's own identity or sequence, which librdkafka does not always call fatal: that
#: producer fails every later append alike (after a frozen broker came back, seen in a test: every batch of the same
#: producer refused with PRODUCER_FENCED for as long as the test waited), so it is replaced, as after a fatal error.
_PRODUCER_STATE: Final = frozenset(
    {
        KafkaError.PRODUCER_FENCED,
        KafkaError._FENCED,
        KafkaError.INVALID_PRODUCER_EPOCH,
        KafkaError.UNKNOWN_PRODUCER_ID,
        KafkaError.OUT_OF_ORDER_SEQUENCE_NUMBER,
        KafkaError.INVALID_PRODUCER_ID_MAPPING,
    }
)


class KafkaAppender:
    """Appends through one producer, made at once and replaced after a fatal error or one about its own state
    (``_PRODUCER_STATE``); remembers each partition's end as far as its own appends know it (``appended``). At
    once: an idempotent producer holds its first records until it has its producer id, which took about a second
    on tansu (measured), so a coordinator's first results would wait that long, its lock held."""

    def __init__(self, make_producer: Callable[[], Producer], calls: ClusterCalls, max_record_bytes: int) -> None:
        self._make_producer = make_producer
        self._calls = calls
        self.max_record_bytes = max_record_bytes
        self._lock = threading.Lock()
        self._producer: Producer | None = make_producer()
        self._round_robin = itertools.count()
        self._appended: dict[tuple[str, int], int] = {}

    @property
    def appended(self) -> Mapping[tuple[str, int], int]:
        """(topic, partition) → the offset after the last record this instance appended there; kept
        up to date in place (the reader holds on to it)."""
        return self._appended

    def begin(self, topic: str, partitions: int, records: Sequence[Record]) -> Callable[[], Positions]:
        """Hand ``records`` to librdkafka now (``partitions``: the topic's count); the returned function
        waits for the broker's acknowledgements (the round trip a caller can spend on other work), and
        raises ``RecordRejected`` once the others are confirmed when some records were refused."""
        if not records:
            return lambda: Positions([], [])
        self._calls.check()
        chosen = partitions_for([r.key for r in records], partitions, self._round_robin)
        # Each partition's delivery reports, in the order its records were produced: an offset, or for
        # a failed record -n, its failure being failures[n - 1] (reports come in order per partition).
        delivered: dict[int, list[int]] = {}
        failures: list[KafkaError] = []
        #: Records librdkafka refused in ``produce`` (index → why): never sent, no report comes.
        refused: dict[int, str] = {}

        def on_delivery(error: KafkaError | None, message: KafkaMessage) -> None:
            if error is not None:
                failures.append(error)
                delivered.setdefault(message.partition() or 0, []).append(-len(failures))
            else:
                delivered.setdefault(message.partition() or 0, []).append(message.offset() or 0)

        producer = self._producing()
        produce = producer.produce
        for index, (record, partition) in enumerate(zip(records, chosen, strict=True)):
            headers: list[tuple[str, str | bytes | None]] | None = list(record.headers) if record.headers else None
            while True:
                try:
                    produce(topic, record.value, record.key, partition, on_delivery, headers=headers)
                    break
                except BufferError:  # the local queue is full: let deliveries drain it
                    producer.poll(0.05)
                except KafkaException as exc:
                    if not is_refused_record(exc.args[0]):
                        raise self._calls.translate(exc.args[0], f"append to topic {topic!r}") from exc
                    refused[index] = self._why(record, exc.args[0])
                    break

        def confirmed() -> Positions:
            self._flush(producer, topic, len(records) - len(refused), delivered, failures)
            if failures or refused:
                raise self._rejected(topic, records, chosen, delivered, failures, refused)
            for p, offsets in delivered.items():
                self._appended[(topic, p)] = max(self._appended.get((topic, p), 0), offsets[-1] + 1)
            ends = {p: iter(offsets) for p, offsets in delivered.items()}
            return Positions(chosen, [next(ends[p]) for p in chosen])

        return confirmed

    def close(self) -> None:
        """Wait a little for records still queued: their appends may yet be confirmed."""
        if self._producer is not None:
            self._producer.flush(min(self._calls.timeout_s, 5.0))

    def _producing(self) -> Producer:
        with self._lock:
            if self._producer is None:
                self._producer = self._make_producer()
            return self._producer

    def _flush(
        self, producer: Producer, topic: str, total: int, delivered: dict[int, list[int]], failures: list[KafkaError]
    ) -> None:
        timeout_s = self._calls.timeout_s
        deadline = time.monotonic() + timeout_s
        while sum(map(len, delivered.values())) < total:  # failed records have their report there too
            left = deadline - time.monotonic()
            if left <= 0:
                producer.purge(in_queue=True, in_flight=False, blocking=False)  # not sent yet: never will be
                self._calls.mark_down(f"append to topic {topic!r}: not confirmed within {timeout_s:g} s")
                raise BrokerUnavailable(
                    f"kafka {self._calls.servers}: append to topic {topic!r}: "
                    f"{total - sum(map(len, delivered.values()))} of {total} records not confirmed within "
                    f"{timeout_s:g} s{self._calls.last_error_note()}"
                )
            producer.flush(min(left, 1.0))
        for error in failures:
            if error.fatal() or not is_refused_record(error):
                if error.fatal() or error.code() in _PRODUCER_STATE:
                    self._producer = None  # it would fail every later append the same way: replaced
                raise self._calls.translate(
                    error, f"append to topic {topic!r}: {len(failures)} of {total} records failed"
                )
        self._calls.answered()

    def _rejected(
        self,
        topic: str,
        records: Sequence[Record],
        chosen: Sequence[int],
        delivered: dict[int, list[int]],
        failures: list[KafkaError],
        refused: dict[int, str],
    ) -> RecordRejected:
        """The error for a batch of which some records were refused (by librdkafka or the cluster) and
        every other one is confirmed; the ends this appender knows move past the confirmed ones."""
        for p, offsets in delivered.items():
            appended = [offset for offset in offsets if offset >= 0]
            if appended:
                self._appended[(topic, p)] = max(self._appended.get((topic, p), 0), appended[-1] + 1)
        rejected = dict(refused)
        reports = {p: iter(offsets) for p, offsets in delivered.items()}
        for index, partition in enumerate(chosen):
            if index not in refused and (report := next(reports[partition])) < 0:
                rejected[index] = self._why(records[index], failures[-report - 1])
        rejected = dict(sorted(rejected.items()))
        first, why = next(iter(rejected.items()))
        key = records[first].key
        shown = "none" if key is None else repr(key[:_KEY_PREVIEW]) + ("…" if len(key) > _KEY_PREVIEW else "")
        return RecordRejected(
            f"kafka {self._calls.servers}: append to topic {topic!r}: {len(rejected)} of {len(records)} records "
            f"refused, the others appended; the first, record {first} (key {shown}): {why}",
            rejected,
        )

    def _why(self, record: Record, error: KafkaError) -> str:
        """librdkafka's reason, the record's size, and for a size refusal the producer's limit."""
        why = f"{error.name()}: {error.str()} (a record of {record_size(record):,} bytes"
        if error.code() == KafkaError.MSG_SIZE_TOO_LARGE:
            why += f"; the producer's message.max.bytes is {self.max_record_bytes:,}"
        return why + ")"
