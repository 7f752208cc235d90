"""Key → partition, shared by every adapter so that a key lands in the same partition everywhere."""

from __future__ import annotations

from collections.abc import Sequence
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


def partitions_for(keys: Sequence[bytes], partitions: int) -> list[int]:
    """``partition_for`` of each key, for a batch (one list comprehension, no call per key)."""
    if partitions == 1:
        return [0] * len(keys)
    return [crc32(key) % partitions for key in keys]
