"""Hourly traffic per host kept by `logs ingest`, its top lists, and the read position of
each log.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# Frozen copies of the app's column types (see 0001).
Timestamp = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")

COUNTERS = (
    "received",
    "delivered",
    "forwarded",
    "deferred",
    "deferrals",
    "bounced",
    "rejected",
    "reject_warnings",
    "held",
    "discarded",
)


def _host_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["host_id"], ["hosts.id"], name=op.f(f"fk_{table}_host_id_hosts"), ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "traffic_hours",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("host_id", sa.Integer(), nullable=False),
        sa.Column("hour", sa.DateTime(), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in COUNTERS),
        sa.Column("bytes_received", sa.BigInteger(), nullable=False),
        sa.Column("bytes_delivered", sa.BigInteger(), nullable=False),
        _host_fk("traffic_hours"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_traffic_hours")),
        sa.UniqueConstraint("host_id", "hour", name=op.f("uq_traffic_hours_host_id_hour")),
    )
    op.create_table(
        "traffic_top",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("host_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("hour", sa.DateTime(), nullable=False),
        sa.Column("entry", sa.String(length=255), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('sender', 'recipient', 'sender_domain', 'recipient_domain', 'reject_reason')",
            name=op.f("ck_traffic_top_kind_known"),
        ),
        _host_fk("traffic_top"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_traffic_top")),
    )
    op.create_index("ix_traffic_top_host_id_kind_hour", "traffic_top", ["host_id", "kind", "hour"])
    op.create_index("ix_traffic_top_hour", "traffic_top", ["hour"])
    op.create_table(
        "log_cursors",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("host_id", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.Column("identity", sa.String(length=64), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("mtime", sa.BigInteger(), nullable=False),
        sa.Column("last_line_at", sa.DateTime(), nullable=True),
        sa.Column("updated_at", Timestamp, nullable=False),
        _host_fk("log_cursors"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_log_cursors")),
    )
    op.create_index(op.f("ix_log_cursors_host_id"), "log_cursors", ["host_id"])


def downgrade() -> None:
    # Dropping a table drops its indexes (MariaDB refuses to drop one a foreign key uses).
    op.drop_table("log_cursors")
    op.drop_table("traffic_top")
    op.drop_table("traffic_hours")
