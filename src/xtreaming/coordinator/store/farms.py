"""Registered farms in the store: who they are (name and process instance), their labels and slots (those kept
for urgent work included), and when each was last heard from."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, select, update

from xtreaming.coordinator.records import FarmRecord
from xtreaming.coordinator.schema import FARMS
from xtreaming.coordinator.store import driver
from xtreaming.coordinator.store.database import Database
from xtreaming.coordinator.store.rows import one, upsert
from xtreaming.errors import FarmNotFound


class FarmTable:
    """The ``farms`` table; ``Store`` documents each method."""

    def __init__(self, database: Database) -> None:
        self._database = database

    def put_farm(self, record: FarmRecord) -> FarmRecord:
        row = {
            "id": record.id,
            "name": record.name,
            "labels": dict(record.labels),
            "slots": record.slots,
            "heartbeat_interval_s": record.heartbeat_interval_s,
            "registered_at": record.registered_at,
            "last_heartbeat_at": record.last_heartbeat_at,
            "instance": record.instance,
            "urgent_slots": record.urgent_slots,
            "urgent_priority": record.urgent_priority,
        }
        with self._database.write() as conn:
            upsert(conn, FARMS, [row], keys=("id",))
        return record

    def get_farm(self, farm_id: str) -> FarmRecord:
        with self._database.read() as conn:
            return _farm_of(one(conn, FARMS, FARMS.c.id == farm_id, FarmNotFound, f"farm {farm_id!r}"))

    def list_farms(self) -> list[FarmRecord]:
        with self._database.read() as conn:
            return [_farm_of(row) for row in conn.execute(select(FARMS).order_by(FARMS.c.id))]

    def record_heartbeat(self, farm_id: str, at: datetime) -> None:
        with self._database.write(ordered=False) as conn:  # no lease or settlement writes this row
            if driver.supported(conn):  # every farm's, every few seconds: the statement on the driver
                marker = driver.placeholders(conn, 1)
                statement = f"UPDATE {FARMS.name} SET last_heartbeat_at = {marker} WHERE id = {marker}"
                found = driver.execute(conn, statement, (driver.timestamp(conn, at), farm_id))
            else:
                found = conn.execute(update(FARMS).where(FARMS.c.id == farm_id).values(last_heartbeat_at=at)).rowcount
            if found == 0:
                raise FarmNotFound(f"farm {farm_id!r} is not registered")


def _farm_of(row: Row[Any]) -> FarmRecord:
    return FarmRecord(
        row.id,
        row.name,
        dict(row.labels),
        row.slots,
        row.heartbeat_interval_s,
        row.registered_at,
        row.last_heartbeat_at,
        row.instance,
        row.urgent_slots,
        row.urgent_priority,
    )
