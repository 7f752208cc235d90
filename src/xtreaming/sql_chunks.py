"""Many rows to a statement: the chunk sizes that cover a count of rows with a handful of statements.

An ``executemany`` steps the database once per row, and SQLite's driver lets go of the GIL and takes it back at
each step, which costs more than the row does while other threads want it. One INSERT of many rows (or a DELETE
of many ids) steps once. Its text depends on how many rows it takes; chunks of powers of two, up to a largest,
keep the texts to a few, which stay compiled in the connection's statement cache.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import chain
from typing import Any


def chunk_sizes(count: int, largest: int) -> Iterator[int]:
    """Sizes adding up to ``count``: ``largest`` (a power of two) while it fits, then the powers of two of the
    rest, largest first (``chunk_sizes(300, 256)``: 256, 32, 8, 4)."""
    while count:
        size = min(largest, 1 << (count.bit_length() - 1))
        yield size
        count -= size


def chunks(rows: Sequence[tuple[Any, ...]], largest: int) -> Iterator[tuple[int, list[Any]]]:
    """``rows`` in chunks of ``chunk_sizes``: each chunk's row count, and its rows' values in one flat list, as a
    statement of that many rows takes them."""
    start = 0
    for size in chunk_sizes(len(rows), largest):
        yield size, list(chain.from_iterable(rows[start : start + size]))
        start += size


def values_sql(head: str, width: int, rows: int) -> str:
    """``head`` (``INSERT INTO t (a, b)``) followed by ``VALUES`` with ``rows`` rows of ``width`` markers."""
    row = "(" + ", ".join(["?"] * width) + ")"
    return f"{head} VALUES " + ", ".join([row] * rows)
