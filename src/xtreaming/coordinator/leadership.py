"""Which coordinator leads: one leader among any number started with the same configuration, the others
standing by to take over; and the fence that keeps a deposed leader from changing anything.

Why a lease row with an epoch, not a PostgreSQL advisory lock. A session lock is held as long as its
connection lives, and the connection of a paused process (SIGSTOP, a long GC, a frozen VM) lives on: the
kernel still answers TCP keep-alives for it, so a standby would wait forever. The lease row lapses by
itself: the leader counts a ``beat`` every third of ``lease_s``; a standby that sees the row unchanged for
``lease_s`` on its own monotonic clock (no clock shared between machines is needed) takes over, moving
``epoch`` on by one. The row lives in the store's own schema, so two sites (or two tests) in one database
never meet; advisory lock keys are database-wide.

Fencing. A leader holds the lead for ``lease_s`` from the moment it sent its last successful renewal: the
standby's count starts no earlier than that renewal's commit, so the old lead lapses before a takeover.
Every state write checks it first, locally (``holds``: a process that wakes from a pause finds the time
gone at once) and in the database: each write transaction reads the row ``FOR KEY SHARE`` and is refused
(NotLeader) unless it is still at the leader's epoch. A takeover locks the row ``FOR UPDATE``, so it waits
for the old leader's write transactions still open and none of them commits after the epoch moved; the
server ends a transaction left idle for ``lease_s`` (its process paused), so that wait is bounded.

A deposed leader steps down to standby in the same process: it stops serving at once (the API answers
503, naming the leader), its coordinator is dropped, and it may be elected again later, building a new
one from the store and the broker as a start does (``api/serving.py``).

A SQLite store belongs to one coordinator: ``SoleLeadership`` always leads, and nothing is fenced.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import Connection

from xtreaming.coordinator.store.leadership import LeaderRow, LeadershipTable, check
from xtreaming.errors import NotLeader, StoreUnavailable

log = logging.getLogger("xtreaming.coordinator")


class Role(StrEnum):
    """What a coordinator is now: ``leader`` serves; ``standby`` waits; ``down`` cannot reach the state store
    (a leader that lost it stops serving until it renews, or is replaced)."""

    LEADER = "leader"
    STANDBY = "standby"
    DOWN = "down"


@dataclass(frozen=True, slots=True)
class Leader:
    """The coordinator that leads, as far as this one knows: where it answers, since when, in which epoch."""

    url: str | None
    since: datetime | None
    epoch: int


class SoleLeadership:
    """One coordinator on its own store (SQLite): always the leader, since it started."""

    def __init__(self, url: str, since: datetime) -> None:
        self._leader = Leader(url, since, 0)

    def holds(self) -> bool:
        return True

    def role(self) -> Role:
        return Role.LEADER

    def leader(self) -> Leader:
        return self._leader


class Leadership:
    """The election among coordinators sharing a store (see the module docstring). ``step()`` is one look
    (renew, or watch and maybe take over), which ``run`` repeats every third of ``lease_s`` in a thread."""

    def __init__(
        self,
        table: LeadershipTable,
        url: str,
        lease_s: float,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._table = table
        self.url = url
        self.lease_s = lease_s
        self._monotonic = monotonic
        self._now = now
        #: This process among every coordinator that ever ran: the row's ``holder``.
        self.holder = uuid.uuid4().hex
        self._lock = threading.Lock()
        self._epoch: int | None = None  # the epoch this process leads in
        self._valid_until = 0.0  # monotonic: the lead lapses then unless renewed
        self._seen: LeaderRow | None = None  # the row as a standby last saw it change…
        self._seen_at = 0.0  # …and when
        self._leader: Leader | None = None
        self._reachable = True
        #: Set at each change of who leads; ``serving.py`` waits on it.
        self.changed = threading.Event()

    # -- what the API asks --------------------------------------------------------------------

    def holds(self) -> bool:
        """Whether this process leads now: elected, and its lead not lapsed."""
        with self._lock:
            return self._epoch is not None and self._monotonic() < self._valid_until

    @property
    def epoch(self) -> int | None:
        """The epoch this process leads in (its lead may have lapsed: ``holds``), or None."""
        with self._lock:
            return self._epoch

    def role(self) -> Role:
        if self.holds():
            return Role.LEADER
        with self._lock:
            return Role.STANDBY if self._reachable and self._epoch is None else Role.DOWN

    def leader(self) -> Leader | None:
        """Who leads as last read (this process while it holds the lead); None before the first look, when nobody
        leads, or when this process's own lead lapsed (it does not know yet who took over, if anybody)."""
        with self._lock:
            leader, lapsed = self._leader, self._epoch is None or self._monotonic() >= self._valid_until
        if leader is not None and leader.url == self.url and lapsed:
            return None
        return leader

    def fence(self, conn: Connection) -> None:
        """The store's fence (``Store.fence_writes``): raise NotLeader unless this process leads, in memory and
        in the database."""
        with self._lock:
            epoch, lapsed = self._epoch, self._monotonic() >= self._valid_until
            leader = self._leader
        if epoch is None or lapsed:
            url = leader.url if leader is not None and leader.url != self.url else None
            raise NotLeader("this coordinator is not the leader now: nothing was changed", url)
        check(conn, epoch)

    # -- the election ---------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Look every third of ``lease_s`` until ``stop`` is set; a look that fails is logged, never fatal."""
        while not stop.is_set():
            try:
                self.step()
            except Exception:
                log.exception("leadership: a look at the lease failed; trying again")
            stop.wait(self.lease_s / 3)

    def step(self) -> None:
        """One look: renew the lead, or watch the leader's and take over once it lapsed."""
        if self.epoch is not None:
            self._renew()
        else:
            self._watch()

    def release(self) -> None:
        """Let go of the lead, if held (a clean stop): a standby takes over at its next look, not a lease later."""
        with self._lock:
            epoch, self._epoch = self._epoch, None
        if epoch is not None:
            try:
                self._table.release(epoch)
            except StoreUnavailable as exc:
                log.warning("leadership: could not let go of epoch %d (it lapses by itself): %s", epoch, exc)
            self.changed.set()

    def _renew(self) -> None:
        epoch = self.epoch
        if epoch is None:
            return
        sent = self._monotonic()
        try:
            renewed = self._table.renew(epoch)
        except StoreUnavailable as exc:
            self._unreachable(exc)
            return
        self._reached()
        with self._lock:
            if self._epoch != epoch:
                return  # let go meanwhile
            if renewed:
                self._valid_until = sent + self.lease_s
                return
            self._epoch = None
            self._seen = None
        log.warning("leadership: another coordinator took over from epoch %d; this one stands by", epoch)
        self.changed.set()
        self._watch()  # who leads now, for the answers naming the leader

    def _watch(self) -> None:
        try:
            row = self._table.read()
        except StoreUnavailable as exc:
            self._unreachable(exc)
            return
        self._reached()
        now_s = self._monotonic()
        with self._lock:
            self._leader = None if row.holder is None else Leader(row.url, row.since, row.epoch)
            if row.holder is not None:
                seen = self._seen
                if seen is None or (row.epoch, row.beat) != (seen.epoch, seen.beat):
                    self._seen, self._seen_at = row, now_s  # the leader lives (or a new one): count from now
                    return
                if now_s - self._seen_at < self.lease_s:
                    return
        self._take_over(row)

    def _take_over(self, row: LeaderRow) -> None:
        sent = self._monotonic()
        try:
            taken = self._table.take_over(row, self.holder, self.url, self._now(), wait_s=self.lease_s / 3)
        except StoreUnavailable as exc:
            log.warning("leadership: could not take over from epoch %d yet: %s", row.epoch, exc)
            return
        with self._lock:
            self._seen = None
            if taken is None:
                return
            self._epoch, self._valid_until = taken.epoch, sent + self.lease_s
            self._leader = Leader(taken.url, taken.since, taken.epoch)
        gone = "nobody led" if row.holder is None else f"the leader of epoch {row.epoch} ({row.url}) lapsed"
        log.warning("leadership: this coordinator (%s) leads from epoch %d: %s", self.url, taken.epoch, gone)
        self.changed.set()

    def _unreachable(self, exc: StoreUnavailable) -> None:
        with self._lock:
            first, self._reachable = self._reachable, False
        if first:
            log.warning(
                "leadership: the state store does not answer (%s); a leader stops serving once its lead lapses", exc
            )

    def _reached(self) -> None:
        with self._lock:
            self._reachable = True
