"""Key → partition, shared by every adapter so that a key lands in the same partition everywhere."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from zlib import crc32


def partition_for(key: bytes, partitions: int) -> int:
    """CRC-32 of the key modulo the partition count.

    This is librdkafka's ``consistent`` partitioner (the default for keyed messages of
    librdkafka-based clients such as Confluent.Kafka for .NET), so records produced by the
    existing CRM and by Xtreaming agree on the partition of a client.
    """
    if partitions == 1:
        return 0
    return crc32(key) % partitions


def partitions_for(keys: Sequence[bytes | None], partitions: int, spread: Iterator[int]) -> list[int]:
    """The partition of each record of a batch: ``partition_for`` of its key; keyless records
    round-robin, taking turns from ``spread`` (an adapter's ``itertools.count()``)."""
    if partitions == 1:
        return [0] * len(keys)
    if None not in keys:  # the usual batch: one comprehension, no call per key
        return [crc32(key) % partitions for key in keys]  # type: ignore[arg-type]  # no None, as checked
    return [crc32(key) % partitions if key is not None else next(spread) % partitions for key in keys]
