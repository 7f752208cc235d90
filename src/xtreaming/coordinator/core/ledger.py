"""The per-partition ledger of finished offsets: what to commit, and what a restart must not redo.

Offsets are handed out in increasing order as they are read, and finish (ok or dead) in any
order. The *watermark* is the lowest offset not finished: the consumer-group offset to commit,
since every offset below it is done. Offsets finished above it are kept (``export``) so that
after a restart the coordinator reads from the watermark again but skips them, redoing only
what was in flight. Memory is bounded by the span between the watermark and the highest
offset handed out: the read-ahead window.

Not frozen, unlike the rest of the pure core: it absorbs one completion per message, and
copying the window on each would cost O(window) per message.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from xtreaming.coordinator.core.offset_runs import OffsetRuns


@dataclass(frozen=True, slots=True)
class LedgerState:
    """What to persist for a partition: ``watermark`` and the finished offsets above it as ``[start, end)`` ranges."""

    watermark: int
    finished: tuple[tuple[int, int], ...] = ()

    def __post_init__(self) -> None:
        if self.watermark < 0:
            raise ValueError(f"ledger watermark {self.watermark} is negative")
        floor = self.watermark + 1  # the watermark itself is unfinished by definition
        for start, end in self.finished:
            if start < floor or end <= start:
                raise ValueError(
                    f"ledger range [{start}, {end}) must be non-empty, above watermark {self.watermark} "
                    "and after the previous range"
                )
            floor = end

    def offsets(self) -> Iterable[int]:
        """Every finished offset above the watermark, increasing."""
        for start, end in self.finished:
            yield from range(start, end)

    def is_finished(self, offset: int) -> bool:
        """Whether ``offset`` is below the watermark or in one of the finished ranges."""
        if offset < self.watermark:
            return True
        index = bisect_right(self.finished, offset, key=_start) - 1  # the last range starting at or before it
        return index >= 0 and offset < self.finished[index][1]

    def finishing(self, offsets: Iterable[int]) -> LedgerState:
        """This state with ``offsets`` finished as well (those finished already change nothing): the watermark
        moves up through any finished from it on."""
        fresh = [offset for offset in offsets if not self.is_finished(offset)]
        if not fresh:
            return self
        done = OffsetRuns(self.offsets())
        done.update(fresh)
        watermark = self.watermark
        while watermark in done:
            done.discard(watermark)
            watermark += 1
        return LedgerState(watermark, done.runs())


def _start(run: tuple[int, int]) -> int:
    return run[0]


class PartitionLedger:
    """Tracks one partition's offsets from handed out to finished; see the module docstring."""

    __slots__ = ("_done", "_high", "_in_flight", "_watermark", "_window")

    def __init__(self, state: LedgerState | None = None) -> None:
        """A fresh ledger at offset 0, or one restored from an ``export``."""
        state = state or LedgerState(0)
        self._watermark = state.watermark
        self._high = state.watermark  # one past the highest offset handed out (or skipped)
        self._done = OffsetRuns(state.offsets())  # finished offsets >= the watermark, with their runs
        self._in_flight: set[int] = set()
        # Offsets handed out or skipped since the watermark, increasing; each in flight or done.
        self._window: deque[int] = deque()

    @property
    def watermark(self) -> int:
        """The lowest unfinished offset: commit it (every offset below is finished or absent)."""
        return self._watermark

    @property
    def high(self) -> int:
        """One past the highest offset handed out: where reading resumes."""
        return self._high

    @property
    def in_flight(self) -> int:
        """How many offsets are handed out and not finished."""
        return len(self._in_flight)

    @property
    def finished_above(self) -> int:
        """How many offsets at or above the watermark are finished (what ``export`` lists as ranges)."""
        return len(self._done)

    def all_in_flight(self, offsets: Iterable[int]) -> bool:
        """Whether every one of ``offsets`` is handed out and not finished (one C-level set check)."""
        return self._in_flight.issuperset(offsets)

    def is_finished(self, offset: int) -> bool:
        return offset < self._watermark or offset in self._done

    def hand_out(self, offset: int) -> bool:
        """Record ``offset`` as read and given out for work; False when it is finished or already out.

        Offsets skipped on the way (absent from the log) count as finished. Raises ValueError for an
        offset below ``high`` that was never handed out: offsets must be handed out in increasing order.
        """
        if offset < self._high:
            if offset < self._watermark or offset in self._in_flight or offset in self._done:
                return False
            raise ValueError(
                f"offset {offset} is below the read position {self._high} and was never handed out; "
                "hand out offsets in increasing order"
            )
        self._forget(self._high, offset)
        self._high = offset + 1
        self._window.append(offset)
        fresh = offset not in self._done  # finished before a restart: skip it
        if fresh:
            self._in_flight.add(offset)
        self._advance()
        return fresh

    def hand_out_all(self, offsets: Sequence[int]) -> Sequence[int]:
        """``hand_out`` of each of ``offsets`` (increasing, as read); returns those handed out."""
        if offsets and offsets[0] >= self._high and not self._done:
            # The usual case, in bulk: offsets past the read position and nothing finished above
            # the watermark, so each one is fresh (the window only grows; see ``hand_out``).
            self._high = offsets[-1] + 1
            self._window.extend(offsets)
            self._in_flight.update(offsets)
            self._advance()
            return offsets
        return [offset for offset in offsets if self.hand_out(offset)]

    def skip_to(self, offset: int) -> None:
        """Record that the log has no message in ``[high, offset)`` (a read there found none, e.g. the
        control record a transaction leaves at the end of a Kafka partition): those offsets count as
        finished, so the watermark can reach ``offset``. Does nothing for ``offset <= high``."""
        if offset <= self._high:
            return
        self._forget(self._high, offset)
        self._high = offset
        self._advance()

    def finish(self, offset: int) -> bool:
        """Mark an offset in flight finished (ok or dead); False, changing nothing, for any other offset.

        Idempotent: a duplicate or late completion returns False and never moves the watermark.
        """
        if offset not in self._in_flight:
            return False
        self._in_flight.remove(offset)
        self._done.add(offset)
        if offset == self._watermark:
            self._advance()
        return True

    def finish_all(self, offsets: Iterable[int]) -> int:
        """``finish`` of each of ``offsets``, the watermark moved once; returns how many were finished."""
        finished = self._in_flight.intersection(offsets)
        self._in_flight.difference_update(finished)
        self._done.update(finished)
        if finished:
            self._advance()
        return len(finished)

    def export(self) -> LedgerState:
        """The state to persist; ``PartitionLedger(state)`` restores it."""
        return LedgerState(self._watermark, self._done.runs())

    def _advance(self) -> None:
        window, done = self._window, self._done
        while window and window[0] not in self._in_flight:
            done.discard(window.popleft())
        if window:
            self._watermark = window[0]
            return
        watermark = self._high
        while watermark in done:  # finished before a restart and not read again yet
            done.discard(watermark)
            watermark += 1
        self._watermark = self._high = watermark

    def _forget(self, start: int, end: int) -> None:
        """Drop finished offsets in ``[start, end)``: they were skipped, so they fall below the watermark."""
        if not self._done or end <= start:
            return
        if end - start <= len(self._done):
            for offset in range(start, end):
                self._done.discard(offset)
        else:
            self._done = OffsetRuns(offset for offset in self._done if not start <= offset < end)
