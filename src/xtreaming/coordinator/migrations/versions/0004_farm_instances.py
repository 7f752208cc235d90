"""Farms remember which process registered them: ``farms.instance``, an id the farm makes at each start.

A registration by another instance of a known farm releases the tasks of the one before at once;
rows written before this revision have none (a farm registering next is taken as a new instance).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("farms") as farms:
        farms.add_column(sa.Column("instance", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("farms") as farms:
        farms.drop_column("instance")
