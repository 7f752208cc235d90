"""The screen's figure history: ``figure_points``, one row per queue or base and minute (since the Unix epoch).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision: str | None = "0012"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "figure_points",
        sa.Column("scope", sa.Text(), primary_key=True),
        sa.Column("name", sa.Text(), primary_key=True),
        sa.Column("minute", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("workers", sa.Integer(), nullable=False),
        sa.Column("worker_limit", sa.Integer(), nullable=True),
    )
    op.create_index("ix_figure_points_minute", "figure_points", ["minute", "scope", "name", "done"])


def downgrade() -> None:
    op.drop_index("ix_figure_points_minute", table_name="figure_points")
    op.drop_table("figure_points")
