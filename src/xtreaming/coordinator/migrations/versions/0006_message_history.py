"""Per-message history: ``message_history``, each settled attempt of each message.

On PostgreSQL the table is partitioned by range of ``at``; the history writer creates each day's
partition before writing into it and drops whole days past the retention, so this revision creates
none. On SQLite it is a plain table trimmed of its oldest rows (rowid order) by bounded deletes.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "message_history",
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("result", sa.Text(), nullable=False),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("key", sa.LargeBinary(), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("farm", sa.Text(), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Text(), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        postgresql_partition_by="RANGE (at)",
    )
    op.create_index("ix_message_history_key_at", "message_history", ["key", "at"])
    op.create_index("ix_message_history_offset", "message_history", ["offset", "partition"])


def downgrade() -> None:
    op.drop_table("message_history")  # on PostgreSQL, its partitions with it
