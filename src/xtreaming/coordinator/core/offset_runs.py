"""A set of offsets that knows its runs: the ledger's finished offsets above the watermark.

A ledger is stored at every settlement as its watermark and the runs (``[start, end)``) of offsets finished above
it. Found by sorting every such offset, that cost grew with the window: thousands of one-message tasks ending out
of order keep thousands finished above a watermark held back by the slowest, and the sort took a quarter of a
coordinator serving a hundred farms. ``OffsetRuns`` keeps the runs as offsets come and go, each in constant time
(the one exception aside: see ``discard``), so listing them costs the runs alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator


class OffsetRuns:
    """Offsets, with their maximal runs of consecutive ones kept as they change."""

    __slots__ = ("_end_of", "_offsets", "_start_of")

    def __init__(self, offsets: Iterable[int] = ()) -> None:
        self._offsets: set[int] = set()
        self._end_of: dict[int, int] = {}  # each run's end, by its start
        self._start_of: dict[int, int] = {}  # each run's start, by its end
        self.update(offsets)

    def __contains__(self, offset: object) -> bool:
        return offset in self._offsets

    def __len__(self) -> int:
        return len(self._offsets)

    def __iter__(self) -> Iterator[int]:
        return iter(self._offsets)

    def add(self, offset: int) -> None:
        """Add ``offset``, joining the runs it touches."""
        if offset in self._offsets:
            return
        self._offsets.add(offset)
        start, end = offset, offset + 1
        if offset in self._start_of:  # a run ends right below it
            start = self._start_of.pop(offset)
        if end in self._end_of:  # a run starts right above it
            end = self._end_of.pop(end)
        self._end_of[start] = end
        self._start_of[end] = start

    def update(self, offsets: Iterable[int]) -> None:
        for offset in offsets:
            self.add(offset)

    def discard(self, offset: int) -> None:
        """Take ``offset`` out, splitting its run. Constant time for the first offset of a run (what a watermark
        passes); for another, a walk down to its run's start (offsets the log skipped: rare)."""
        if offset not in self._offsets:
            return
        self._offsets.remove(offset)
        start = offset
        while start not in self._end_of:
            start -= 1
        end = self._end_of.pop(start)
        del self._start_of[end]
        if start < offset:
            self._end_of[start] = offset
            self._start_of[offset] = start
        if offset + 1 < end:
            self._end_of[offset + 1] = end
            self._start_of[end] = offset + 1

    def runs(self) -> tuple[tuple[int, int], ...]:
        """Every maximal run as ``(start, end)``, increasing."""
        return tuple(sorted(self._end_of.items()))
