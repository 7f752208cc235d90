"""The farms the coordinator knows: registration and incarnations, heartbeats reconciled with the
coordinator's view of their slots, and which of them are lost.

Incarnations. A farm process sends an ``instance`` id new at each start. A registration by another
instance of a known farm means the process that held its tasks is gone (crashed and relaunched):
those tasks are released at once. A heartbeat from an instance that is no longer the registered
one (a second process under the same name, or an old one come back) is not the farm's.

Silence. A farm silent for ``lost_after_heartbeats`` intervals is lost, counting only the time the
coordinator was listening: from its start, and from its return after it stopped running for an
interval or more (the process frozen, the machine stalled), every farm counts as heard, so a farm
whose heartbeats could not be received keeps its tasks.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Mapping
from contextlib import suppress
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Final

from xtreaming.coordinator.core.state import Labels, labels_of
from xtreaming.coordinator.options import CoordinatorOptions
from xtreaming.coordinator.records import FarmRecord
from xtreaming.coordinator.store import Store
from xtreaming.errors import FarmNotFound, StoreUnavailable

log = logging.getLogger("xtreaming.coordinator")

#: A task a farm's heartbeats leave out is released after this many heartbeats in a row left it out
#: (the first one may have been sent before the farm started it).
MISSING_HEARTBEATS: Final = 2


@dataclass(slots=True)
class FarmRuntime:
    """A registered farm: its record, its labels as the scheduler matches them, whether it is lost."""

    record: FarmRecord
    labels: Labels
    lost: bool = False
    #: Its tasks its heartbeats left out: task id → how many heartbeats in a row, and since when.
    missing: dict[str, tuple[int, datetime]] = field(default_factory=dict)


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
            self._farms[record.id] = FarmRuntime(record, labels_of(record.labels))

    def register(
        self, name: str, labels: Mapping[str, str], slots: int, instance: str | None, now: datetime, actor: str
    ) -> tuple[FarmRecord, bool]:
        """Register (or re-register, after a restart of either side) the farm called ``name``, audited as done
        by ``actor`` (the token's name).

        Returns its record, and True when this is a new incarnation of a known farm: another process
        than the one registered (instance ids differ), whose tasks the caller releases."""
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
        )
        with self.store.transaction():  # the farm and its audit entry, or neither
            self.store.put_farm(record)
            details = {"slots": slots, "labels": dict(labels), "instance": instance}
            self.store.audit(actor, "farm.register", name, details)
        self._farms[name] = FarmRuntime(record, labels_of(labels))
        if replaced and known is not None:
            log.warning("farm %s restarted: instance %s, was %s", name, instance, known.record.instance)
        return record, replaced

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

    def listing(self, now: datetime, busy: Mapping[str, int]) -> list[tuple[FarmRecord, bool, int]]:
        """Each farm, whether it is lost (as of ``now``), and its busy slots (``busy``, by farm id)."""
        self.find_lost(now)
        return [(f.record, f.lost, busy.get(f.record.id, 0)) for f in self._farms.values()]
