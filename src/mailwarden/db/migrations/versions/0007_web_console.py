"""Web console and portal: browser sessions, TOTP second factor with recovery codes, the
one-time setup link, app passwords for mail clients, and moderated mailbox registration.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# Frozen copies of the app's column types (see 0001).
Timestamp = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def _admin_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["admin_id"], ["admins.id"], name=op.f(f"fk_{table}_admin_id_admins"), ondelete="CASCADE"
    )


def _mailbox_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["mailbox_id"],
        ["mailboxes.id"],
        name=op.f(f"fk_{table}_mailbox_id_mailboxes"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "web_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("admin_id", sa.Integer(), nullable=True),
        sa.Column("mailbox_id", sa.Integer(), nullable=True),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("second_factor_pending", sa.Boolean(), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("last_seen_at", Timestamp, nullable=False),
        sa.Column("client_address", sa.String(length=45), nullable=True),
        sa.Column("user_agent", sa.String(length=255), nullable=False),
        sa.CheckConstraint("kind IN ('admin', 'mailbox')", name=op.f("ck_web_sessions_kind_known")),
        sa.CheckConstraint(
            "(admin_id IS NULL) <> (mailbox_id IS NULL)",
            name=op.f("ck_web_sessions_one_principal"),
        ),
        _admin_fk("web_sessions"),
        _mailbox_fk("web_sessions"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_web_sessions_token_hash")),
    )
    op.create_index(op.f("ix_web_sessions_admin_id"), "web_sessions", ["admin_id"])
    op.create_index(op.f("ix_web_sessions_mailbox_id"), "web_sessions", ["mailbox_id"])
    op.create_index(op.f("ix_web_sessions_last_seen_at"), "web_sessions", ["last_seen_at"])

    op.create_table(
        "totp_enrolments",
        sa.Column("admin_id", sa.Integer(), nullable=False),
        sa.Column("secret", sa.String(length=64), nullable=False),
        sa.Column("last_used_step", sa.Integer(), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("confirmed_at", Timestamp, nullable=True),
        _admin_fk("totp_enrolments"),
        sa.PrimaryKeyConstraint("admin_id", name=op.f("pk_totp_enrolments")),
    )
    op.create_table(
        "recovery_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("admin_id", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("used_at", Timestamp, nullable=True),
        _admin_fk("recovery_codes"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recovery_codes")),
    )
    op.create_index(op.f("ix_recovery_codes_admin_id"), "recovery_codes", ["admin_id"])

    op.create_table(
        "setup_tokens",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("expires_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_setup_tokens")),
    )

    op.create_table(
        "app_passwords",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mailbox_id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("password_hash", sa.String(length=512), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        _mailbox_fk("app_passwords"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_app_passwords")),
        sa.UniqueConstraint("mailbox_id", "name", name=op.f("uq_app_passwords_mailbox_id_name")),
        sa.UniqueConstraint("public_id", name=op.f("uq_app_passwords_public_id")),
    )

    op.create_table(
        "registration_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("domain_id", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(length=254), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("password_hash", sa.String(length=512), nullable=False),
        sa.Column("contact", sa.String(length=254), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("client_address", sa.String(length=45), nullable=True),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("decided_at", Timestamp, nullable=True),
        sa.Column("decided_by", sa.String(length=254), nullable=True),
        sa.Column("reason", sa.String(length=255), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'approved', 'rejected')",
            name=op.f("ck_registration_requests_status_known"),
        ),
        sa.ForeignKeyConstraint(
            ["domain_id"],
            ["domains.id"],
            name=op.f("fk_registration_requests_domain_id_domains"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registration_requests")),
    )
    op.create_index(
        "ix_registration_requests_domain_status_created",
        "registration_requests",
        ["domain_id", "status", "created_at"],
    )
    op.create_index("ix_registration_requests_address", "registration_requests", ["address"])

    with op.batch_alter_table("domains") as batch:
        batch.add_column(
            sa.Column("registration_open", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(
            sa.Column(
                "registration_pending_limit", sa.Integer(), nullable=False, server_default="20"
            )
        )
        batch.create_check_constraint(
            op.f("ck_domains_registration_limit_non_negative"), "registration_pending_limit >= 0"
        )


def downgrade() -> None:
    with op.batch_alter_table("domains") as batch:
        batch.drop_constraint(op.f("ck_domains_registration_limit_non_negative"), type_="check")
        batch.drop_column("registration_pending_limit")
        batch.drop_column("registration_open")
    op.drop_table("registration_requests")
    op.drop_table("app_passwords")
    op.drop_table("setup_tokens")
    op.drop_table("recovery_codes")
    op.drop_table("totp_enrolments")
    op.drop_table("web_sessions")
