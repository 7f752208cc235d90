"""Publish-and-wait: the messages API callers wait on, each resolved by the settlement hook once its outcome is final.

``Waiters`` is a settlement listener (``outcomes.py``): each call costs a dict lookup per outcome, by
(topic, partition, offset), and nothing at all while nobody waits. A RETRY is not final (the message is
pending again); OK, DEAD and DUPLICATE are, and each message has one (its one ACK record).

The race it closes: a fast farm may settle a message between the append and the moment its publisher
learns where the message landed. So a publish first *arms* its topic (``armed``): until it ``watch``es its
positions, the final outcomes of that topic are kept aside, and ``watch`` takes its own from them. They are
kept in one bounded buffer per topic (the newest ``ARMING_OUTCOMES``), shared by the publishes arming it, and
dropped with the last of them: arming lasts one append, and a publish's own outcomes all come after its
append, so only that many outcomes of the topic settled within one append could push one of them out.

Nothing is kept for a caller that went away: a waiter's positions leave the registry as they resolve, and
``forget`` removes the rest (the route calls it at the timeout, on a disconnect, and in any case before it
answers). The lock guards dict operations only, never I/O, so the event loop may take it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Final

from xtreaming.coordinator.outcomes import Outcome, Result
from xtreaming.wire.acks import FinalStatus, MessageOutcome
from xtreaming.wire.message_id import message_id

#: Final outcomes of a topic kept while publishes to it are between their append and ``watch`` (about 150 bytes
#: each): far more than a farm settles within one append, so none of a publish's own is pushed out.
ARMING_OUTCOMES: Final = 100_000

Where = tuple[int, int]
_STATUSES: Final[dict[Result, FinalStatus]] = {Result.OK: "ok", Result.DEAD: "dead", Result.DUPLICATE: "duplicate"}


class Waiter:
    """The outcomes of one publish's messages, filled in by the registry; ``wake`` is called once, when the
    last of them is final. Read ``outcomes`` and ``running`` after ``Waiters.forget``: nothing changes them then."""

    __slots__ = ("_final", "_wake", "positions", "topic")

    def __init__(self, topic: str, positions: Sequence[Where], wake: Callable[[], None]) -> None:
        self.topic = topic
        self.positions = list(positions)
        self._final: dict[Where, Outcome] = {}
        self._wake = wake

    @property
    def done(self) -> bool:
        """Every message's outcome is final."""
        return len(self._final) == len(self.positions)

    def outcomes(self) -> list[MessageOutcome]:
        """The final outcomes, in the order the messages were published."""
        final = self._final
        return [outcome_of(final[p]) for p in self.positions if p in final]

    def running(self) -> list[str]:
        """The ids of the messages whose outcome is not final yet, in the order they were published."""
        return [message_id(self.topic, *p) for p in self.positions if p not in self._final]

    def _settle(self, where: Where, outcome: Outcome) -> bool:
        """Keep ``outcome``; True when it was the last one awaited."""
        self._final[where] = outcome
        return self.done


def outcome_of(outcome: Outcome) -> MessageOutcome:
    """A final settlement outcome as its publisher sees it (the fields of its ACK record)."""
    key = None if outcome.key is None else outcome.key.decode("utf-8", "replace")
    return MessageOutcome(
        message_id(outcome.topic, outcome.partition, outcome.offset),
        key,
        _STATUSES[outcome.result],
        outcome.attempt,
        outcome.detail,
    )


class _Arming:
    """A topic's final outcomes kept while publishes to it (``armed``) do not know their positions yet."""

    __slots__ = ("kept", "publishes")

    def __init__(self) -> None:
        self.publishes = 0
        self.kept: dict[Where, Outcome] = {}


class Arming:
    """A publish's hold on its topic's outcomes, from before its append until it ``watch``es its positions."""

    def __init__(self, registry: Waiters, topic: str) -> None:
        self._registry = registry
        self.topic = topic

    def watch(self, positions: Sequence[Where], wake: Callable[[], None]) -> Waiter:
        """Wait on the messages appended at ``positions``; ``wake`` is called (from the thread that settles, or
        from this one when all are final already) once every one of them is final."""
        return self._registry._watch(self.topic, positions, wake)


class Waiters:
    """The settlement listener resolving publish-and-wait requests (see the module docstring)."""

    def __init__(self, arming_outcomes: int = ARMING_OUTCOMES) -> None:
        if arming_outcomes < 1:
            raise ValueError(f"arming_outcomes must be at least 1, got {arming_outcomes}")
        self._arming_outcomes = arming_outcomes
        self._lock = threading.Lock()
        self._waiting: dict[tuple[str, int, int], Waiter] = {}
        self._arming: dict[str, _Arming] = {}

    @property
    def waiting(self) -> int:
        """Messages waited on now, over every waiter."""
        return len(self._waiting)

    @property
    def arming(self) -> int:
        """Topics with outcomes kept aside for publishes that do not know their positions yet."""
        return len(self._arming)

    @contextmanager
    def armed(self, topic: str) -> Iterator[Arming]:
        """Keep ``topic``'s final outcomes aside from now until the block ends: append within it, then
        ``watch`` the positions appended before leaving it (a block left without watching waits on nothing)."""
        with self._lock:
            arming = self._arming.get(topic)
            if arming is None:
                arming = self._arming[topic] = _Arming()
            arming.publishes += 1
        try:
            yield Arming(self, topic)
        finally:
            with self._lock:
                arming.publishes -= 1
                if arming.publishes == 0:
                    del self._arming[topic]

    def _watch(self, topic: str, positions: Sequence[Where], wake: Callable[[], None]) -> Waiter:
        waiter = Waiter(topic, positions, wake)
        with self._lock:
            kept = self._arming[topic].kept
            for where in waiter.positions:
                outcome = kept.pop(where, None)
                if outcome is not None:
                    waiter._settle(where, outcome)
                else:
                    self._waiting[(topic, *where)] = waiter
        if waiter.done:
            wake()
        return waiter

    def forget(self, waiter: Waiter) -> None:
        """Stop waiting on ``waiter``'s messages still running (its caller timed out or went away)."""
        with self._lock:
            for where in waiter.positions:
                key = (waiter.topic, *where)
                if self._waiting.get(key) is waiter:
                    del self._waiting[key]

    def __call__(self, outcomes: Sequence[Outcome], /) -> None:
        """The settlement hook: resolve the waiters of final ``outcomes``, keep those of arming topics aside."""
        if not self._waiting and not self._arming:  # nobody waits: the usual case costs nothing
            return
        completed: list[Waiter] = []
        with self._lock:
            waiting, arming, limit = self._waiting, self._arming, self._arming_outcomes
            for outcome in outcomes:
                if outcome.result is Result.RETRY:
                    continue
                where = (outcome.partition, outcome.offset)
                waiter = waiting.pop((outcome.topic, *where), None)
                if waiter is not None:
                    if waiter._settle(where, outcome):
                        completed.append(waiter)
                elif (topic := arming.get(outcome.topic)) is not None:
                    kept = topic.kept
                    kept[where] = outcome
                    if len(kept) > limit:  # the oldest goes: a publish's own outcomes come after its append
                        del kept[next(iter(kept))]
        for waiter in completed:  # outside the lock: a wake may take a lock of its own
            waiter._wake()
