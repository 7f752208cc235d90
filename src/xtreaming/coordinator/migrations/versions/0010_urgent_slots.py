"""Farms keep their own urgent slots: ``farms.urgent_slots`` and ``farms.urgent_priority``.

A farm may reserve its last slots for queues at or above a priority (``xtreaming farm --urgent-slots N
--urgent-priority P``); NULL, as in rows written before this revision, takes the site's setting.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision: str | None = "0009"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("farms") as farms:
        farms.add_column(sa.Column("urgent_slots", sa.Integer(), nullable=True))
        farms.add_column(sa.Column("urgent_priority", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("farms") as farms:
        farms.drop_column("urgent_priority")
        farms.drop_column("urgent_slots")
