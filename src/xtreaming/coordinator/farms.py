"""The farms the coordinator knows: registration, heartbeats, and which of them are lost."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from xtreaming.coordinator.core.state import Labels, labels_of
from xtreaming.coordinator.options import CoordinatorOptions
from xtreaming.coordinator.records import FarmRecord
from xtreaming.coordinator.store import Store
from xtreaming.errors import FarmNotFound

log = logging.getLogger("xtreaming.coordinator")


@dataclass(slots=True)
class FarmRuntime:
    """A registered farm: its record, its labels as the scheduler matches them, whether it is lost."""

    record: FarmRecord
    labels: Labels
    lost: bool = False


class Farms:
    """The registered farms by id, kept in the store. Not thread-safe: the coordinator holds its lock.

    A farm silent for ``lost_after_heartbeats`` heartbeat intervals is lost (the coordinator then
    expires its leases) until it is heard from again."""

    def __init__(self, store: Store, options: CoordinatorOptions) -> None:
        self.store = store
        self.options = options
        self._farms: dict[str, FarmRuntime] = {}

    def load(self) -> None:
        """Know the farms the store has (after a restart, before they register again)."""
        for record in self.store.list_farms():
            self._farms[record.id] = FarmRuntime(record, labels_of(record.labels))

    def register(self, name: str, labels: Mapping[str, str], slots: int, now: datetime) -> FarmRecord:
        """Register (or re-register, after a restart of either side) the farm called ``name``."""
        known = self._farms.get(name)
        record = FarmRecord(
            id=name,
            name=name,
            labels=dict(labels),
            slots=slots,
            heartbeat_interval_s=self.options.heartbeat_interval_s,
            registered_at=known.record.registered_at if known else now,
            last_heartbeat_at=now,
        )
        self.store.put_farm(record)
        self._farms[name] = FarmRuntime(record, labels_of(labels))
        return record

    def require(self, farm_id: str) -> FarmRuntime:
        """The farm ``farm_id``; raises ``FarmNotFound`` when it is not registered."""
        farm = self._farms.get(farm_id)
        if farm is None:
            raise FarmNotFound(f"farm {farm_id!r} is not registered; register it first")
        return farm

    def heartbeat(self, farm_id: str, now: datetime) -> None:
        """The farm is alive: its last heartbeat moves to ``now``."""
        farm = self.require(farm_id)
        self.store.record_heartbeat(farm_id, now)
        farm.record = replace(farm.record, last_heartbeat_at=now)
        farm.lost = False

    def find_lost(self, now: datetime) -> set[str]:
        """Mark the farms silent for too long as lost (logged once each); returns their ids."""
        lost = set()
        for farm in self._farms.values():
            silence = timedelta(seconds=farm.record.heartbeat_interval_s * self.options.lost_after_heartbeats)
            if farm.record.last_heartbeat_at + silence <= now:
                if not farm.lost:
                    log.warning("farm %s lost: silent since %s", farm.record.id, farm.record.last_heartbeat_at)
                farm.lost = True
                lost.add(farm.record.id)
        return lost

    def live_labels(self) -> list[Labels]:
        """The labels of each farm not lost: where a queue's required labels could be met."""
        return [f.labels for f in self._farms.values() if not f.lost]

    def listing(self, now: datetime, busy: Mapping[str, int]) -> list[tuple[FarmRecord, bool, int]]:
        """Each farm, whether it is lost (as of ``now``), and its busy slots (``busy``, by farm id)."""
        self.find_lost(now)
        return [(f.record, f.lost, busy.get(f.record.id, 0)) for f in self._farms.values()]
