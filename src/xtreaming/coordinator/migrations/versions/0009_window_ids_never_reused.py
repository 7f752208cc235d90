"""Windows: ids never reused after a removal (SQLite ``AUTOINCREMENT``).

SQLite numbers an ``INTEGER PRIMARY KEY`` with the highest id plus one, so removing the newest window
gave its id to the next one: an operator's ``window remove 7`` read from an older listing removed a
window added since. ``AUTOINCREMENT`` keeps the highest id ever given. SQLite cannot add it to a table:
the table is copied into a new one with the same rows and ids. (PostgreSQL numbers windows from a
sequence, which never goes back: nothing to do there.) Ids removed before this revision above the
highest remaining one are not known any more: they may be given once again.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision: str | None = "0008"
branch_labels: str | None = None
depends_on: str | None = None


def _windows(*, autoincrement: bool) -> sa.Table:
    """``windows`` as of this revision (a migration keeps its own copy: the schema module moves on)."""
    return sa.Table(
        "windows",
        sa.MetaData(),
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "base",
            sa.Text(),
            sa.ForeignKey("bases.name", name="fk_windows_base", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("weekdays", sa.JSON(), nullable=False),
        sa.Column("start", sa.Text(), nullable=False),
        sa.Column("end", sa.Text(), nullable=False),
        sa.Column("max_workers", sa.Integer(), nullable=False),
        sa.CheckConstraint("max_workers >= 0", name="ck_windows_max_workers"),
        sa.Index("ix_windows_base", "base"),
        sqlite_autoincrement=autoincrement,
    )


def _copy_windows(*, autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table(
        "windows",
        copy_from=_windows(autoincrement=autoincrement),
        recreate="always",
        table_kwargs={"sqlite_autoincrement": autoincrement},
    ):
        pass


def upgrade() -> None:
    _copy_windows(autoincrement=True)


def downgrade() -> None:
    _copy_windows(autoincrement=False)
