"""The lease answer as farms ask for it (``Accept: application/x-xtreaming-lease``): the JSON answer
with each task's message columns taken out, a newline, then those columns in binary.

A lease carries thousands of messages a task. As JSON, the coordinator would write every number
as decimal text and escape every value (thousands of JSON documents or XML files), and the farm
parse them back; binary values would travel as base64. Framed, each task's messages follow the
head, in task order, packed (``xtreaming.wire.packed``): five arrays of ``count`` little-endian signed
64-bit integers (partitions, offsets, attempts, key sizes with -1 for no key, value sizes), then
the keys' bytes one after another, then the values' bytes. In the head, a task's ``messages`` is
``{"count": n, "headers": null or, per message, its [name, base64 value] pairs}``. The head is
compact JSON, which never holds a raw newline.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from xtreaming.wire import packed

MEDIA_TYPE: Final = "application/x-xtreaming-lease"


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
    return packed.pack((columns.partitions, columns.offsets, columns.attempts), (columns.keys, columns.values))


def unpack(data: bytes, at: int, count: int) -> tuple[MessageColumns, int]:
    """The ``count`` messages packed in ``data`` from ``at``, and where the next task's start; raises
    ValueError saying what does not fit."""
    (partitions, offsets, attempts), (keys, values), end = packed.unpack(data, at, count, 3, 2)
    if None in values:
        raise ValueError("a value without a size")
    return MessageColumns(partitions, offsets, attempts, keys, values), end  # type: ignore[arg-type]


def frame(head: str, tasks: Iterable[bytes]) -> bytes:
    """The framed answer: ``head`` (JSON text), a newline, then each task's packed messages."""
    return b"".join((head.encode(), b"\n", *tasks))


def unframe(body: bytes) -> tuple[Any, bytes]:
    """The head (parsed) and what follows it; raises ValueError saying what is wrong."""
    head, newline, rest = body.partition(b"\n")
    if not newline:
        raise ValueError("no newline after its JSON head")
    return json.loads(head), rest
