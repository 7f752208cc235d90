"""Leased tasks in the store: each stored before it is handed out, with its messages packed, until it is settled."""

from __future__ import annotations

import functools
import struct
from collections.abc import Sequence
from typing import Any, Final

from sqlalchemy import Connection, Row, bindparam, delete, insert, select

from xtreaming.coordinator.records import LeasedMessage, TaskMessage, TaskRecord
from xtreaming.coordinator.schema import TASKS
from xtreaming.coordinator.store import driver
from xtreaming.coordinator.store.database import Database
from xtreaming.wire import packed

#: The message count at the head of a packed ``tasks.packed``.
_COUNT: Final = struct.Struct("<q")
_INSERT_TASK = insert(TASKS)
_TASK_COLUMNS: Final = "id, topic, farm_id, slot, packed, leased_at, deadline_at"
_DELETE_TASK = delete(TASKS).where(TASKS.c.id == bindparam("task_id"))


class TaskTable:
    """The ``tasks`` table; ``Store`` documents each method."""

    def __init__(self, database: Database) -> None:
        self._database = database

    def add_tasks(self, records: Sequence[TaskRecord]) -> None:
        if not records:
            return
        with self._database.write() as conn:
            if driver.supported(conn):  # the hot path: every lease stores its tasks
                # The tasks of one lease share their lease time, and those of one queue their deadline: each
                # distinct time converted once.
                stamp = functools.cache(functools.partial(driver.timestamp, conn))
                rows = [
                    (
                        r.id,
                        r.topic,
                        r.farm_id,
                        r.slot,
                        pack_messages(r.messages),
                        stamp(r.leased_at),
                        stamp(r.deadline_at),
                    )
                    for r in records
                ]
                driver.insert_rows(conn, f"INSERT INTO tasks ({_TASK_COLUMNS})", rows)
                return
            conn.execute(_INSERT_TASK, task_rows(records))

    def active_tasks(self) -> list[TaskRecord]:
        with self._database.read() as conn:
            return [_task_of(row) for row in conn.execute(select(TASKS).order_by(TASKS.c.leased_at, TASKS.c.id))]


def task_rows(records: Sequence[TaskRecord]) -> list[dict[str, Any]]:
    """The tasks as rows for SQLAlchemy (the portable path; the hot path writes tuples on the driver)."""
    return [
        {
            "id": record.id,
            "topic": record.topic,
            "farm_id": record.farm_id,
            "slot": record.slot,
            "packed": pack_messages(record.messages),
            "leased_at": record.leased_at,
            "deadline_at": record.deadline_at,
        }
        for record in records
    ]


def delete_tasks(conn: Connection, task_ids: Sequence[str]) -> None:
    """Delete the tasks ``task_ids`` in ``conn``'s transaction; unknown ids are ignored."""
    if not task_ids:
        return
    if driver.supported(conn):  # the hot path: every settlement deletes its tasks
        driver.delete_in(conn, "DELETE FROM tasks WHERE id", task_ids)
        return
    conn.execute(_DELETE_TASK, [{"task_id": task_id} for task_id in task_ids])


def pack_messages(messages: Sequence[LeasedMessage]) -> bytes:
    """A task's messages as ``tasks.packed`` keeps them: their count (a little-endian 64-bit integer),
    then their partitions, offsets, attempts and keys packed (``xtreaming.wire.packed``)."""
    numbers = [m.partition for m in messages], [m.offset for m in messages], [m.attempt for m in messages]
    return _COUNT.pack(len(messages)) + packed.pack(numbers, [[m.key for m in messages]])


def unpack_messages(data: bytes) -> tuple[TaskMessage, ...]:
    """The messages ``pack_messages`` packed into ``data``."""
    (count,) = _COUNT.unpack_from(data)
    (partitions, offsets, attempts), (keys,), _ = packed.unpack(data, _COUNT.size, count, 3, 1)
    return tuple(map(TaskMessage, partitions, offsets, keys, attempts))


def _task_of(row: Row[Any]) -> TaskRecord:
    return TaskRecord(
        row.id, row.topic, row.farm_id, row.slot, unpack_messages(row.packed), row.leased_at, row.deadline_at
    )
