"""Safe purge: a failed purge keeps the mailbox and says why, `domain remove --cascade` defers to
the purge, and the purge's overlap check on maildirs is served by an index.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# Frozen copies of the app's column types (see 0001).
Timestamp = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
MAILDIR_LENGTH = 512
# Byte order on every database, so that range bounds computed in Python hold (SQLite's
# default collation is binary already).
BINARY_COLLATION = {"postgresql": "C", "mysql": "utf8mb4_bin", "mariadb": "utf8mb4_bin"}


def _set_maildir_collation(collation: str | None) -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    op.alter_column(
        "mailboxes",
        "maildir",
        type_=sa.String(length=MAILDIR_LENGTH, collation=collation),
        existing_type=sa.String(length=MAILDIR_LENGTH),
        existing_nullable=False,
    )


def upgrade() -> None:
    with op.batch_alter_table("domains") as batch:
        batch.add_column(sa.Column("deleted_at", Timestamp, nullable=True))
    _set_maildir_collation(BINARY_COLLATION.get(op.get_bind().dialect.name))
    with op.batch_alter_table("mailboxes") as batch:
        batch.add_column(sa.Column("purge_error", sa.String(length=1024), nullable=True))
        batch.create_index("ix_mailboxes_maildir", ["maildir"])


def downgrade() -> None:
    with op.batch_alter_table("mailboxes") as batch:
        batch.drop_index("ix_mailboxes_maildir")
        batch.drop_column("purge_error")
    # Back to the database's default collation, as 0001 created the column.
    _set_maildir_collation(None)
    with op.batch_alter_table("domains") as batch:
        batch.drop_column("deleted_at")
