"""Leadership: one row saying which coordinator leads, in which epoch, since when.

Coordinators sharing a database elect one leader through this row (``coordinator/leadership.py``):
``epoch`` grows by one at each takeover and fences every state write of the leaders before it,
``beat`` grows at each renewal so that standbys can tell a live leader from a dead one on their own
clock. The row is made here, with nobody leading (epoch 0), so that the first coordinator takes it at once.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision: str | None = "0011"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    leadership = op.create_table(
        "leadership",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("beat", sa.BigInteger(), nullable=False),
        sa.Column("holder", sa.Text(), nullable=True),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("since", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("id = 1", name="ck_leadership_one_row"),
    )
    op.bulk_insert(leadership, [{"id": 1, "epoch": 0, "beat": 0, "holder": None, "url": None, "since": None}])


def downgrade() -> None:
    op.drop_table("leadership")
