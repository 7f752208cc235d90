"""The leadership row in the store: who leads, in which epoch, since when; and the check that fences writes.

Every statement here runs outside the fence (``Database.write(fenced=False)``): this row decides who
passes it. ``coordinator/leadership.py`` explains the protocol built on these statements.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import Connection, select, text, update

from xtreaming.coordinator.schema import LEADERSHIP
from xtreaming.coordinator.store.database import Database
from xtreaming.errors import NotLeader

#: The one row's id.
ROW: Final = 1


@dataclass(frozen=True, slots=True)
class LeaderRow:
    """The leadership row as read: ``holder`` None means nobody leads (never yet, or the last one let go)."""

    epoch: int
    beat: int
    holder: str | None
    url: str | None
    since: datetime | None


class LeadershipTable:
    """The ``leadership`` table (one row, made by its migration)."""

    def __init__(self, database: Database) -> None:
        self._database = database

    def read(self) -> LeaderRow:
        with self._database.read() as conn:
            row = conn.execute(select(LEADERSHIP).where(LEADERSHIP.c.id == ROW)).one()
        return LeaderRow(row.epoch, row.beat, row.holder, row.url, row.since)

    def renew(self, epoch: int) -> bool:
        """Count one more beat of the leader of ``epoch``; False when another coordinator took over since."""
        with self._database.write(fenced=False) as conn:
            result = conn.execute(
                update(LEADERSHIP)
                .where(LEADERSHIP.c.id == ROW, LEADERSHIP.c.epoch == epoch)
                .values(beat=LEADERSHIP.c.beat + 1)
            )
        return result.rowcount == 1

    def take_over(self, seen: LeaderRow, holder: str, url: str, at: datetime, wait_s: float) -> LeaderRow | None:
        """Lead from the next epoch, if the row is still as ``seen`` (nobody renewed or took over since); None
        otherwise. On PostgreSQL the row is locked first (``FOR UPDATE``): that waits, up to ``wait_s``, for
        the old leader's write transactions still open, each holding it ``FOR KEY SHARE`` (``check``), so none
        of them commits once the epoch has moved. Raises StoreUnavailable when the wait runs out."""
        with self._database.write(fenced=False) as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text(f"SET LOCAL lock_timeout = {max(1, round(wait_s * 1000))}"))
                query = select(LEADERSHIP.c.epoch, LEADERSHIP.c.beat).where(LEADERSHIP.c.id == ROW).with_for_update()
            else:  # SQLite: BEGIN IMMEDIATE already holds the database's one write lock
                query = select(LEADERSHIP.c.epoch, LEADERSHIP.c.beat).where(LEADERSHIP.c.id == ROW)
            now = conn.execute(query).one()
            if (now.epoch, now.beat) != (seen.epoch, seen.beat):
                return None
            taken = LeaderRow(seen.epoch + 1, 0, holder, url, at)
            conn.execute(
                update(LEADERSHIP)
                .where(LEADERSHIP.c.id == ROW)
                .values(epoch=taken.epoch, beat=0, holder=holder, url=url, since=at)
            )
        return taken

    def release(self, epoch: int) -> None:
        """Let go of the lead of ``epoch`` (a coordinator stopping): a standby takes over at its next look."""
        with self._database.write(fenced=False) as conn:
            conn.execute(
                update(LEADERSHIP).where(LEADERSHIP.c.id == ROW, LEADERSHIP.c.epoch == epoch).values(holder=None)
            )


def check(conn: Connection, epoch: int, leader_url: str | None = None) -> None:
    """The fence: raise NotLeader unless the row is still at ``epoch``. Run first in a write transaction;
    on PostgreSQL the row stays locked ``FOR KEY SHARE`` until the transaction ends, which a plain renewal
    does not wait for but a takeover does (``take_over``)."""
    query = select(LEADERSHIP.c.epoch, LEADERSHIP.c.url).where(LEADERSHIP.c.id == ROW)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(key_share=True, read=True)
    row = conn.execute(query).one()
    if row.epoch != epoch:
        raise NotLeader(
            f"this coordinator led in epoch {epoch}, and the lead has passed to epoch {row.epoch}: nothing was changed",
            row.url or leader_url,
        )
