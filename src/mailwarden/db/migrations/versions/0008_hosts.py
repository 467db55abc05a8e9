"""Mail hosts: the registry of machines whose Postfix and Dovecot mailwarden operates.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# Frozen copies of the app's column types (see 0001).
Timestamp = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "hosts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("transport", sa.String(length=8), nullable=False),
        sa.Column("ssh_user", sa.String(length=32), nullable=True),
        sa.Column("ssh_address", sa.String(length=255), nullable=True),
        sa.Column("ssh_port", sa.Integer(), nullable=True),
        sa.Column("ssh_key_file", sa.String(length=1024), nullable=True),
        sa.Column("ssh_host_key", sa.Text(), nullable=True),
        sa.Column("postfix_config_dir", sa.String(length=1024), nullable=False),
        sa.Column("postfix_command_dir", sa.String(length=1024), nullable=False),
        sa.Column("dovecot_config", sa.String(length=1024), nullable=False),
        sa.Column("doveadm", sa.String(length=1024), nullable=False),
        sa.Column("log_paths", sa.Text(), nullable=False),
        sa.Column("mail_root", sa.String(length=1024), nullable=False),
        sa.Column("probe_address", sa.String(length=255), nullable=False),
        sa.Column("smtp_port", sa.Integer(), nullable=False),
        sa.Column("imap_port", sa.Integer(), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.CheckConstraint("transport IN ('local', 'ssh')", name=op.f("ck_hosts_transport_known")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hosts")),
        sa.UniqueConstraint("name", name=op.f("uq_hosts_name")),
    )


def downgrade() -> None:
    op.drop_table("hosts")
