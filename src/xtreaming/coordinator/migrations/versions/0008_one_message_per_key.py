"""Queues and profiles: one message per key (``one_per_key``).

A queue row gets its kind's behaviour, as if the setting had always been there: IMPORTACAO queues on
(whether on their kind's defaults or on a profile, as no profile could set it before), every other
kind off. A profile row gets NULL: it leaves the setting to each queue's kind, which is what a profile
written before this revision meant.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None

#: The kind whose queues take one message per key by default (``catalog.KIND_DEFAULTS``, as of this revision).
ONE_PER_KEY_KIND = "IMPORTACAO"


def upgrade() -> None:
    with op.batch_alter_table("profiles") as profiles:
        profiles.add_column(sa.Column("one_per_key", sa.Boolean(), nullable=True))
    with op.batch_alter_table("queues") as queues:
        queues.add_column(sa.Column("one_per_key", sa.Boolean(), nullable=False, server_default=sa.false()))
    queues_table = sa.table("queues", sa.column("kind", sa.Text()), sa.column("one_per_key", sa.Boolean()))
    op.execute(queues_table.update().where(queues_table.c.kind == ONE_PER_KEY_KIND).values(one_per_key=True))


def downgrade() -> None:
    with op.batch_alter_table("queues") as queues:
        queues.drop_column("one_per_key")
    with op.batch_alter_table("profiles") as profiles:
        profiles.drop_column("one_per_key")
