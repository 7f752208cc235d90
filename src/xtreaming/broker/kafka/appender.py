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
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Mapping, Sequence

from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka import Message as KafkaMessage

from xtreaming.broker.kafka.calls import ClusterCalls
from xtreaming.broker.partitioning import partitions_for
from xtreaming.broker.port import Positions, Record
from xtreaming.errors import BrokerUnavailable


class KafkaAppender:
    """Appends through one producer, made on first use and replaced after a fatal error; remembers
    each partition's end as far as its own appends know it (``appended``)."""

    def __init__(self, make_producer: Callable[[], Producer], calls: ClusterCalls) -> None:
        self._make_producer = make_producer
        self._calls = calls
        self._lock = threading.Lock()
        self._producer: Producer | None = None
        self._round_robin = itertools.count()
        self._appended: dict[tuple[str, int], int] = {}

    @property
    def appended(self) -> Mapping[tuple[str, int], int]:
        """(topic, partition) → the offset after the last record this instance appended there; kept
        up to date in place (the reader holds on to it)."""
        return self._appended

    def begin(self, topic: str, partitions: int, records: Sequence[Record]) -> Callable[[], Positions]:
        """Hand ``records`` to librdkafka now (``partitions``: the topic's count); the returned function
        waits for the broker's acknowledgements (the round trip a caller can spend on other work)."""
        if not records:
            return lambda: Positions([], [])
        self._calls.check()
        chosen = partitions_for([r.key for r in records], partitions, self._round_robin)
        delivered: dict[int, list[int]] = {}
        failures: list[KafkaError] = []

        def on_delivery(error: KafkaError | None, message: KafkaMessage) -> None:
            if error is not None:
                failures.append(error)
            else:
                delivered.setdefault(message.partition() or 0, []).append(message.offset() or 0)

        producer = self._producing()
        produce = producer.produce
        for record, partition in zip(records, chosen, strict=True):
            headers: list[tuple[str, str | bytes | None]] | None = list(record.headers) if record.headers else None
            while True:
                try:
                    produce(topic, record.value, record.key, partition, on_delivery, headers=headers)
                    break
                except BufferError:  # the local queue is full: let deliveries drain it
                    producer.poll(0.05)
                except KafkaException as exc:
                    raise self._calls.translate(exc.args[0], f"append to topic {topic!r}") from exc

        def confirmed() -> Positions:
            self._flush(producer, topic, len(records), delivered, failures)
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
        while sum(map(len, delivered.values())) + len(failures) < total:
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
        if failures:
            error = failures[0]
            if error.fatal():
                self._producer = None  # an idempotent producer in a fatal state must be replaced
            raise self._calls.translate(error, f"append to topic {topic!r}: {len(failures)} of {total} records failed")
        self._calls.answered()
