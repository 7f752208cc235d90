"""The dead-letter index and replays: ``dead_letters`` (one row per ``.DLQ`` record, its state and what
became of it), ``dlq_positions`` (how far each ``.DLQ`` partition was indexed) and ``replays``.

The log itself is append-only: these tables say which dead letters are open, replayed or skipped. They
start empty; the indexer reads every ``.DLQ`` topic from its beginning after this revision.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None


def _at(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "replays",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("filter", sa.JSON(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        _at("created_at"),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("rate_per_s", sa.Float(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        _at("changed_at"),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("batch_ends", sa.JSON(), nullable=True),
    )
    op.create_index("ix_replays_state", "replays", ["state"])
    op.create_table(
        "dead_letters",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("source_partition", sa.Integer(), nullable=True),
        sa.Column("source_offset", sa.BigInteger(), nullable=True),
        sa.Column("key", sa.LargeBinary(), nullable=True),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _at("dead_at"),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column(
            "replay_id", sa.Integer(), sa.ForeignKey("replays.id", name="fk_dead_letters_replay_id"), nullable=True
        ),
        sa.Column("replayed_as", sa.Text(), nullable=True),
        _at("changed_at"),
        sa.UniqueConstraint("topic", "partition", "offset", name="uq_dead_letters_position"),
    )
    op.create_index("ix_dead_letters_errors", "dead_letters", ["topic", "state", "error"])
    op.create_index("ix_dead_letters_dead_at", "dead_letters", ["topic", "dead_at"])
    op.create_index("ix_dead_letters_key", "dead_letters", ["topic", "key"])
    op.create_index("ix_dead_letters_replay", "dead_letters", ["replay_id", "state"])
    op.create_table(
        "dlq_positions",
        sa.Column("topic", sa.Text(), primary_key=True),
        sa.Column("partition", sa.Integer(), primary_key=True),
        sa.Column("next_offset", sa.BigInteger(), nullable=False),
        sa.Column("foreign", sa.BigInteger(), nullable=False, server_default="0"),
    )


def downgrade() -> None:
    op.drop_table("dlq_positions")
    op.drop_table("dead_letters")
    op.drop_table("replays")
