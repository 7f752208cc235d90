"""Scheduled publishing in the store: ``schedules`` and ``schedule_ticks`` (one row per schedule and tick time).

A tick is claimed in one transaction that moves the schedule's ``last_tick_at`` forward only if it is before the
tick (a conditional update: of two coordinators claiming at once, one changes the row, the other changes
nothing) and inserts the tick's row (unique per schedule and tick time: a second claim is refused there too).
Every later change of a claimed tick names its owner: a coordinator that lost the tick to another (it was
silent too long, ``take_over``) changes nothing more.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from sqlalchemy import Row, delete, func, insert, or_, select, update

from xtreaming.coordinator.schedule_records import (
    Misfire,
    Schedule,
    ScheduleNotFound,
    Source,
    Tick,
    TickState,
    source_from_json,
    source_to_json,
)
from xtreaming.coordinator.schema import SCHEDULE_TICKS, SCHEDULES
from xtreaming.coordinator.store.database import Database
from xtreaming.coordinator.store.rows import new_id, one
from xtreaming.errors import InvalidRecord

#: Ticks kept per schedule (the newest); older finished ones are deleted as new ones finish.
KEPT_TICKS: Final = 1000

_S, _T = SCHEDULES.c, SCHEDULE_TICKS.c


class ScheduleTables:
    """The ``schedules`` and ``schedule_ticks`` tables; each method is one transaction."""

    def __init__(self, database: Database) -> None:
        self._database = database

    def add(self, topic: str, cron: str, source: Source, misfire: Misfire, actor: str, now: datetime) -> Schedule:
        values = {
            "topic": topic,
            "cron": cron,
            "source": source_to_json(source),
            "misfire": misfire.value,
            "created_at": now,
            "created_by": actor,
            "last_tick_at": None,
        }
        with self._database.write() as conn:
            schedule_id = new_id(conn.execute(insert(SCHEDULES).values(values)))
        return Schedule(schedule_id, topic, cron, source, misfire, now, actor, None)

    def all(self) -> list[Schedule]:
        with self._database.read() as conn:
            return [_schedule(r) for r in conn.execute(select(SCHEDULES).order_by(_S.id))]

    def get(self, schedule_id: int) -> Schedule:
        """Raises ScheduleNotFound."""
        with self._database.read() as conn:
            return _schedule(one(conn, SCHEDULES, _S.id == schedule_id, ScheduleNotFound, f"schedule {schedule_id}"))

    def remove(self, schedule_id: int) -> Schedule:
        """Remove a schedule and its ticks (a tick being published stops at its next batch). Raises ScheduleNotFound."""
        with self._database.write() as conn:
            row = one(conn, SCHEDULES, _S.id == schedule_id, ScheduleNotFound, f"schedule {schedule_id}")
            conn.execute(delete(SCHEDULE_TICKS).where(_T.schedule_id == schedule_id))
            conn.execute(delete(SCHEDULES).where(_S.id == schedule_id))
        return _schedule(row)

    def latest_ticks(self) -> dict[int, Tick]:
        """Each schedule's newest tick, by schedule id."""
        newest = select(_T.schedule_id, func.max(_T.tick_at).label("at")).group_by(_T.schedule_id).subquery()
        query = select(SCHEDULE_TICKS).join(
            newest, (_T.schedule_id == newest.c.schedule_id) & (_T.tick_at == newest.c.at)
        )
        with self._database.read() as conn:
            return {r.schedule_id: _tick(r) for r in conn.execute(query)}

    def ticks(self, schedule_id: int, limit: int) -> list[Tick]:
        """A schedule's ticks, newest first. Raises ScheduleNotFound."""
        with self._database.read() as conn:
            one(conn, SCHEDULES, _S.id == schedule_id, ScheduleNotFound, f"schedule {schedule_id}")
            query = select(SCHEDULE_TICKS).where(_T.schedule_id == schedule_id).order_by(_T.tick_at.desc())
            return [_tick(r) for r in conn.execute(query.limit(limit))]

    def claim(
        self,
        schedule_id: int,
        tick_at: datetime,
        *,
        missed: int,
        owner: str,
        now: datetime,
        ends: dict[int, int] | None,
        state: TickState = TickState.CLAIMED,
        error: str | None = None,
    ) -> Tick | None:
        """Claim the tick at ``tick_at`` for ``owner`` (or record it ``SKIPPED``): None when it, or a later tick, was
        claimed already, or the schedule is gone."""
        finished = None if state is TickState.CLAIMED else now
        values = {
            "schedule_id": schedule_id,
            "tick_at": tick_at,
            "state": state.value,
            "owner": owner,
            "beat_at": now,
            "claimed_at": now,
            "finished_at": finished,
            "ends": None if ends is None else {str(p): o for p, o in ends.items()},
            "published": 0,
            "missed": missed,
            "error": error,
        }
        forward = (
            update(SCHEDULES)
            .where(_S.id == schedule_id, or_(_S.last_tick_at.is_(None), _S.last_tick_at < tick_at))
            .values(last_tick_at=tick_at)
        )
        try:
            with self._database.write() as conn:
                if conn.execute(forward).rowcount != 1:
                    return None
                tick_id = new_id(conn.execute(insert(SCHEDULE_TICKS).values(values)))
        except InvalidRecord:  # the unique (schedule, tick) row: claimed by another meanwhile
            return None
        return Tick(tick_id, schedule_id, tick_at, state, owner, now, now, finished, ends, 0, missed, error)

    def beat(self, tick_id: int, owner: str, now: datetime, published: int) -> bool:
        """``owner`` is still publishing the tick (``published`` records of it in the log so far); False when the
        tick is no longer its own (taken over, or its schedule removed)."""
        return self._change(tick_id, owner, {"beat_at": now, "published": published})

    def finish(
        self, tick_id: int, owner: str, now: datetime, state: TickState, published: int, error: str | None
    ) -> bool:
        """Record the tick's outcome; False (nothing changed) when it is no longer ``owner``'s."""
        values = {"state": state.value, "finished_at": now, "beat_at": now, "published": published, "error": error}
        done = self._change(tick_id, owner, values)
        if done:
            self._prune(tick_id)
        return done

    def silent_claims(self, beat_before: datetime) -> list[Tick]:
        """Claimed ticks whose owner has not been heard of since before ``beat_before`` (killed, or cut off)."""
        query = select(SCHEDULE_TICKS).where(_T.state == TickState.CLAIMED.value, _T.beat_at < beat_before)
        with self._database.read() as conn:
            return [_tick(r) for r in conn.execute(query.order_by(_T.tick_at))]

    def take_over(self, tick: Tick, owner: str, now: datetime) -> bool:
        """Make ``owner`` the tick's owner if it is still as ``tick`` shows it (same owner, same last beat): of
        several coordinators taking over at once, one does."""
        statement = (
            update(SCHEDULE_TICKS)
            .where(
                _T.id == tick.id,
                _T.state == TickState.CLAIMED.value,
                _T.owner == tick.owner,
                _T.beat_at == tick.beat_at,
            )
            .values(owner=owner, beat_at=now)
        )
        with self._database.write() as conn:
            return bool(conn.execute(statement).rowcount == 1)

    def _change(self, tick_id: int, owner: str, values: dict[str, Any]) -> bool:
        statement = (
            update(SCHEDULE_TICKS)
            .where(_T.id == tick_id, _T.owner == owner, _T.state == TickState.CLAIMED.value)
            .values(values)
        )
        with self._database.write() as conn:
            return bool(conn.execute(statement).rowcount == 1)

    def _prune(self, tick_id: int) -> None:
        """Keep the newest ``KEPT_TICKS`` ticks of the tick's schedule."""
        with self._database.write() as conn:
            schedule_id = conn.execute(select(_T.schedule_id).where(_T.id == tick_id)).scalar()
            oldest_kept = conn.execute(
                select(_T.tick_at)
                .where(_T.schedule_id == schedule_id)
                .order_by(_T.tick_at.desc())
                .offset(KEPT_TICKS - 1)
                .limit(1)
            ).scalar()
            if oldest_kept is not None:
                conn.execute(
                    delete(SCHEDULE_TICKS).where(
                        _T.schedule_id == schedule_id,
                        _T.tick_at < oldest_kept,
                        _T.state != TickState.CLAIMED.value,
                    )
                )


def _schedule(row: Row[Any]) -> Schedule:
    return Schedule(
        id=row.id,
        topic=row.topic,
        cron=row.cron,
        source=source_from_json(row.source),
        misfire=Misfire(row.misfire),
        created_at=row.created_at,
        created_by=row.created_by,
        last_tick_at=row.last_tick_at,
    )


def _tick(row: Row[Any]) -> Tick:
    return Tick(
        id=row.id,
        schedule_id=row.schedule_id,
        tick_at=row.tick_at,
        state=TickState(row.state),
        owner=row.owner,
        beat_at=row.beat_at,
        claimed_at=row.claimed_at,
        finished_at=row.finished_at,
        ends=None if row.ends is None else {int(p): int(o) for p, o in row.ends.items()},
        published=row.published,
        missed=row.missed,
        error=row.error,
    )
