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
    UniqueConstraint,
    false,
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
    Column("one_per_key", Boolean, nullable=True),  # NULL: each queue's kind decides
    Index("ix_profiles_position", "position"),
)
QUEUES = Table(
    "queues",
    METADATA,
    Column("topic", Text, primary_key=True),
    Column("base", Text, nullable=False),
    Column("kind", Text, nullable=False),
    *_settings_columns("queues"),
    # Rows from before the setting get the kind's value in migration 0008; false is only their column's default.
    Column("one_per_key", Boolean, nullable=False, server_default=false()),
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
    # Ids never come back after a removal (SQLite would reuse the highest one; PostgreSQL's sequence never
    # does): a ``window remove ID`` read from an older listing must not remove another window.
    sqlite_autoincrement=True,
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
    Column("urgent_slots", Integer, nullable=True),  # the farm's own setting; NULL: the site's
    Column("urgent_priority", Integer, nullable=True),
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
#: Each settled attempt of each message (``coordinator/history.py``), newest rows appended. No primary key:
#: a PostgreSQL partitioned table's keys must hold ``at`` and SQLite numbers rows itself (its rowid); an
#: attempt is named by its message id and attempt number. On PostgreSQL, partitioned by day of ``at``.
# Per-message history in two tables (store/history.py): one row per settled group (the messages of one task
# that reached the same result with the same detail at the same time), and per message only what differs.
# A group's id grows with its time (microseconds since the epoch times 1,024, at least), so a message's group
# id places it in time: the key index serves the time range, PostgreSQL partitions both tables by the same
# day ranges of ids and drops them whole.
HISTORY_GROUPS = Table(
    "history_groups",
    METADATA,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("at", UtcDateTime, nullable=False),  # when the group was settled
    Column("result", Text, nullable=False),  # outcomes.Result's value: a text, so that new results need no migration
    Column("topic", Text, nullable=False),
    Column("farm", Text, nullable=False),
    Column("slot", Integer, nullable=False),
    Column("task_id", Text, nullable=False),
    Column("duration_s", Float, nullable=False),
    Column("detail", Text, nullable=True),
    postgresql_partition_by="RANGE (id)",
)
MESSAGE_HISTORY = Table(
    "message_history",
    METADATA,
    Column("group_id", BigInteger, nullable=False),  # history_groups.id (no foreign key: days are dropped whole)
    Column("partition", Integer, nullable=False),
    Column("offset", BigInteger, nullable=False),
    Column("key", LargeBinary, nullable=True),
    Column("attempt", Integer, nullable=False),
    # The only index: a message's attempts are found by its key too (read from the log: ``history.py``), and one
    # index less is a third less work per message written.
    Index("ix_message_history_key_group", "key", "group_id"),
    # No index on the group: retention drops PostgreSQL's days whole, and trims SQLite's oldest rows by rowid.
    postgresql_partition_by="RANGE (group_id)",
)
REPLAYS = Table(
    "replays",
    METADATA,
    Column("id", Integer, primary_key=True),
    Column("topic", Text, nullable=False),
    Column("filter", JSON, nullable=False),
    Column("actor", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("total", Integer, nullable=False),
    Column("done", Integer, nullable=False),
    Column("rate_per_s", Float, nullable=False),
    Column("state", Text, nullable=False),  # running | finished | failed
    Column("changed_at", UtcDateTime, nullable=False),
    Column("error", Text, nullable=True),
    # The work topic's ends before the batch in flight was appended: where a restart looks for it.
    Column("batch_ends", JSON, nullable=True),
    Index("ix_replays_state", "state"),
)
# One row per record of a .DLQ topic (topic: the work topic; partition/offset: the record's place in the DLQ).
DEAD_LETTERS = Table(
    "dead_letters",
    METADATA,
    Column("id", Integer, primary_key=True),
    Column("topic", Text, nullable=False),
    Column("partition", Integer, nullable=False),
    Column("offset", BigInteger, nullable=False),
    Column("source_partition", Integer, nullable=True),
    Column("source_offset", BigInteger, nullable=True),
    Column("key", LargeBinary, nullable=True),
    Column("error", Text, nullable=False),  # the last attempt's detail: letters are grouped by it
    Column("attempts", Integer, nullable=False),
    Column("dead_at", UtcDateTime, nullable=False),
    Column("state", Text, nullable=False),  # dead_letter_records.LetterState
    Column("replay_id", Integer, ForeignKey(REPLAYS.c.id, name="fk_dead_letters_replay_id"), nullable=True),
    Column("replayed_as", Text, nullable=True),
    Column("changed_at", UtcDateTime, nullable=False),
    UniqueConstraint("topic", "partition", "offset", name="uq_dead_letters_position"),
    Index("ix_dead_letters_errors", "topic", "state", "error"),
    Index("ix_dead_letters_dead_at", "topic", "dead_at"),
    Index("ix_dead_letters_key", "topic", "key"),
    Index("ix_dead_letters_replay", "replay_id", "state"),
)
# How far the dead-letter indexer has read each .DLQ partition (topic: the DLQ topic).
DLQ_POSITIONS = Table(
    "dlq_positions",
    METADATA,
    Column("topic", Text, primary_key=True),
    Column("partition", Integer, primary_key=True),
    Column("next_offset", BigInteger, nullable=False),
    # Records below ``next_offset`` not written by Xtreaming (no ``xtreaming-source``): never counted as dead.
    Column("foreign", BigInteger, nullable=False, server_default="0"),
)
# Which coordinator leads (one row, ``coordinator/leadership.py``): ``epoch`` fences the writes of earlier leaders.
LEADERSHIP = Table(
    "leadership",
    METADATA,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("epoch", BigInteger, nullable=False),
    Column("beat", BigInteger, nullable=False),
    Column("holder", Text, nullable=True),
    Column("url", Text, nullable=True),
    Column("since", UtcDateTime, nullable=True),
    CheckConstraint("id = 1", name="ck_leadership_one_row"),
)
#: The screen's figures per minute (``coordinator/figure_history.py``): one row per queue or base (``scope``) and
#: minute in which it finished or failed something or ran a worker. ``minute`` counts minutes since the Unix epoch
#: (UTC): a plain integer reads several times faster than a timestamp, and a day of every queue's sparkline is
#: tens of thousands of rows. Read by (scope, name, minute); the index on ``minute`` serves the retention's deletes
#: and, covering what they read, the sparklines of every name without reading the table.
FIGURE_POINTS = Table(
    "figure_points",
    METADATA,
    Column("scope", Text, primary_key=True),  # queue | base
    Column("name", Text, primary_key=True),
    Column("minute", BigInteger, primary_key=True, autoincrement=False),
    Column("done", Integer, nullable=False),
    Column("failed", Integer, nullable=False),
    Column("workers", Integer, nullable=False),
    Column("worker_limit", Integer, nullable=True),  # a queue's max workers (NULL: none), a base's limit in force
    Index("ix_figure_points_minute", "minute", "scope", "name", "done"),
)
# Scheduled publishing (``coordinator/schedules.py``): what to publish when, and one row per tick.
SCHEDULES = Table(
    "schedules",
    METADATA,
    Column("id", Integer, primary_key=True),
    Column("topic", Text, nullable=False),
    Column("cron", Text, nullable=False),
    Column("source", JSON, nullable=False),  # schedule_records.source_to_json
    Column("misfire", Text, nullable=False),  # schedule_records.Misfire
    Column("created_at", UtcDateTime, nullable=False),
    Column("created_by", Text, nullable=False),
    # The latest tick claimed or skipped: a tick is claimed only past it (one statement, so two coordinators
    # never both claim, nor claim an older tick after a newer one).
    Column("last_tick_at", UtcDateTime, nullable=True),
    sqlite_autoincrement=True,  # ids never come back: a 'schedule remove ID' from an old listing removes nothing else
)
SCHEDULE_TICKS = Table(
    "schedule_ticks",
    METADATA,
    Column("id", Integer, primary_key=True),
    Column(
        "schedule_id",
        Integer,
        ForeignKey(SCHEDULES.c.id, name="fk_schedule_ticks_schedule_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("tick_at", UtcDateTime, nullable=False),
    Column("state", Text, nullable=False),  # schedule_records.TickState
    Column("owner", Text, nullable=True),
    Column("beat_at", UtcDateTime, nullable=False),
    Column("claimed_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime, nullable=True),
    Column("ends", JSON, nullable=True),  # the topic's end offsets before the tick's first append
    Column("published", BigInteger, nullable=False),
    Column("missed", Integer, nullable=False),
    Column("error", Text, nullable=True),
    # At most once per tick, however many coordinators: the second claim is refused here.
    UniqueConstraint("schedule_id", "tick_at", name="uq_schedule_ticks_tick"),
    Index("ix_schedule_ticks_state", "state"),
)
