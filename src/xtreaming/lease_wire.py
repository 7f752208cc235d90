"""The lease answer as farms ask for it (``Accept: application/x-xtreaming-lease``): the JSON answer
with each task's message columns taken out, a newline, then those columns in binary.

A lease carries thousands of messages a task. As JSON, the coordinator would write every number
as decimal text and escape every value (thousands of JSON documents or XML files), and the farm
parse them back; binary values would travel as base64. Framed, each task's messages follow the
head, in task order, as: five arrays of ``count`` little-endian signed 64-bit integers (partitions,
offsets, attempts, key sizes with -1 for no key, value sizes), then the keys' bytes one after
another, then the values' bytes. In the head, a task's ``messages`` is ``{"count": n, "headers":
null or, per message, its [name, base64 value] pairs}``. The head is compact JSON, which never
holds a raw newline.
"""

from __future__ import annotations

import json
import sys
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import accumulate, pairwise
from typing import Any, Final

MEDIA_TYPE: Final = "application/x-xtreaming-lease"
#: The integer arrays of a task's messages, in order.
ARRAYS: Final = ("partitions", "offsets", "attempts", "key sizes", "value sizes")
_WIDTH: Final = 8


@dataclass(frozen=True, slots=True)
class MessageColumns:
    """A task's messages, one sequence per field: message ``i`` is ``partitions[i]``, ``offsets[i]``…"""

    partitions: Sequence[int]
    offsets: Sequence[int]
    attempts: Sequence[int]
    keys: Sequence[bytes | None]
    values: Sequence[bytes]


def pack(columns: MessageColumns) -> bytes:
    """A task's messages as the framed answer carries them (see the module docstring)."""
    keys, values = columns.keys, columns.values
    numbers = array("q", columns.partitions)
    numbers.extend(columns.offsets)
    numbers.extend(columns.attempts)
    numbers.extend([-1 if key is None else len(key) for key in keys])
    numbers.extend([len(value) for value in values])
    if sys.byteorder == "big":
        numbers.byteswap()
    return b"".join((numbers.tobytes(), b"".join([key for key in keys if key]), *values))


def unpack(data: bytes, at: int, count: int) -> tuple[MessageColumns, int]:
    """The ``count`` messages packed in ``data`` from ``at``, and where the next task's start; raises
    ValueError saying what does not fit."""
    end = at + len(ARRAYS) * _WIDTH * count
    if count < 0 or end > len(data):
        raise ValueError(f"{count} messages need {end - at:,} bytes of sizes, {len(data) - at:,} are left")
    numbers = array("q", data[at:end])
    if sys.byteorder == "big":
        numbers.byteswap()
    partitions, offsets, attempts, key_sizes, value_sizes = (
        numbers[i * count : (i + 1) * count] for i in range(len(ARRAYS))
    )
    if count and (min(key_sizes) < -1 or min(value_sizes) < 0):
        raise ValueError("a key size below -1 or a value size below 0")
    key_ends = list(accumulate((max(size, 0) for size in key_sizes), initial=end))
    value_ends = list(accumulate(value_sizes, initial=key_ends[-1]))
    if value_ends[-1] > len(data):
        raise ValueError(
            f"the messages' keys and values need {value_ends[-1] - end:,} bytes, {len(data) - end:,} are left"
        )
    keys = [None if size < 0 else data[a:b] for size, (a, b) in zip(key_sizes, pairwise(key_ends), strict=True)]
    values = [data[a:b] for a, b in pairwise(value_ends)]
    return MessageColumns(list(partitions), list(offsets), list(attempts), keys, values), value_ends[-1]


def frame(head: str, tasks: Iterable[bytes]) -> bytes:
    """The framed answer: ``head`` (JSON text), a newline, then each task's packed messages."""
    return b"".join((head.encode(), b"\n", *tasks))


def unframe(body: bytes) -> tuple[Any, bytes]:
    """The head (parsed) and what follows it; raises ValueError saying what is wrong."""
    head, newline, rest = body.partition(b"\n")
    if not newline:
        raise ValueError("no newline after its JSON head")
    return json.loads(head), rest
