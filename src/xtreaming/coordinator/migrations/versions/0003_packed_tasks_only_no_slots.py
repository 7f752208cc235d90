"""Tasks keep their messages packed only, and the ``slots`` table goes.

Tasks leased by versions before 0002 and not yet settled still hold their messages in
``tasks.messages`` as JSON, in one of the two forms those versions wrote (keys as hex or null):
``[[partition, offset, key, attempt], ...]`` at first, then ``{"partitions": [...], "offsets":
[...], "keys": [...], "attempts": [...]}``. They are packed into ``tasks.packed`` here, as the
store packs them; then ``messages`` goes and ``packed`` is required. With ``--sql`` (no rows to
read) such tasks are deleted instead: their messages are read again and retried, as after an
expired lease.

``slots`` held each farm's slots as its last heartbeat described them; nothing ever read them.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from __future__ import annotations

import struct
from typing import Any

import sqlalchemy as sa
from alembic import context, op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

_TASKS = sa.table(
    "tasks", sa.column("id", sa.Text()), sa.column("messages", sa.JSON()), sa.column("packed", sa.LargeBinary())
)


def _packed(stored: Any) -> bytes:
    """JSON messages packed as ``tasks.packed`` holds them: the count, then the partitions, offsets,
    attempts and key sizes (-1 for none) as little-endian 64-bit integers, then the keys' bytes.

    Written out here rather than imported so that this revision does what it did when it was written."""
    if isinstance(stored, dict):
        rows = list(zip(stored["partitions"], stored["offsets"], stored["keys"], stored["attempts"], strict=True))
    else:
        rows = [tuple(message) for message in stored]
    keys = [None if key is None else bytes.fromhex(key) for _, _, key, _ in rows]
    numbers = [p for p, _, _, _ in rows] + [o for _, o, _, _ in rows] + [a for _, _, _, a in rows]
    numbers += [-1 if key is None else len(key) for key in keys]
    return struct.pack(f"<{1 + len(numbers)}q", len(rows), *numbers) + b"".join(key for key in keys if key)


def _pack_json_tasks() -> None:
    if context.is_offline_mode():
        op.execute("DELETE FROM tasks WHERE packed IS NULL")
        return
    conn = op.get_bind()
    stored = conn.execute(sa.select(_TASKS.c.id, _TASKS.c.messages).where(_TASKS.c.packed.is_(None))).all()
    if stored:
        conn.execute(
            sa.update(_TASKS).where(_TASKS.c.id == sa.bindparam("task_id")).values(packed=sa.bindparam("data")),
            [{"task_id": task_id, "data": _packed(messages)} for task_id, messages in stored],
        )


def upgrade() -> None:
    _pack_json_tasks()
    with op.batch_alter_table("tasks") as tasks:
        tasks.drop_column("messages")
        tasks.alter_column("packed", existing_type=sa.LargeBinary(), nullable=False)
    op.drop_table("slots")


def downgrade() -> None:
    op.create_table(
        "slots",
        sa.Column(
            "farm_id",
            sa.Text(),
            sa.ForeignKey("farms.id", name="fk_slots_farm_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("slot", sa.Integer(), primary_key=True),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("task_id", sa.Text(), nullable=True),
        sa.Column("pid", sa.BigInteger(), nullable=True),
        sa.Column("done", sa.BigInteger(), nullable=True),
        sa.Column("total", sa.BigInteger(), nullable=True),
        sa.Column("rss_bytes", sa.BigInteger(), nullable=True),
    )
    # Tasks stay packed, which 0002 reads (its downgrade deletes them).
    with op.batch_alter_table("tasks") as tasks:
        tasks.add_column(sa.Column("messages", sa.JSON(), nullable=True))
        tasks.alter_column("packed", existing_type=sa.LargeBinary(), nullable=True)
