"""Dead letters operators can act on: the index of every ``.DLQ`` topic, and replay, skip and purge by filter.

Only the broker and the store are involved, never the coordinator's memory or lock: the background loop
indexes (``index_when_due``), a replay runs in a thread of its own (``replays.py``), and the API's requests
read and change the index in the store. Every action is audited in the same transaction as its change, and
one whose filter selects nothing raises ``NoDeadLetters`` having changed nothing. A dry run only counts.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from xtreaming.broker import Broker
from xtreaming.coordinator.dead_letter_index import ForeignListener, dlq_topics, index_once
from xtreaming.coordinator.dead_letter_records import (
    DeadLetter,
    InvalidLetterFilter,
    LetterFilter,
    LetterState,
    NoDeadLetters,
    Replay,
    TopicLetters,
)
from xtreaming.coordinator.options import CoordinatorOptions
from xtreaming.coordinator.replays import ReplayRunner
from xtreaming.coordinator.store import Store


class DeadLetters:
    """The site's dead letters; see the module docstring. Safe to share between threads."""

    def __init__(
        self, store: Store, broker: Broker, options: CoordinatorOptions, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._store = store
        self._broker = broker
        self._options = options
        self._clock = clock
        self._next_index = 0.0
        self.replays = ReplayRunner(store, broker)
        #: Told of each foreign ``.DLQ`` record the index finds (the coordinator takes it off its dead figure).
        self.foreign: ForeignListener | None = None

    def start(self) -> None:
        """Run replays in their thread; those a previous process left running resume."""
        self.replays.start()

    def stop(self) -> None:
        self.replays.stop()

    def index(self) -> int:
        """Index the records appended to ``.DLQ`` topics since the last pass (a bounded number); how many."""
        return index_once(self._store, self._broker, dlq_topics(self._broker), foreign=self.foreign)

    def index_when_due(self) -> None:
        """``index``, at most every ``dlq_index_interval_s``: the background loop's passes are far more frequent."""
        now_s = self._clock()
        if now_s >= self._next_index:
            self._next_index = now_s + self._options.dlq_index_interval_s
            self.index()

    # -- reading -------------------------------------------------------------------------------

    def summary(self, topic: str | None = None) -> list[TopicLetters]:
        """Per work topic: letters open, replayed and skipped, and the open ones grouped by error with samples."""
        return self._store.dead_letters.summary(topic)

    def find(
        self, letters: LetterFilter, state: LetterState | None = None, after_id: int | None = None, limit: int = 100
    ) -> tuple[list[DeadLetter], int]:
        """A page of the letters ``letters`` selects, after the letter ``after_id``, and how many it selects."""
        return self._store.dead_letters.find(letters, state, after_id, limit)

    def replay_of(self, replay_id: int) -> Replay:
        """Raises ReplayNotFound."""
        return self._store.dead_letters.get_replay(replay_id)

    # -- acting ---------------------------------------------------------------------------------

    def replay(
        self, letters: LetterFilter, actor: str, *, dry_run: bool = False, rate_per_s: float | None = None
    ) -> tuple[int, Replay | None]:
        """Replay the open letters ``letters`` selects at ``rate_per_s`` (the site's default when None): how many,
        and the replay (None on a dry run). Raises InvalidLetterFilter for a rate over the site's cap, and
        NoDeadLetters when no open letter matches."""
        rate = self._options.dlq_replay_rate_per_s if rate_per_s is None else rate_per_s
        cap = self._options.dlq_replay_max_rate_per_s
        if not 0 < rate <= cap:
            raise InvalidLetterFilter(f"rate {rate:g}/s: a replay runs at more than 0 and at most {cap:g} letters/s")
        if dry_run:
            return self._store.dead_letters.count_open(letters), None
        with self._store.transaction():  # the replay, its letters reserved and the audit entry, or none of them
            replay_id, count = self._store.dead_letters.reserve(letters, actor, rate)
            if not count:
                raise NoDeadLetters(f"0 open dead letters match {letters}: nothing changed")
            details = {"filter": letters.criteria(), "replay": replay_id, "letters": count, "rate_per_s": rate}
            self._store.audit(actor, "dlq.replay", letters.topic, details)
        self.replays.wake()
        return count, self._store.dead_letters.get_replay(replay_id)

    def skip(self, letters: LetterFilter, actor: str, *, dry_run: bool = False) -> int:
        """Set aside the open letters ``letters`` selects (never replayed, not open any more); how many.
        Raises NoDeadLetters when none matches."""
        if dry_run:
            return self._store.dead_letters.count_open(letters)
        with self._store.transaction():
            count = self._store.dead_letters.skip(letters)
            if not count:
                raise NoDeadLetters(f"0 open dead letters match {letters}: nothing changed")
            self._store.audit(actor, "dlq.skip", letters.topic, {"filter": letters.criteria(), "letters": count})
        return count

    def purge(self, letters: LetterFilter, actor: str, *, dry_run: bool = False) -> int:
        """Remove from the index the skipped and replayed letters ``letters`` selects (the log itself is
        append-only: their records stay in the ``.DLQ`` topic); how many. Raises NoDeadLetters when none matches."""
        if dry_run:
            return self._store.dead_letters.count_closed(letters)
        with self._store.transaction():
            count = self._store.dead_letters.purge(letters)
            if not count:
                raise NoDeadLetters(f"0 skipped or replayed dead letters match {letters}: nothing changed")
            self._store.audit(actor, "dlq.purge", letters.topic, {"filter": letters.criteria(), "letters": count})
        return count
