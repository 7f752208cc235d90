"""Scheduled publishing: ``schedules`` (topic, cron, source, misfire policy) and ``schedule_ticks`` (one row per
schedule and tick time, claimed before anything is published, with its outcome).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision: str | None = "0013"
branch_labels: str | None = None
depends_on: str | None = None


def _at(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "schedules",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("cron", sa.Text(), nullable=False),
        sa.Column("source", sa.JSON(), nullable=False),
        sa.Column("misfire", sa.Text(), nullable=False),
        _at("created_at"),
        sa.Column("created_by", sa.Text(), nullable=False),
        _at("last_tick_at", nullable=True),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "schedule_ticks",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "schedule_id",
            sa.Integer(),
            sa.ForeignKey("schedules.id", name="fk_schedule_ticks_schedule_id", ondelete="CASCADE"),
            nullable=False,
        ),
        _at("tick_at"),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("owner", sa.Text(), nullable=True),
        _at("beat_at"),
        _at("claimed_at"),
        _at("finished_at", nullable=True),
        sa.Column("ends", sa.JSON(), nullable=True),
        sa.Column("published", sa.BigInteger(), nullable=False),
        sa.Column("missed", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.UniqueConstraint("schedule_id", "tick_at", name="uq_schedule_ticks_tick"),
    )
    op.create_index("ix_schedule_ticks_state", "schedule_ticks", ["state"])


def downgrade() -> None:
    op.drop_table("schedule_ticks")
    op.drop_table("schedules")
