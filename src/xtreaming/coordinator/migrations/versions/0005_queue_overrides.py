"""Queues remember which of their settings an operator set: ``queues.overridden``, a list of field names.

The other settings follow the first matching profile (or the kind's defaults) and are worked out again
whenever profiles change; an overridden one never is. Rows written before this revision have none
(every setting follows profiles from then on).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("queues") as queues:
        queues.add_column(sa.Column("overridden", sa.JSON(), nullable=False, server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("queues") as queues:
        queues.drop_column("overridden")
