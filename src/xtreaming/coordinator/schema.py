"""The state store's tables (SQLAlchemy Core) and the UTC timestamp type they use.

The Alembic migrations under ``migrations/`` create exactly these; a test compares them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    TypeDecorator,
)


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware timestamp, stored in UTC (SQLite has no zone: it stores the UTC wall clock)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"datetime {value.isoformat()} is naive; the state store takes timezone-aware ones")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


METADATA: Final = MetaData()


def _settings_columns(table: str) -> list[Column[Any] | CheckConstraint]:
    return [
        Column("priority", Integer, nullable=False),
        Column("batch_size", Integer, nullable=False),
        Column("command", JSON, nullable=False),
        Column("handler", Text, nullable=True),
        Column("timeout_s", Float, nullable=False),
        Column("max_attempts", Integer, nullable=False),
        Column("backoff_s", Float, nullable=False),
        Column("backoff_max_s", Float, nullable=False),
        Column("required_labels", JSON, nullable=False),
        Column("max_workers", Integer, nullable=True),
        CheckConstraint("batch_size >= 1", name=f"ck_{table}_batch_size"),
        CheckConstraint("max_attempts >= 1", name=f"ck_{table}_max_attempts"),
    ]


PROFILES = Table(
    "profiles",
    METADATA,
    Column("id", Integer, primary_key=True),
    Column("position", Integer, nullable=False),
    Column("pattern", Text, nullable=False),
    *_settings_columns("profiles"),
    Index("ix_profiles_position", "position"),
)
QUEUES = Table(
    "queues",
    METADATA,
    Column("topic", Text, primary_key=True),
    Column("base", Text, nullable=False),
    Column("kind", Text, nullable=False),
    *_settings_columns("queues"),
    Column("paused", Boolean, nullable=False),
    Column("profile_id", Integer, ForeignKey(PROFILES.c.id, name="fk_queues_profile_id", ondelete="SET NULL")),
    Column("discovered_at", UtcDateTime, nullable=True),
    # Names of the settings an operator set on this queue: profiles never change them.
    Column("overridden", JSON, nullable=False, server_default="[]"),
    Index("ix_queues_base", "base"),
)
BASES = Table(
    "bases",
    METADATA,
    Column("name", Text, primary_key=True),
    Column("max_workers", Integer, nullable=False),
    Column("min_workers", Integer, nullable=False),
    Column("paused", Boolean, nullable=False),
    CheckConstraint("max_workers >= 0", name="ck_bases_max_workers"),
    CheckConstraint("min_workers >= 0", name="ck_bases_min_workers"),
)
WINDOWS = Table(
    "windows",
    METADATA,
    Column("id", Integer, primary_key=True),
    Column("base", Text, ForeignKey(BASES.c.name, name="fk_windows_base", ondelete="CASCADE"), nullable=False),
    Column("weekdays", JSON, nullable=False),
    Column("start", Text, nullable=False),
    Column("end", Text, nullable=False),
    Column("max_workers", Integer, nullable=False),
    CheckConstraint("max_workers >= 0", name="ck_windows_max_workers"),
    Index("ix_windows_base", "base"),
)
FARMS = Table(
    "farms",
    METADATA,
    Column("id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("labels", JSON, nullable=False),
    Column("slots", Integer, nullable=False),
    Column("heartbeat_interval_s", Float, nullable=False),
    Column("registered_at", UtcDateTime, nullable=False),
    Column("last_heartbeat_at", UtcDateTime, nullable=False),
    Column("instance", Text, nullable=True),  # the registered process (farms send a new id at each start)
)
TASKS = Table(
    "tasks",
    METADATA,
    Column("id", Text, primary_key=True),
    Column("topic", Text, nullable=False),
    Column("farm_id", Text, nullable=False),
    Column("slot", Integer, nullable=False),
    Column("packed", LargeBinary, nullable=False),  # the task's messages (store.tasks.pack_messages)
    Column("leased_at", UtcDateTime, nullable=False),
    Column("deadline_at", UtcDateTime, nullable=False),
)
LEDGER = Table(
    "ledger",
    METADATA,
    Column("topic", Text, primary_key=True),
    Column("partition", Integer, primary_key=True),
    Column("watermark", BigInteger, nullable=False),
    Column("finished", JSON, nullable=False),  # [[start, end), ...]
    CheckConstraint("watermark >= 0", name="ck_ledger_watermark"),
)
RETRIES = Table(
    "retries",
    METADATA,
    Column("topic", Text, primary_key=True),
    Column("partition", Integer, primary_key=True),
    Column("offset", BigInteger, primary_key=True),
    Column("attempts", Integer, nullable=False),
    Column("not_before", UtcDateTime, nullable=False),
    Column("errors", JSON, nullable=False),
    CheckConstraint('"offset" >= 0', name="ck_retries_offset"),
    CheckConstraint("attempts >= 0", name="ck_retries_attempts"),
)
AUDIT_LOG = Table(
    "audit_log",
    METADATA,
    Column("id", Integer, primary_key=True),
    Column("at", UtcDateTime, nullable=False),
    Column("actor", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("target", Text, nullable=False),
    Column("details", JSON, nullable=False),
)
