"""What a ``Snapshot`` keeps indexed, each part updated per changed queue in O(queues of its base).

A new snapshot per lease or completion is cheap because these parts are persistent: a change
copies the entries of one base and shares everything else with the snapshot it came from.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter
from typing import Final

from xtreaming.coordinator.core.state import BaseState, Fairness, QueueState
from xtreaming.coordinator.core.windows import WallClock, limit_at

#: A queue's place in its base's order of service (``QueueState.fairness``).
fairness_of: Final = attrgetter("fairness")


class QueueMap(Mapping[str, QueueState]):
    """Queues by topic, in the order topics were added, stored per base so a copy shares the other bases."""

    __slots__ = ("_base_of", "_by_base")

    def __init__(self, base_of: dict[str, str], by_base: dict[str, dict[str, QueueState]]) -> None:
        self._base_of = base_of
        self._by_base = by_base

    @classmethod
    def of(cls, queues: Iterable[QueueState]) -> QueueMap:
        base_of: dict[str, str] = {}
        by_base: dict[str, dict[str, QueueState]] = {}
        for queue in queues:
            base_of[queue.topic] = queue.base
            by_base.setdefault(queue.base, {})[queue.topic] = queue
        return cls(base_of, by_base)

    def __getitem__(self, topic: str) -> QueueState:
        return self._by_base[self._base_of[topic]][topic]

    def __contains__(self, topic: object) -> bool:
        return topic in self._base_of

    def __iter__(self) -> Iterator[str]:
        return iter(self._base_of)

    def __len__(self) -> int:
        return len(self._base_of)

    def __repr__(self) -> str:
        return f"QueueMap({dict(self)!r})"

    def replace(self, topic: str, queue: QueueState | None) -> QueueMap:
        """A copy with ``topic`` holding ``queue`` (None: removed); O(bases + queues of the bases touched)."""
        by_base = dict(self._by_base)
        was = self._base_of.get(topic)
        now = None if queue is None else queue.base
        if was is not None:
            group = dict(by_base[was])
            del group[topic]
            if group:
                by_base[was] = group
            else:
                del by_base[was]
        if queue is not None:
            by_base[queue.base] = {**by_base.get(queue.base, {}), topic: queue}
        base_of = self._base_of
        if now != was:  # added, removed or moved: the only changes that copy every topic
            base_of = dict(base_of)
            if now is None:
                del base_of[topic]
            else:
                base_of[topic] = now
        return QueueMap(base_of, by_base)


#: A candidate in back-off: ``(ready_at, fairness, queue)``.
Timed = tuple[datetime, Fairness, QueueState]


@dataclass(frozen=True, slots=True)
class Index:
    """Running tasks per base; per base, its contenders and its candidates in order of service.

    A contender is an unpaused queue with pending messages. A candidate is a contender that may
    take a slot now or once a back-off ends: below its own max workers and not waiting for keys
    in flight. Candidates free of back-off (``ready_at`` None) are kept per base; those in back-off
    in ``timed``, across bases, by ``ready_at``. Decisions read candidates only, so a blocked queue
    costs them nothing and a queue in back-off costs them nothing before its deadline; they visit
    bases in ``order`` (by their first candidate, the best a base can offer) and can stop early.
    """

    base_running: dict[str, int]
    contenders: dict[str, tuple[QueueState, ...]]
    candidates: dict[str, tuple[QueueState, ...]]
    timed: tuple[Timed, ...]
    order: tuple[tuple[Fairness, str], ...]
    paused_with_pending: int

    @classmethod
    def build(cls, queues: Iterable[QueueState]) -> Index:
        base_running: dict[str, int] = {}
        grouped: dict[str, list[QueueState]] = {}
        paused_with_pending = 0
        for queue in queues:
            base_running[queue.base] = base_running.get(queue.base, 0) + queue.running
            if queue.is_contender:
                grouped.setdefault(queue.base, []).append(queue)
            elif queue.pending and queue.paused:
                paused_with_pending += 1
        contenders = {base: tuple(sorted(group, key=fairness_of)) for base, group in grouped.items()}
        candidates = {base: kept for base, group in contenders.items() if (kept := _free(group))}
        timed = tuple(sorted(entry for group in contenders.values() for q in group if (entry := _timed(q))))
        order = tuple(sorted((group[0].fairness, base) for base, group in candidates.items()))
        return cls(base_running, contenders, candidates, timed, order, paused_with_pending)

    def replace(self, old: QueueState | None, new: QueueState | None) -> Index:
        """The index once ``old`` (None: none) is replaced by ``new`` (None: removed)."""
        base_running = dict(self.base_running)
        paused_with_pending = self.paused_with_pending
        for queue, sign in ((old, -1), (new, 1)):
            if queue is not None:
                base_running[queue.base] = base_running.get(queue.base, 0) + sign * queue.running
                if queue.pending and queue.paused:
                    paused_with_pending += sign
        contenders = _replaced(self.contenders, old, new if new is not None and new.is_contender else None)
        candidates = _replaced(self.candidates, old, new if new is not None and _is_free(new) else None)
        timed = _retimed(self.timed, old, None if new is None else _timed(new))
        order = self.order
        for base in {queue.base for queue in (old, new) if queue is not None}:
            before, after = _first(self.candidates, base), _first(candidates, base)
            if before is not after:
                order = _reordered(order, base, before, after)
        return Index(base_running, contenders, candidates, timed, order, paused_with_pending)


@dataclass(frozen=True, slots=True)
class Room:
    """Unpaused bases' limits in force at one wall-clock minute, and the reserved minimums of those with one."""

    limits: dict[str, int]
    minimums: dict[str, int]


class Limits:
    """``Room`` per wall-clock minute: limits change only at minute boundaries, so one computation
    serves every decision in that minute. Snapshots that share their bases share this memo."""

    __slots__ = ("_bases", "_memo")

    def __init__(self, bases: Mapping[str, BaseState]) -> None:
        self._bases = bases
        self._memo: tuple[WallClock, Room] | None = None

    def at(self, clock: WallClock) -> Room:
        memo = self._memo
        if memo is not None and memo[0] == clock:
            return memo[1]
        unpaused = [base for base in self._bases.values() if not base.paused]
        room = Room(
            {base.name: limit_at(base.max_workers, base.windows, clock).max_workers for base in unpaused},
            {base.name: base.min_workers for base in unpaused if base.min_workers},
        )
        self._memo = (clock, room)  # one assignment: a concurrent reader sees the old memo or the new
        return room


def _first(groups: dict[str, tuple[QueueState, ...]], base: str) -> QueueState | None:
    group = groups.get(base)
    return group[0] if group else None


def _is_candidate(queue: QueueState) -> bool:
    return queue.is_contender and not queue.is_at_max_workers and not queue.waits_for_keys


def _is_free(queue: QueueState) -> bool:
    """A candidate free of back-off."""
    return queue.ready_at is None and _is_candidate(queue)


def _free(contenders: tuple[QueueState, ...]) -> tuple[QueueState, ...]:
    return tuple(queue for queue in contenders if _is_free(queue))


def _timed(queue: QueueState) -> Timed | None:
    """The entry of a candidate in back-off (which may have ended by now), else None."""
    ready_at = queue.ready_at
    return None if ready_at is None or not _is_candidate(queue) else (ready_at, queue.fairness, queue)


def _retimed(timed: tuple[Timed, ...], old: QueueState | None, new: Timed | None) -> tuple[Timed, ...]:
    """``timed`` without ``old``'s entry (if it has one) and with ``new``."""
    if old is not None and old.ready_at is not None:
        at = bisect_left(timed, (old.ready_at, old.fairness))
        if at < len(timed) and timed[at][2] is old:
            timed = timed[:at] + timed[at + 1 :]
    if new is not None:
        at = bisect_left(timed, new[:2])
        timed = (*timed[:at], new, *timed[at:])
    return timed


def _replaced(
    groups: dict[str, tuple[QueueState, ...]], old: QueueState | None, new: QueueState | None
) -> dict[str, tuple[QueueState, ...]]:
    """A copy of ``groups`` (per base, in order of service) without ``old`` and with ``new``."""
    changed = dict(groups)
    if old is not None:
        group = changed.get(old.base, ())
        at = bisect_left(group, old.fairness, key=fairness_of)
        if at < len(group) and group[at].topic == old.topic:
            group = group[:at] + group[at + 1 :]
            if group:
                changed[old.base] = group
            else:
                del changed[old.base]
    if new is not None:
        group = changed.get(new.base, ())
        at = bisect_left(group, new.fairness, key=fairness_of)
        changed[new.base] = (*group[:at], new, *group[at:])
    return changed


def _reordered(
    order: tuple[tuple[Fairness, str], ...], base: str, before: QueueState | None, after: QueueState | None
) -> tuple[tuple[Fairness, str], ...]:
    """``order`` once ``base``'s first candidate is ``after`` instead of ``before`` (None: no candidate)."""
    if before is not None:
        at = bisect_left(order, (before.fairness, base))
        order = order[:at] + order[at + 1 :]
    if after is not None:
        entry = (after.fairness, base)
        at = bisect_left(order, entry)
        order = (*order[:at], entry, *order[at:])
    return order
