"""Initial schema: every table of the coordinator's state store.

Hand-written and frozen: later changes go in new revisions, never here. Timestamps are
timezone-aware (stored in UTC); labels, commands, task messages, errors, audit details and
ledger ranges are JSON.

Revision ID: 0001
Revises:
Create Date: 2025-03-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

TABLES = ("profiles", "queues", "bases", "windows", "farms", "slots", "tasks", "ledger", "retries", "audit_log")


def _settings_columns(table: str) -> list[sa.Column[object] | sa.CheckConstraint]:
    """A queue's ``WorkSettings``, shared by profiles and queues."""
    return [
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("batch_size", sa.Integer(), nullable=False),
        sa.Column("command", sa.JSON(), nullable=False),
        sa.Column("handler", sa.Text(), nullable=True),
        sa.Column("timeout_s", sa.Float(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("backoff_s", sa.Float(), nullable=False),
        sa.Column("backoff_max_s", sa.Float(), nullable=False),
        sa.Column("required_labels", sa.JSON(), nullable=False),
        sa.Column("max_workers", sa.Integer(), nullable=True),
        sa.CheckConstraint("batch_size >= 1", name=f"ck_{table}_batch_size"),
        sa.CheckConstraint("max_attempts >= 1", name=f"ck_{table}_max_attempts"),
    ]


def _at(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "profiles",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("pattern", sa.Text(), nullable=False),
        *_settings_columns("profiles"),
    )
    op.create_index("ix_profiles_position", "profiles", ["position"])

    op.create_table(
        "queues",
        sa.Column("topic", sa.Text(), primary_key=True),
        sa.Column("base", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        *_settings_columns("queues"),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column(
            "profile_id",
            sa.Integer(),
            sa.ForeignKey("profiles.id", name="fk_queues_profile_id", ondelete="SET NULL"),
            nullable=True,
        ),
        _at("discovered_at", nullable=True),
    )
    op.create_index("ix_queues_base", "queues", ["base"])

    op.create_table(
        "bases",
        sa.Column("name", sa.Text(), primary_key=True),
        sa.Column("max_workers", sa.Integer(), nullable=False),
        sa.Column("min_workers", sa.Integer(), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.CheckConstraint("max_workers >= 0", name="ck_bases_max_workers"),
        sa.CheckConstraint("min_workers >= 0", name="ck_bases_min_workers"),
    )

    op.create_table(
        "windows",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "base",
            sa.Text(),
            sa.ForeignKey("bases.name", name="fk_windows_base", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("weekdays", sa.JSON(), nullable=False),
        sa.Column("start", sa.Text(), nullable=False),
        sa.Column("end", sa.Text(), nullable=False),
        sa.Column("max_workers", sa.Integer(), nullable=False),
        sa.CheckConstraint("max_workers >= 0", name="ck_windows_max_workers"),
    )
    op.create_index("ix_windows_base", "windows", ["base"])

    op.create_table(
        "farms",
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("slots", sa.Integer(), nullable=False),
        sa.Column("heartbeat_interval_s", sa.Float(), nullable=False),
        _at("registered_at"),
        _at("last_heartbeat_at"),
    )

    op.create_table(
        "slots",
        sa.Column(
            "farm_id",
            sa.Text(),
            sa.ForeignKey("farms.id", name="fk_slots_farm_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("slot", sa.Integer(), primary_key=True),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("task_id", sa.Text(), nullable=True),
        sa.Column("pid", sa.BigInteger(), nullable=True),
        sa.Column("done", sa.BigInteger(), nullable=True),
        sa.Column("total", sa.BigInteger(), nullable=True),
        sa.Column("rss_bytes", sa.BigInteger(), nullable=True),
    )

    op.create_table(
        "tasks",
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("farm_id", sa.Text(), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.Column("messages", sa.JSON(), nullable=False),
        _at("leased_at"),
        _at("deadline_at"),
    )

    op.create_table(
        "ledger",
        sa.Column("topic", sa.Text(), primary_key=True),
        sa.Column("partition", sa.Integer(), primary_key=True),
        sa.Column("watermark", sa.BigInteger(), nullable=False),
        sa.Column("finished", sa.JSON(), nullable=False),
        sa.CheckConstraint("watermark >= 0", name="ck_ledger_watermark"),
    )

    op.create_table(
        "retries",
        sa.Column("topic", sa.Text(), primary_key=True),
        sa.Column("partition", sa.Integer(), primary_key=True),
        sa.Column("offset", sa.BigInteger(), primary_key=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _at("not_before"),
        sa.Column("errors", sa.JSON(), nullable=False),
        sa.CheckConstraint('"offset" >= 0', name="ck_retries_offset"),
        sa.CheckConstraint("attempts >= 0", name="ck_retries_attempts"),
    )

    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), primary_key=True),
        _at("at"),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
    )


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_table(table)
