"""History: no index on (offset, partition) any more.

A message's attempts are looked up by its key (read from the log at the message's position) in the key
index, so the second index only cost every message written. On PostgreSQL dropping the partitioned
index drops it from every day's partition.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision: str | None = "0010"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_message_history_offset")


def downgrade() -> None:
    op.create_index("ix_message_history_offset", "message_history", ["offset", "partition"])
