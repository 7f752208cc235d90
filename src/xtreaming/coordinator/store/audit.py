"""The audit log in the store: who did what to which target, and when."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select

from xtreaming.coordinator.records import AuditEntry
from xtreaming.coordinator.schema import AUDIT_LOG
from xtreaming.coordinator.store.database import Database
from xtreaming.coordinator.store.rows import new_id


class AuditLog:
    """The ``audit_log`` table; ``Store`` documents each method."""

    def __init__(self, database: Database) -> None:
        self._database = database

    def audit(self, actor: str, action: str, target: str, details: Mapping[str, Any]) -> AuditEntry:
        at = datetime.now(UTC)
        values = {"at": at, "actor": actor, "action": action, "target": target, "details": dict(details)}
        with self._database.write() as conn:
            entry_id = new_id(conn.execute(insert(AUDIT_LOG).values(values)))
        return AuditEntry(entry_id, at, actor, action, target, dict(details))

    def list_audit(self, limit: int, before_id: int | None) -> list[AuditEntry]:
        if limit < 1:
            raise ValueError(f"audit limit {limit} must be at least 1")
        query = select(AUDIT_LOG).order_by(AUDIT_LOG.c.id.desc()).limit(limit)
        if before_id is not None:
            query = query.where(AUDIT_LOG.c.id < before_id)
        with self._database.read() as conn:
            return [AuditEntry(r.id, r.at, r.actor, r.action, r.target, r.details) for r in conn.execute(query)]
