"""Key → partition must agree with librdkafka's ``consistent`` partitioner: CRC-32 of the key mod partitions.

The expected partitions are derived by hand from published CRC-32 (IEEE 802.3, as zlib and
librdkafka compute it) values, not recomputed with ``zlib`` here:

* ``123456789`` → 0xCBF43926, the standard check value (= 3421780262): its last hex digit gives
  mod 16 = 6, its last byte mod 256 = 0x26 = 38, its last decimal digit mod 10 = 2 and mod 5 = 2,
  its digit sum 35 gives mod 3 = 2 and mod 9 = 8.
* ``a`` → 0xE8B7BE43 (= 3904355907): mod 16 = 3, mod 256 = 67, mod 10 = 7, digit sum 45 → mod 3 = 0.
* ``abc`` → 0x352441C2 (= 891568578): mod 16 = 2, mod 256 = 194, mod 10 = 8, digit sum 57 → mod 3 = 0.
* ``The quick brown fox jumps over the lazy dog`` → 0x414FA339 (= 1095738169): mod 16 = 9, mod 10 = 9.
* the empty key → 0: partition 0 whatever the count.
"""

from __future__ import annotations

import itertools

import pytest

from xtreaming.broker import partition_for
from xtreaming.broker.partitioning import partitions_for

CHECK = b"123456789"
FOX = b"The quick brown fox jumps over the lazy dog"


@pytest.mark.parametrize(
    ("key", "crc"),
    [(CHECK, 0xCBF43926), (b"a", 0xE8B7BE43), (b"abc", 0x352441C2), (FOX, 0x414FA339), (b"", 0)],
)
def test_the_partition_is_the_crc32_of_the_key_itself_given_enough_partitions(key: bytes, crc: int) -> None:
    assert partition_for(key, 1 << 32) == crc


@pytest.mark.parametrize(
    ("key", "partitions", "expected"),
    [
        (CHECK, 2, 0),
        (CHECK, 3, 2),
        (CHECK, 5, 2),
        (CHECK, 9, 8),
        (CHECK, 10, 2),
        (CHECK, 16, 6),
        (CHECK, 256, 38),
        (b"a", 3, 0),
        (b"a", 10, 7),
        (b"a", 16, 3),
        (b"a", 256, 67),
        (b"abc", 3, 0),
        (b"abc", 10, 8),
        (b"abc", 16, 2),
        (b"abc", 256, 194),
        (FOX, 10, 9),
        (FOX, 16, 9),
        (b"", 7, 0),
    ],
)
def test_known_keys_land_in_known_partitions(key: bytes, partitions: int, expected: int) -> None:
    assert partition_for(key, partitions) == expected


@pytest.mark.parametrize("key", [CHECK, b"a", b"", b"\x00\xff"])
def test_a_single_partition_takes_every_key(key: bytes) -> None:
    assert partition_for(key, 1) == 0


def test_cpf_keys_stay_in_range_and_spread_over_the_partitions() -> None:
    cpfs = [b"%011d" % (10000000000 + i * 104729) for i in range(600)]

    partitions = [partition_for(cpf, 12) for cpf in cpfs]

    assert set(partitions) == set(range(12))
    assert partitions == [partition_for(cpf, 12) for cpf in cpfs]


def test_a_batch_gets_each_keys_partition_and_spreads_keyless_records() -> None:
    spread = itertools.count()

    partitions = partitions_for([b"123456789", None, b"123456789", None, None], 4, spread)

    assert partitions == [0xCBF43926 % 4, 0, 0xCBF43926 % 4, 1, 2]
    assert partitions_for([b"a", None], 1, spread) == [0, 0]
