"""The dead-letter index in the store: ``dead_letters``, ``dlq_positions`` and ``replays``.

A letter changes state only by statements that name the state it must be in (``WHERE state = 'dead'``):
two operators acting on the same letters at once act on each once, whichever commits first.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import Connection, Row, bindparam, delete, func, insert, select, update
from sqlalchemy.sql.elements import ColumnElement

from xtreaming.coordinator.dead_letter_records import (
    DeadLetter,
    ErrorGroup,
    LetterFilter,
    LetterState,
    Replay,
    ReplayNotFound,
    ReplayState,
    TopicLetters,
    dlq_message_id,
)
from xtreaming.coordinator.schema import DEAD_LETTERS, DLQ_POSITIONS, REPLAYS
from xtreaming.coordinator.store.database import Database
from xtreaming.coordinator.store.rows import new_id, one, upsert

#: Error groups a topic's summary shows (the largest first), and sample letters of each.
TOP_ERRORS: Final = 10
SAMPLES: Final = 3
_LETTERS: Final = DEAD_LETTERS.c
#: Letters an operator has not acted on yet: open for the summary, for skipping and for replaying.
_OPEN: Final = (LetterState.DEAD.value,)
#: Letters operators are done with: only these are purged from the index.
_CLOSED: Final = (LetterState.SKIPPED.value, LetterState.REPLAYED.value)


class DeadLetterTables:
    """The dead-letter index's tables; each method is one transaction (or joins ``Store.transaction()``)."""

    def __init__(self, database: Database) -> None:
        self._database = database

    # -- the indexer --------------------------------------------------------------------------

    def positions(self) -> dict[tuple[str, int], int]:
        """``(dlq topic, partition) → next offset`` to index."""
        with self._database.read() as conn:
            return {(r.topic, r.partition): r.next_offset for r in conn.execute(select(DLQ_POSITIONS))}

    def add_letters(self, dlq_topic: str, partition: int, next_offset: int, letters: Sequence[DeadLetter]) -> None:
        """Index ``letters`` (of one ``.DLQ`` partition) and move its position to ``next_offset``, together.
        A letter already indexed is kept as it is (an indexer that stopped before moving its position)."""
        now = datetime.now(UTC)
        rows = [
            {
                "topic": letter.topic,
                "partition": letter.partition,
                "offset": letter.offset,
                "source_partition": letter.source_partition,
                "source_offset": letter.source_offset,
                "key": letter.key,
                "error": letter.error,
                "attempts": letter.attempts,
                "dead_at": letter.dead_at,
                "state": LetterState.DEAD.value,
                "replay_id": None,
                "replayed_as": None,
                "changed_at": now,
            }
            for letter in letters
        ]
        position = {"topic": dlq_topic, "partition": partition, "next_offset": 0, "foreign": 0}
        foreign = sum(1 for letter in letters if letter.source_partition is None)
        moved = {"next_offset": next_offset, "foreign": DLQ_POSITIONS.c.foreign + foreign}
        where = (DLQ_POSITIONS.c.topic == dlq_topic) & (DLQ_POSITIONS.c.partition == partition)
        with self._database.write() as conn:
            upsert(conn, DEAD_LETTERS, rows, keys=("topic", "partition", "offset"), replace=False)
            upsert(conn, DLQ_POSITIONS, [position], keys=("topic", "partition"), replace=False)
            conn.execute(update(DLQ_POSITIONS).where(where).values(moved))

    def indexed(self, dlq_topic: str) -> dict[int, tuple[int, int]]:
        """Each partition of ``dlq_topic`` indexed so far: (next offset to index, foreign records below it)."""
        with self._database.read() as conn:
            rows = conn.execute(select(DLQ_POSITIONS).where(DLQ_POSITIONS.c.topic == dlq_topic))
            return {r.partition: (r.next_offset, r.foreign) for r in rows}

    # -- reading -------------------------------------------------------------------------------

    def summary(self, topic: str | None) -> list[TopicLetters]:
        """Each work topic's letters by state and its open ones by error, by topic."""
        where = [] if topic is None else [_LETTERS.topic == topic]
        with self._database.read() as conn:
            counts: dict[str, dict[str, int]] = {}
            by_state = select(_LETTERS.topic, _LETTERS.state, func.count()).where(*where)
            for name, state, count in conn.execute(by_state.group_by(_LETTERS.topic, _LETTERS.state)):
                counts.setdefault(name, {})[state] = count
            return [
                TopicLetters(
                    name,
                    open=states.get(LetterState.DEAD.value, 0),
                    replayed=states.get(LetterState.REPLAYED.value, 0),
                    skipped=states.get(LetterState.SKIPPED.value, 0),
                    errors=_error_groups(conn, name) if states.get(LetterState.DEAD.value) else [],
                )
                for name, states in sorted(counts.items())
            ]

    def find(
        self, letters: LetterFilter, state: LetterState | None, after_id: int | None, limit: int
    ) -> tuple[list[DeadLetter], int]:
        """A page of the letters ``letters`` selects (in ``state``, when given), in index order after
        ``after_id``, and how many it selects in all."""
        where = _where(letters, None if state is None else (state.value,))
        page = select(DEAD_LETTERS).where(where).order_by(_LETTERS.id).limit(limit)
        if after_id is not None:
            page = page.where(_LETTERS.id > after_id)
        with self._database.read() as conn:
            total = conn.execute(select(func.count()).select_from(DEAD_LETTERS).where(where)).scalar_one()
            return [_letter_of(r) for r in conn.execute(page)], total

    def count_open(self, letters: LetterFilter) -> int:
        with self._database.read() as conn:
            where = _where(letters, _OPEN)
            return int(conn.execute(select(func.count()).select_from(DEAD_LETTERS).where(where)).scalar_one())

    def count_closed(self, letters: LetterFilter) -> int:
        with self._database.read() as conn:
            where = _where(letters, _CLOSED)
            return int(conn.execute(select(func.count()).select_from(DEAD_LETTERS).where(where)).scalar_one())

    # -- operators' actions ----------------------------------------------------------------------

    def reserve(self, letters: LetterFilter, actor: str, rate_per_s: float) -> tuple[int, int]:
        """Create a running replay of the open letters ``letters`` selects and reserve them for it
        (``queued``); returns its id and how many it reserved (0: roll the transaction back)."""
        now = datetime.now(UTC)
        values = {
            "topic": letters.topic,
            "filter": letters.criteria(),
            "actor": actor,
            "created_at": now,
            "total": 0,
            "done": 0,
            "rate_per_s": rate_per_s,
            "state": ReplayState.RUNNING.value,
            "changed_at": now,
            "error": None,
            "batch_ends": None,
        }
        with self._database.write() as conn:
            replay_id = new_id(conn.execute(insert(REPLAYS).values(values)))
            reserved = conn.execute(
                update(DEAD_LETTERS)
                .where(_where(letters, _OPEN))
                .values(state=LetterState.QUEUED.value, replay_id=replay_id, changed_at=now)
            ).rowcount
            conn.execute(update(REPLAYS).where(REPLAYS.c.id == replay_id).values(total=reserved))
        return replay_id, reserved

    def skip(self, letters: LetterFilter) -> int:
        """Mark the open letters ``letters`` selects ``skipped``; how many."""
        with self._database.write() as conn:
            return int(
                conn.execute(
                    update(DEAD_LETTERS)
                    .where(_where(letters, _OPEN))
                    .values(state=LetterState.SKIPPED.value, changed_at=datetime.now(UTC))
                ).rowcount
            )

    def purge(self, letters: LetterFilter) -> int:
        """Delete from the index the skipped and replayed letters ``letters`` selects; how many."""
        with self._database.write() as conn:
            return int(conn.execute(delete(DEAD_LETTERS).where(_where(letters, _CLOSED))).rowcount)

    # -- replays -------------------------------------------------------------------------------

    def get_replay(self, replay_id: int) -> Replay:
        """Raises ReplayNotFound."""
        with self._database.read() as conn:
            return _replay_of(one(conn, REPLAYS, REPLAYS.c.id == replay_id, ReplayNotFound, f"replay {replay_id}"))

    def running_replays(self) -> list[Replay]:
        """Replays still running, oldest first."""
        query = select(REPLAYS).where(REPLAYS.c.state == ReplayState.RUNNING.value).order_by(REPLAYS.c.id)
        with self._database.read() as conn:
            return [_replay_of(r) for r in conn.execute(query)]

    def claim(self, replay_id: int, limit: int, ends: Mapping[int, int]) -> list[DeadLetter]:
        """Take up to ``limit`` of the replay's queued letters, in index order, into ``replaying``, recording
        ``ends`` (the work topic's, before they are appended) with the replay."""
        now = datetime.now(UTC)
        queued = (
            select(DEAD_LETTERS)
            .where(_LETTERS.replay_id == replay_id, _LETTERS.state == LetterState.QUEUED.value)
            .order_by(_LETTERS.id)
            .limit(limit)
        )
        with self._database.write() as conn:
            letters = [_letter_of(r) for r in conn.execute(queued)]
            if letters:
                conn.execute(
                    update(DEAD_LETTERS)
                    .where(_LETTERS.id.in_([letter.id for letter in letters]))
                    .values(state=LetterState.REPLAYING.value, changed_at=now)
                )
                batch_ends = {str(p): o for p, o in ends.items()}
                conn.execute(
                    update(REPLAYS).where(REPLAYS.c.id == replay_id).values(batch_ends=batch_ends, changed_at=now)
                )
        return letters

    def in_flight(self, replay_id: int) -> list[DeadLetter]:
        """The replay's letters left ``replaying`` (a batch cut short), in index order."""
        query = (
            select(DEAD_LETTERS)
            .where(_LETTERS.replay_id == replay_id, _LETTERS.state == LetterState.REPLAYING.value)
            .order_by(_LETTERS.id)
        )
        with self._database.read() as conn:
            return [_letter_of(r) for r in conn.execute(query)]

    def settle_batch(self, replay_id: int, replayed: Mapping[int, str], requeued: Iterable[int]) -> Replay:
        """Mark letters ``replayed`` (letter id → message id of the copy) and put ``requeued`` ones back in the
        queue, count them done, and finish the replay when no letter of it is left; the replay as stored."""
        now = datetime.now(UTC)
        with self._database.write() as conn:
            if replayed:
                conn.execute(
                    update(DEAD_LETTERS)
                    .where(_LETTERS.id == bindparam("letter_id"))
                    .values(state=LetterState.REPLAYED.value, replayed_as=bindparam("copy"), changed_at=now),
                    [{"letter_id": letter, "copy": copy} for letter, copy in replayed.items()],
                )
            requeued = list(requeued)
            if requeued:
                conn.execute(
                    update(DEAD_LETTERS)
                    .where(_LETTERS.id.in_(requeued))
                    .values(state=LetterState.QUEUED.value, changed_at=now)
                )
            left = conn.execute(
                select(func.count())
                .select_from(DEAD_LETTERS)
                .where(
                    _LETTERS.replay_id == replay_id,
                    _LETTERS.state.in_([LetterState.QUEUED.value, LetterState.REPLAYING.value]),
                )
            ).scalar_one()
            changes: dict[str, Any] = {"done": REPLAYS.c.done + len(replayed), "batch_ends": None, "changed_at": now}
            if not left:
                changes["state"] = ReplayState.FINISHED.value
            conn.execute(update(REPLAYS).where(REPLAYS.c.id == replay_id).values(changes))
            return _replay_of(one(conn, REPLAYS, REPLAYS.c.id == replay_id, ReplayNotFound, f"replay {replay_id}"))

    def fail_replay(self, replay_id: int, error: str) -> None:
        """Stop a replay for good: its letters not appended yet are open again. Only for a replay whose batch in
        flight, if any, was not appended (it failed before), as its ``replaying`` letters are open again too."""
        now = datetime.now(UTC)
        left = [LetterState.QUEUED.value, LetterState.REPLAYING.value]
        with self._database.write() as conn:
            conn.execute(
                update(DEAD_LETTERS)
                .where(_LETTERS.replay_id == replay_id, _LETTERS.state.in_(left))
                .values(state=LetterState.DEAD.value, replay_id=None, changed_at=now)
            )
            conn.execute(
                update(REPLAYS)
                .where(REPLAYS.c.id == replay_id)
                .values(state=ReplayState.FAILED.value, error=error, changed_at=now)
            )


def _where(letters: LetterFilter, states: Sequence[str] | None) -> ColumnElement[bool]:
    clauses: list[ColumnElement[bool]] = [_LETTERS.topic == letters.topic]
    if states is not None:
        clauses.append(_LETTERS.state.in_(states))
    if letters.error:
        clauses.append(func.lower(_LETTERS.error).contains(letters.error.lower(), autoescape=True))
    if letters.since is not None:
        clauses.append(_LETTERS.dead_at >= letters.since)
    if letters.until is not None:
        clauses.append(_LETTERS.dead_at < letters.until)
    if letters.keys:
        clauses.append(_LETTERS.key.in_(letters.keys))
    where = clauses[0]
    for clause in clauses[1:]:
        where = where & clause
    return where


def _error_groups(conn: Connection, topic: str) -> list[ErrorGroup]:
    """A topic's open letters by error, the largest groups first, each with its first letters as samples."""
    open_letters = (_LETTERS.topic == topic) & (_LETTERS.state == LetterState.DEAD.value)
    count = func.count().label("n")
    groups = (
        select(_LETTERS.error, count)
        .where(open_letters)
        .group_by(_LETTERS.error)
        .order_by(count.desc(), _LETTERS.error)
        .limit(TOP_ERRORS)
    )
    found = []
    for error, n in conn.execute(groups).all():
        first = (
            select(_LETTERS.partition, _LETTERS.offset, _LETTERS.key)
            .where(open_letters & (_LETTERS.error == error))
            .order_by(_LETTERS.id)
            .limit(SAMPLES)
        )
        samples = [(dlq_message_id(topic, p, o), key) for p, o, key in conn.execute(first)]
        found.append(ErrorGroup(error, n, samples))
    return found


def _letter_of(row: Row[Any]) -> DeadLetter:
    return DeadLetter(
        row.id,
        row.topic,
        row.partition,
        row.offset,
        row.source_partition,
        row.source_offset,
        row.key,
        row.error,
        row.attempts,
        row.dead_at,
        LetterState(row.state),
        row.replay_id,
        row.replayed_as,
    )


def _replay_of(row: Row[Any]) -> Replay:
    return Replay(
        row.id,
        row.topic,
        dict(row.filter),
        row.actor,
        row.created_at,
        row.total,
        row.done,
        row.rate_per_s,
        ReplayState(row.state),
        row.changed_at,
        row.error,
        None if row.batch_ends is None else {int(p): o for p, o in row.batch_ends.items()},
    )
