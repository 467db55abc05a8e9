"""Mail stack: domain transport and backup MX, deferred mailbox deletion, quota usage written by
Dovecot, vacation and forwarding.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Frozen copies of the app's column types (see 0001).
Timestamp = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
Address = sa.String(length=254)


def upgrade() -> None:
    with op.batch_alter_table("domains") as batch:
        batch.add_column(
            sa.Column("backup_mx", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(
            sa.Column("transport", sa.String(length=255), nullable=False, server_default="")
        )
    with op.batch_alter_table("mailboxes") as batch:
        batch.add_column(sa.Column("deleted_at", Timestamp, nullable=True))
        batch.create_index("ix_mailboxes_deleted_at", ["deleted_at"])

    op.create_table(
        "quota_usage",
        sa.Column("username", Address, nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("messages", sa.BigInteger(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("username", name=op.f("pk_quota_usage")),
    )
    op.create_table(
        "vacations",
        sa.Column("mailbox_id", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=True),
        sa.Column("ends_on", sa.Date(), nullable=True),
        sa.Column("interval_days", sa.Integer(), nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.CheckConstraint("interval_days >= 1", name=op.f("ck_vacations_interval_positive")),
        sa.ForeignKeyConstraint(
            ["mailbox_id"],
            ["mailboxes.id"],
            name=op.f("fk_vacations_mailbox_id_mailboxes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("mailbox_id", name=op.f("pk_vacations")),
    )
    op.create_table(
        "forwards",
        sa.Column("mailbox_id", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("targets", sa.JSON(), nullable=False),
        sa.Column("keep_copy", sa.Boolean(), nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.ForeignKeyConstraint(
            ["mailbox_id"],
            ["mailboxes.id"],
            name=op.f("fk_forwards_mailbox_id_mailboxes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("mailbox_id", name=op.f("pk_forwards")),
    )


def downgrade() -> None:
    op.drop_table("forwards")
    op.drop_table("vacations")
    op.drop_table("quota_usage")
    with op.batch_alter_table("mailboxes") as batch:
        batch.drop_index("ix_mailboxes_deleted_at")
        batch.drop_column("deleted_at")
    with op.batch_alter_table("domains") as batch:
        batch.drop_column("transport")
        batch.drop_column("backup_mx")
