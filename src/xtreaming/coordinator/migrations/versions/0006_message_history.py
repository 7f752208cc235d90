"""Per-message history: ``history_groups``, one row per settled group of messages, and ``message_history``,
per message only what differs from its group (see ``store/history.py``).

On PostgreSQL both tables are partitioned by range of group id (which encodes the time); the history
writer creates each day's partitions before writing into them and drops whole days past the retention,
so this revision creates none. On SQLite they are plain tables trimmed by bounded deletes.

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
        "history_groups",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("result", sa.Text(), nullable=False),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("farm", sa.Text(), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Text(), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        postgresql_partition_by="RANGE (id)",
    )
    op.create_table(
        "message_history",
        sa.Column("group_id", sa.BigInteger(), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("key", sa.LargeBinary(), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        postgresql_partition_by="RANGE (group_id)",
    )
    op.create_index("ix_message_history_key_group", "message_history", ["key", "group_id"])
    op.create_index("ix_message_history_offset", "message_history", ["offset", "partition"])


def downgrade() -> None:
    op.drop_table("message_history")  # on PostgreSQL, their partitions with them
    op.drop_table("history_groups")
