"""The farms the coordinator knows: registration and incarnations, heartbeats reconciled with the
coordinator's view of their slots, and which of them are lost.

Incarnations. A farm process sends an ``instance`` id new at each start. A registration by another
instance of a known farm means the process that held its tasks is gone (crashed and relaunched):
those tasks are released at once. A heartbeat from an instance that is no longer the registered
one (a second process under the same name, or an old one come back) is not the farm's.

Urgent slots. A farm's last slots may be kept for urgent work: they take only queues at or above a
priority (``UrgentSlots``), as the farm registers them or, when it does not say, as the site does.

Silence. A farm silent for ``lost_after_heartbeats`` intervals is lost, counting only the time the
coordinator was listening: from its start, and from its return after it stopped running for an
interval or more (the process frozen, the machine stalled), every farm counts as heard, so a farm
whose heartbeats could not be received keeps its tasks.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Final

from xtreaming.coordinator.core.scheduler import SlotGroup
from xtreaming.coordinator.core.state import MAX_PRIORITY, MIN_PRIORITY, Labels, labels_of
from xtreaming.coordinator.options import CoordinatorOptions
from xtreaming.coordinator.records import FarmRecord, SlotRecord
from xtreaming.coordinator.store import Store
from xtreaming.defaults import DEFAULT_URGENT_PRIORITY
from xtreaming.errors import FarmNotFound, InvalidInput, StoreUnavailable

log = logging.getLogger("xtreaming.coordinator")

#: A task a farm's heartbeats leave out is released after this many heartbeats in a row left it out
#: (the first one may have been sent before the farm started it).
MISSING_HEARTBEATS: Final = 2


@dataclass(frozen=True, slots=True)
class UrgentSlots:
    """A farm's slots kept for urgent work: its last ``count`` slot indexes take only queues of ``priority`` or
    above (the scheduler's ``FreeSlot.min_priority``); the others take any queue, urgent ones included."""

    count: int = 0
    priority: int = DEFAULT_URGENT_PRIORITY

    @classmethod
    def of(cls, record: FarmRecord, options: CoordinatorOptions) -> UrgentSlots:
        """The farm's own setting, else the site's; the site's count leaves the farm one ordinary slot at least."""
        count = min(options.urgent_slots, record.slots - 1) if record.urgent_slots is None else record.urgent_slots
        priority = options.urgent_priority if record.urgent_priority is None else record.urgent_priority
        return cls(count, priority)

    def min_priority(self, slot: int, slots: int) -> int:
        """The least priority slot ``slot`` of a farm of ``slots`` slots takes (0: any queue)."""
        return self.priority if slot >= slots - self.count else MIN_PRIORITY


def check_urgent_slots(slots: int, urgent_slots: int | None, urgent_priority: int | None) -> None:
    """Raise InvalidInput unless a farm of ``slots`` slots may keep ``urgent_slots`` of them for queues of
    ``urgent_priority`` or above (None: the site's): fewer than its slots, a priority in 1..9."""
    if urgent_slots is not None and not 0 <= urgent_slots < slots:
        raise InvalidInput(
            f"urgent_slots {urgent_slots} must be in 0..{slots - 1}: a farm of {slots} slot(s) keeps at least "
            "one ordinary slot"
        )
    if urgent_priority is not None and not MIN_PRIORITY < urgent_priority <= MAX_PRIORITY:
        raise InvalidInput(
            f"urgent_priority {urgent_priority} must be in {MIN_PRIORITY + 1}..{MAX_PRIORITY}: "
            f"a slot kept for priority {MIN_PRIORITY} or above takes any queue"
        )


@dataclass(slots=True)
class FarmRuntime:
    """A registered farm: its record, its labels as the scheduler matches them, its urgent slots in force,
    whether it is lost."""

    record: FarmRecord
    labels: Labels
    urgent: UrgentSlots = UrgentSlots()
    lost: bool = False
    #: Its tasks its heartbeats left out: task id → how many heartbeats in a row, and since when.
    missing: dict[str, tuple[int, datetime]] = field(default_factory=dict)
    #: Its slots as its last heartbeat reported them, by index (the screen's farm detail).
    slots_seen: dict[int, SlotRecord] = field(default_factory=dict)

    def min_priority(self, slot: int) -> int:
        """The least priority of the queues slot ``slot`` takes (0: any; see ``UrgentSlots``)."""
        return self.urgent.min_priority(slot, self.record.slots)

    def slot_groups(self, busy: Collection[int]) -> list[SlotGroup]:
        """Its ordinary and its urgent slots, each with how many are idle (``busy``: the indexes running a task)."""
        ordinary = self.record.slots - self.urgent.count
        groups = [SlotGroup(self.labels, MIN_PRIORITY, ordinary - sum(1 for s in busy if s < ordinary))]
        if self.urgent.count:
            idle = self.urgent.count - sum(1 for s in busy if s >= ordinary)
            groups.append(SlotGroup(self.labels, self.urgent.priority, idle))
        return groups


@dataclass(frozen=True, slots=True)
class SlotDetail:
    """One slot of a farm as the screen shows it: from the farm's last heartbeat and the task leased to it."""

    index: int
    state: str  # idle | running | stopping
    urgent: bool
    task_id: str | None = None
    topic: str | None = None
    done: int | None = None
    total: int | None = None
    rss_bytes: int | None = None
    running_s: float | None = None


@dataclass(frozen=True, slots=True)
class Reconciled:
    """What a heartbeat answers: the tasks the farm must stop (unknown here, or leased elsewhere), and
    whether the farm's process is no longer the registered instance (then every task it runs is listed)."""

    stop: tuple[str, ...] = ()
    superseded: bool = False


class Farms:
    """The registered farms by id, kept in the store. Not thread-safe: the coordinator holds its lock."""

    def __init__(self, store: Store, options: CoordinatorOptions, ticks: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.options = options
        self._farms: dict[str, FarmRuntime] = {}
        self._ticks = ticks
        self._born = ticks()
        self._last_tick = self._born
        #: From when silence counts, on the coordinator's clock (see the module docstring); set at first use.
        self._listening_since: datetime | None = None

    def load(self) -> None:
        """Know the farms the store has (after a restart, before they register again)."""
        for record in self.store.list_farms():
            self._farms[record.id] = self._runtime(record)

    def register(
        self,
        name: str,
        labels: Mapping[str, str],
        slots: int,
        instance: str | None,
        now: datetime,
        actor: str,
        *,
        urgent_slots: int | None = None,
        urgent_priority: int | None = None,
    ) -> tuple[FarmRecord, bool]:
        """Register (or re-register, after a restart of either side) the farm called ``name``, audited as done
        by ``actor`` (the token's name), with its own urgent slots (None: the site's; ``check_urgent_slots``).

        Returns its record, and True when this is a new incarnation of a known farm: another process
        than the one registered (instance ids differ), whose tasks the caller releases. Raises InvalidInput
        for urgent slots a farm of ``slots`` slots cannot keep, having changed nothing."""
        check_urgent_slots(slots, urgent_slots, urgent_priority)
        known = self._farms.get(name)
        replaced = known is not None and known.record.instance != instance
        record = FarmRecord(
            id=name,
            name=name,
            labels=dict(labels),
            slots=slots,
            heartbeat_interval_s=self.options.heartbeat_interval_s,
            registered_at=known.record.registered_at if known and not replaced else now,
            last_heartbeat_at=now,
            instance=instance,
            urgent_slots=urgent_slots,
            urgent_priority=urgent_priority,
        )
        with self.store.transaction():  # the farm and its audit entry, or neither
            self.store.put_farm(record)
            details = {"slots": slots, "labels": dict(labels), "instance": instance}
            if urgent_slots is not None or urgent_priority is not None:
                details |= {"urgent_slots": urgent_slots, "urgent_priority": urgent_priority}
            self.store.audit(actor, "farm.register", name, details)
        self._farms[name] = self._runtime(record)
        if replaced and known is not None:
            log.warning("farm %s restarted: instance %s, was %s", name, instance, known.record.instance)
        return record, replaced

    def _runtime(self, record: FarmRecord) -> FarmRuntime:
        return FarmRuntime(record, labels_of(record.labels), UrgentSlots.of(record, self.options))

    def require(self, farm_id: str) -> FarmRuntime:
        """The farm ``farm_id``; raises ``FarmNotFound`` when it is not registered."""
        farm = self._farms.get(farm_id)
        if farm is None:
            raise FarmNotFound(f"farm {farm_id!r} is not registered; register it first")
        return farm

    def heartbeat(self, farm_id: str, instance: str | None, now: datetime) -> bool:
        """The farm is alive: its last heartbeat moves to ``now``. False (and nothing changes) when
        ``instance`` is not the farm's registered instance; None (a farm that sends none) is taken as it."""
        farm = self.require(farm_id)
        if instance is not None and instance != farm.record.instance:
            log.warning(
                "farm %s: heartbeat from instance %s, but instance %s registered since; it is told to stop",
                farm_id, instance, farm.record.instance,
            )  # fmt: skip
            return False
        farm.record = replace(farm.record, last_heartbeat_at=now)
        farm.lost = False
        # Stored for the screen after a restart (which gives every farm a grace anyway): a state store
        # that is down must not make farms count as silent, nor make them stop their tasks.
        with suppress(StoreUnavailable):
            self.store.record_heartbeat(farm_id, now)
        return True

    def missing(
        self, farm_id: str, leased: Mapping[str, datetime], accounted: Collection[str], now: datetime
    ) -> list[str]:
        """Of the farm's tasks (``leased``: id → leased at), those to release: left out of the farm's
        last ``MISSING_HEARTBEATS`` heartbeats (this one included), neither running in a slot nor waiting
        to be reported (``accounted``), and leased more than a heartbeat interval ago."""
        farm = self.require(farm_id)
        interval = timedelta(seconds=farm.record.heartbeat_interval_s)
        missing: dict[str, tuple[int, datetime]] = {}
        release = []
        for task_id, leased_at in leased.items():
            if task_id in accounted or leased_at > now - interval:
                continue
            count, since = farm.missing.get(task_id, (0, now))
            missing[task_id] = (count + 1, since)
            # Heartbeats sent in a burst (a farm catching up) do not count as an interval.
            if count + 1 >= MISSING_HEARTBEATS and now - since >= interval / 2:
                release.append(task_id)
        farm.missing = {t: seen for t, seen in missing.items() if t not in release}
        return release

    def find_lost(self, now: datetime) -> set[str]:
        """Mark the farms silent for too long as lost (logged once each); returns their ids."""
        heard_floor = self._listening(now)
        lost = set()
        for farm in self._farms.values():
            silence = timedelta(seconds=farm.record.heartbeat_interval_s * self.options.lost_after_heartbeats)
            if max(farm.record.last_heartbeat_at, heard_floor) + silence <= now:
                if not farm.lost:
                    log.warning("farm %s lost: silent since %s", farm.record.id, farm.record.last_heartbeat_at)
                farm.lost = True
                lost.add(farm.record.id)
        return lost

    def _listening(self, now: datetime) -> datetime:
        """Since when the coordinator has been listening to farms without a pause (as of ``now``).

        The start is measured on the monotonic clock (how long ago this memory was made) and then
        kept on the coordinator's clock, which every heartbeat time is on. A pause is a gap of a
        heartbeat interval or more between two calls: the background loop calls this every pass."""
        tick = self._ticks()
        if self._listening_since is None:
            self._listening_since = now - timedelta(seconds=tick - self._born)
        elif tick - self._last_tick >= self.options.heartbeat_interval_s:
            log.warning(
                "coordinator did not run for %.1f s: farms are heard from again before any is counted lost",
                tick - self._last_tick,
            )
            self._listening_since = now
        self._last_tick = tick
        return self._listening_since

    def live_labels(self) -> list[Labels]:
        """The labels of each farm not lost: where a queue's required labels could be met."""
        return [f.labels for f in self._farms.values() if not f.lost]

    def live_slots(self, busy: Iterable[tuple[str, int]]) -> list[SlotGroup]:
        """The slot groups of each farm not lost (``FarmRuntime.slot_groups``), for ``explain``; ``busy``: the
        (farm id, slot) pairs running a task."""
        running: dict[str, list[int]] = {}
        for farm_id, slot in busy:
            running.setdefault(farm_id, []).append(slot)
        return [g for f in self._farms.values() if not f.lost for g in f.slot_groups(running.get(f.record.id, ()))]

    def listing(self, now: datetime, busy: Mapping[str, int]) -> list[tuple[FarmRecord, bool, int]]:
        """Each farm, whether it is lost (as of ``now``), and its busy slots (``busy``, by farm id). Each record
        says the urgent slots in force (``UrgentSlots``: the farm's own, else the site's), never None."""
        self.find_lost(now)
        return [
            (
                replace(f.record, urgent_slots=f.urgent.count, urgent_priority=f.urgent.priority),
                f.lost,
                busy.get(f.record.id, 0),
            )
            for f in self._farms.values()
        ]
