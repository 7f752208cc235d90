"""The ledgers and retries in the store, and settling: finished tasks leave as both are stored, in one transaction."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, bindparam, delete, select

from xtreaming.coordinator.core.ledger import LedgerState
from xtreaming.coordinator.records import LedgerRecord, RetryRecord
from xtreaming.coordinator.schema import LEDGER, RETRIES
from xtreaming.coordinator.store import driver
from xtreaming.coordinator.store.database import Database, dumps
from xtreaming.coordinator.store.rows import upsert
from xtreaming.coordinator.store.tasks import delete_tasks

_DELETE_RETRY = delete(RETRIES).where(
    RETRIES.c.topic == bindparam("b_topic"),
    RETRIES.c.partition == bindparam("b_partition"),
    RETRIES.c.offset == bindparam("b_offset"),
)


def _store_ledgers(conn: Connection, ledgers: Sequence[LedgerRecord]) -> None:
    """Upsert the ledgers' rows; on the driver where it can (every settlement moves one)."""
    if not ledgers:
        return
    if not driver.supported(conn):
        rows = [
            {"topic": r.topic, "partition": r.partition, "watermark": r.state.watermark, "finished": r.state.finished}
            for r in ledgers
        ]
        upsert(conn, LEDGER, rows, keys=("topic", "partition"))
        return
    json_marker = driver.placeholders(conn, 1) + ("::json" if conn.dialect.name == "postgresql" else "")
    statement = (
        f'INSERT INTO ledger (topic, "partition", watermark, finished) '
        f"VALUES ({driver.placeholders(conn, 3)}, {json_marker}) "
        f'ON CONFLICT (topic, "partition") DO UPDATE SET watermark = excluded.watermark, finished = excluded.finished'
    )
    driver.execute_many(
        conn, statement, [(r.topic, r.partition, r.state.watermark, dumps(r.state.finished)) for r in ledgers]
    )


class LedgerTables:
    """The ``ledger`` and ``retries`` tables; ``Store`` documents each method."""

    def __init__(self, database: Database) -> None:
        self._database = database

    def settle(
        self,
        finished_tasks: Sequence[str],
        ledgers: Sequence[LedgerRecord],
        retries: Sequence[RetryRecord],
        cleared_retries: Sequence[tuple[str, int, int]],
    ) -> None:
        if not (finished_tasks or ledgers or retries or cleared_retries):
            return
        retry_rows = [
            {
                "topic": r.topic,
                "partition": r.partition,
                "offset": r.offset,
                "attempts": r.attempts,
                "not_before": r.not_before,
                "errors": list(r.errors),
            }
            for r in retries
        ]
        with self._database.write() as conn:
            delete_tasks(conn, finished_tasks)
            _store_ledgers(conn, ledgers)
            upsert(conn, RETRIES, retry_rows, keys=("topic", "partition", "offset"))
            if cleared_retries:
                conn.execute(
                    _DELETE_RETRY, [{"b_topic": t, "b_partition": p, "b_offset": o} for t, p, o in cleared_retries]
                )

    def load_ledgers(self) -> list[LedgerRecord]:
        query = select(LEDGER).order_by(LEDGER.c.topic, LEDGER.c.partition)
        with self._database.read() as conn:
            return [
                LedgerRecord(r.topic, r.partition, LedgerState(r.watermark, tuple((s, e) for s, e in r.finished)))
                for r in conn.execute(query)
            ]

    def load_retries(self) -> list[RetryRecord]:
        query = select(RETRIES).order_by(RETRIES.c.topic, RETRIES.c.partition, RETRIES.c.offset)
        with self._database.read() as conn:
            return [
                RetryRecord(r.topic, r.partition, r.offset, r.attempts, r.not_before, tuple(r.errors))
                for r in conn.execute(query)
            ]
