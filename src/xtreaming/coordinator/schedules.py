"""Scheduled publishing: schedules added and removed through the API, and a thread of their own that publishes
each tick, on the leader only (``is_leader``), at most once however many coordinators share the store.

A tick goes in three steps: (1) the topic's end offsets are read, then one store transaction claims the tick
(``store/schedules.py``: a row per schedule and tick time, refused to a second coordinator) with those ends;
(2) its records are appended in batches, each record with ``TICK_HEADER`` (the tick) and ``RECORD_HEADER`` (its
place among the tick's records), the claim renewed before each batch; (3) its outcome is recorded: published
(how many records), or failed with the error when the source failed (a callable raised, the CSV went away).

A coordinator killed (or cut off from the store) between (1) and (3) leaves the tick claimed and silent. After
``takeover_s`` without a renewal, any coordinator running schedules takes it over (one does: a conditional
update), reads the topic from the recorded ends for the tick's records, and publishes only those whose place is
not there: the tick ends published exactly once, as long as its source gives the same records again (a CSV
file, a fixed message; a callable that is not deterministic gives what it gives the second time). A claim is
renewed only just before an append, so the records of a coordinator that lost its claim stop at the batch it
was appending; a batch whose append outlasted ``takeover_s`` may be appended twice (the broker has no fencing).

Ticks missed while no coordinator ran schedules (an outage): with ``Misfire.ONCE`` the latest one runs once;
with ``Misfire.SKIP`` none does, unless the latest is still on time (``core.cron.ON_TIME_S``), and a row records
the skip. A pass runs at most one tick per schedule, one tick at a time, never holding the coordinator's lock.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Final

from xtreaming.broker import Broker
from xtreaming.coordinator.core.cron import cron_problem, due_tick, next_tick
from xtreaming.coordinator.schedule_records import (
    InvalidSchedule,
    Misfire,
    Schedule,
    Source,
    Tick,
    TickState,
    source_to_json,
    tick_name,
)
from xtreaming.coordinator.schedule_sources import check_source, records_of
from xtreaming.coordinator.store import Store
from xtreaming.coordinator.tick_records import end_offsets, found_in_log, numbered_batches, stamped
from xtreaming.errors import BrokerUnavailable, StoreUnavailable
from xtreaming.topics import TopicName

log = logging.getLogger("xtreaming.coordinator")

#: How long a claimed tick may go without its owner renewing the claim before another coordinator finishes it.
DEFAULT_TAKEOVER_S: Final = 60.0
#: How often the thread looks for due ticks (a schedule added wakes it at once).
PASS_S: Final = 0.5

Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _always() -> bool:
    return True


class _TickLost(Exception):
    """The tick is no longer this coordinator's (taken over, its schedule removed, or leadership lost)."""


@dataclass(frozen=True, slots=True)
class ScheduleView:
    """A schedule as the API and the screen show it: its newest tick and when the next one comes."""

    schedule: Schedule
    last: Tick | None
    next_at: datetime


class Schedules:
    """Every schedule of the site and the thread that runs them; see the module docstring."""

    def __init__(
        self,
        store: Store,
        broker: Callable[[], Broker | None],
        *,
        zone: tzinfo,
        partitions: int,
        clock: Clock = _utc_now,
        is_leader: Callable[[], bool] = _always,
        takeover_s: float = DEFAULT_TAKEOVER_S,
    ) -> None:
        """``broker``: the broker of the coordinator serving now (None while none does: a standby). ``partitions``:
        of a topic a tick creates. ``is_leader``: whether this coordinator may run ticks now (always, by default:
        one coordinator)."""
        self._store = store
        self._broker = broker
        self._zone = zone
        self._partitions = partitions
        self._clock = clock
        self.is_leader = is_leader
        self.takeover_s = takeover_s
        #: This process, as the owner of the ticks it claims (a restart is another owner).
        self.owner = f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:8]}"
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the API's side ---------------------------------------------------------------------------

    def add(self, topic: str, cron: str, source: Source, misfire: Misfire, actor: str) -> Schedule:
        """Store a schedule after checking it can run (audited ``schedules.add``); its first tick is the first one
        after now. Raises InvalidTopicName, InvalidSchedule or InvalidInput, storing nothing."""
        name = str(TopicName.parse(topic))
        problem = cron_problem(cron)
        if problem is not None:
            raise InvalidSchedule(problem)
        broker = self._broker()
        if broker is None:
            raise BrokerUnavailable("this coordinator does not serve now: no broker to check the schedule against")
        check_source(source, broker.max_record_bytes)
        with self._store.transaction():
            schedule = self._store.schedules.add(name, cron, source, misfire, actor, self._clock())
            details = {"id": schedule.id, "cron": cron, "misfire": misfire.value, "source": source_to_json(source)}
            self._store.audit(actor, "schedules.add", name, details)
        self._wake.set()
        return schedule

    def remove(self, schedule_id: int, actor: str) -> None:
        """Remove a schedule and its ticks (audited ``schedules.remove``). Raises ScheduleNotFound."""
        with self._store.transaction():
            schedule = self._store.schedules.remove(schedule_id)
            self._store.audit(actor, "schedules.remove", schedule.topic, {"id": schedule_id, "cron": schedule.cron})

    def listing(self) -> list[ScheduleView]:
        """Every schedule with its newest tick and its next tick (in the past when one is due and not run yet)."""
        latest = self._store.schedules.latest_ticks()
        return [
            ScheduleView(s, latest.get(s.id), next_tick(s.cron, self._zone, s.last_tick_at or s.created_at))
            for s in self._store.schedules.all()
        ]

    def ticks(self, schedule_id: int, limit: int) -> list[Tick]:
        """A schedule's ticks, newest first. Raises ScheduleNotFound."""
        return self._store.schedules.ticks(schedule_id, limit)

    # -- the thread -------------------------------------------------------------------------------

    def start(self) -> None:
        """Run ticks in a thread from now on (a tick left claimed by a process killed is finished once silent)."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="xtreaming-schedules", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop after the batch in flight; a tick cut short is finished by whoever runs schedules next."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                self.run_once()
            except Exception:  # a thread of its own: it must outlive an outage; the log says what happened
                log.exception("scheduled publishing failed; trying again")
            self._wake.wait(PASS_S)

    def run_once(self) -> int:
        """One pass, if this coordinator leads: finish the ticks whose owner went silent, then run each schedule's
        due tick. Returns how many ticks it finished, ran or skipped."""
        broker = self._broker()
        if broker is None or not self.is_leader():
            return 0
        done = 0
        now = self._clock()
        for tick in self._store.schedules.silent_claims(now - timedelta(seconds=self.takeover_s)):
            if self._stop.is_set() or not self.is_leader():
                return done
            done += self._finish_silent(broker, tick)
        for schedule in self._store.schedules.all():
            if self._stop.is_set() or not self.is_leader():
                return done
            done += self._run_due(broker, schedule)
        return done

    def _run_due(self, broker: Broker, schedule: Schedule) -> int:
        now = self._clock()
        due = due_tick(schedule.cron, self._zone, schedule.last_tick_at or schedule.created_at, now)
        if due is None:
            return 0
        schedules = self._store.schedules
        if due.late and schedule.misfire is Misfire.SKIP:
            skipped = f"missed (no coordinator ran schedules at {due.tick_at.isoformat()}): skipped"
            tick = schedules.claim(
                schedule.id, due.tick_at, missed=due.missed, owner=self.owner, now=now, ends=None,
                state=TickState.SKIPPED, error=skipped,
            )  # fmt: skip
            if tick is not None:
                log.warning("schedule %d (%s): tick %s %s", schedule.id, schedule.topic, due.tick_at, skipped)
            return 0 if tick is None else 1
        ends = end_offsets(broker, schedule.topic)  # before the claim: every record of the tick lands at or after them
        tick = schedules.claim(schedule.id, due.tick_at, missed=due.missed, owner=self.owner, now=now, ends=ends)
        if tick is None:
            return 0  # another coordinator claimed it (or a later one)
        if due.missed:
            log.warning(
                "schedule %d (%s): %d ticks missed before %s", schedule.id, schedule.topic, due.missed, tick.tick_at
            )
        self._publish(broker, schedule, tick, found=set())
        return 1

    def _finish_silent(self, broker: Broker, tick: Tick) -> int:
        """Take over a tick whose owner went silent and finish it from what the log holds of it."""
        if not self._store.schedules.take_over(tick, self.owner, self._clock()):
            return 0  # another coordinator did, or its owner came back
        schedule = next((s for s in self._store.schedules.all() if s.id == tick.schedule_id), None)
        if schedule is None:
            return 0  # removed meanwhile (its ticks with it)
        found = found_in_log(broker, schedule.topic, tick)
        log.warning(
            "schedule %d (%s): tick %s was cut short (its owner %s went silent): %d of its records are in the log; "
            "finishing it", schedule.id, schedule.topic, tick.tick_at, tick.owner, len(found),
        )  # fmt: skip
        self._publish(broker, schedule, replace(tick, owner=self.owner), found)
        return 1

    def _publish(self, broker: Broker, schedule: Schedule, tick: Tick, found: set[int]) -> None:
        """Append the tick's records whose place is not in ``found``, then record the outcome (see the module
        docstring). An outage of the broker or the store leaves the tick claimed, to be finished later."""
        name = tick_name(schedule.id, tick.tick_at)
        in_log = len(found)
        total = 0
        created = False
        schedules = self._store.schedules
        try:
            for batch in numbered_batches(records_of(schedule.source, broker.max_record_bytes)):
                total = batch[-1][0] + 1
                missing = stamped(batch, name, found)
                if not missing:
                    continue
                if not self.is_leader() or not schedules.beat(tick.id, self.owner, self._clock(), in_log):
                    raise _TickLost
                if not created:  # a topic made by the tick's first batch, as a publish does
                    broker.create_topic(schedule.topic, self._partitions)
                    created = True
                broker.append(schedule.topic, missing)
                in_log += len(missing)
        except _TickLost:
            log.warning("schedule %d: tick %s is no longer this coordinator's: stopped", schedule.id, tick.tick_at)
            return
        except (BrokerUnavailable, StoreUnavailable) as exc:
            log.warning("schedule %d: tick %s cut short (%s): finished once silent", schedule.id, tick.tick_at, exc)
            return
        except Exception as exc:  # the source failed: a callable raised, the CSV is gone or changed, a bad record
            error = f"{type(exc).__name__}: {exc}"
            log.error("schedule %d (%s): tick %s failed: %s", schedule.id, schedule.topic, tick.tick_at, error)
            schedules.finish(tick.id, self.owner, self._clock(), TickState.FAILED, in_log, error)
            return
        if schedules.finish(tick.id, self.owner, self._clock(), TickState.PUBLISHED, max(total, in_log), None):
            log.info("schedule %d (%s): tick %s published %d records", schedule.id, schedule.topic, tick.tick_at, total)
