"""Task messages packed: ``tasks.packed`` holds a task's messages as packed columns (see
``store._packed_of``); ``tasks.messages``, their JSON form, is kept for rows written before.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("tasks") as tasks:
        tasks.add_column(sa.Column("packed", sa.LargeBinary(), nullable=True))
        tasks.alter_column("messages", existing_type=sa.JSON(), nullable=True)


def downgrade() -> None:
    # A task stored packed cannot be written back as JSON here: leases are short-lived, so they go
    # (their messages are read again and retried, as after an expired lease).
    op.execute("DELETE FROM tasks WHERE messages IS NULL")
    with op.batch_alter_table("tasks") as tasks:
        tasks.alter_column("messages", existing_type=sa.JSON(), nullable=False)
        tasks.drop_column("packed")
