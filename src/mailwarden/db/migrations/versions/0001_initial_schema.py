"""Initial schema: domains, mailboxes, aliases, alias domains, admins, audit log.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Frozen copies of the app's column types: a migration must not change when the app does.
# MySQL/MariaDB keep whole seconds unless asked for microseconds.
Timestamp = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
Domain = sa.String(length=253)
Address = sa.String(length=254)


def upgrade() -> None:
    op.create_table(
        "domains",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", Domain, nullable=False),
        sa.Column("description", sa.String(length=255), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("max_mailboxes", sa.Integer(), nullable=False),
        sa.Column("max_aliases", sa.Integer(), nullable=False),
        sa.Column("default_mailbox_quota_bytes", sa.BigInteger(), nullable=False),
        sa.Column("quota_bytes", sa.BigInteger(), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.CheckConstraint(
            "default_mailbox_quota_bytes >= 0", name=op.f("ck_domains_default_quota_non_negative")
        ),
        sa.CheckConstraint("max_aliases >= 0", name=op.f("ck_domains_max_aliases_non_negative")),
        sa.CheckConstraint(
            "max_mailboxes >= 0", name=op.f("ck_domains_max_mailboxes_non_negative")
        ),
        sa.CheckConstraint("quota_bytes >= 0", name=op.f("ck_domains_quota_non_negative")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_domains")),
        sa.UniqueConstraint("name", name=op.f("uq_domains_name")),
    )
    op.create_table(
        "mailboxes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("domain_id", sa.Integer(), nullable=False),
        sa.Column("local_part", sa.String(length=64), nullable=False),
        sa.Column("address", Address, nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("password_hash", sa.String(length=512), nullable=False),
        sa.Column("quota_bytes", sa.BigInteger(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("maildir", sa.String(length=512), nullable=False),
        sa.Column("password_changed_at", Timestamp, nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.CheckConstraint("quota_bytes >= 0", name=op.f("ck_mailboxes_quota_non_negative")),
        sa.ForeignKeyConstraint(
            ["domain_id"],
            ["domains.id"],
            name=op.f("fk_mailboxes_domain_id_domains"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mailboxes")),
        sa.UniqueConstraint("address", name=op.f("uq_mailboxes_address")),
    )
    op.create_index("ix_mailboxes_domain_id_address", "mailboxes", ["domain_id", "address"])
    op.create_table(
        "aliases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("domain_id", sa.Integer(), nullable=False),
        sa.Column("address", Address, nullable=False),
        sa.Column("target", Address, nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.ForeignKeyConstraint(
            ["domain_id"],
            ["domains.id"],
            name=op.f("fk_aliases_domain_id_domains"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_aliases")),
        sa.UniqueConstraint("address", "target", name=op.f("uq_aliases_address_target")),
    )
    op.create_index("ix_aliases_domain_id_address", "aliases", ["domain_id", "address"])
    op.create_index("ix_aliases_target", "aliases", ["target"])
    op.create_table(
        "alias_domains",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", Domain, nullable=False),
        sa.Column("target_domain_id", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.ForeignKeyConstraint(
            ["target_domain_id"],
            ["domains.id"],
            name=op.f("fk_alias_domains_target_domain_id_domains"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alias_domains")),
        sa.UniqueConstraint("name", name=op.f("uq_alias_domains_name")),
    )
    op.create_index(
        op.f("ix_alias_domains_target_domain_id"), "alias_domains", ["target_domain_id"]
    )
    op.create_table(
        "admins",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=254), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("password_hash", sa.String(length=512), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.CheckConstraint(
            "role IN ('superadmin', 'domain-admin')", name=op.f("ck_admins_role_known")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admins")),
        sa.UniqueConstraint("username", name=op.f("uq_admins_username")),
    )
    op.create_table(
        "admin_domains",
        sa.Column("admin_id", sa.Integer(), nullable=False),
        sa.Column("domain_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["admin_id"],
            ["admins.id"],
            name=op.f("fk_admin_domains_admin_id_admins"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["domain_id"],
            ["domains.id"],
            name=op.f("fk_admin_domains_domain_id_domains"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("admin_id", "domain_id", name=op.f("pk_admin_domains")),
    )
    op.create_index(op.f("ix_admin_domains_domain_id"), "admin_domains", ["domain_id"])
    op.create_table(
        "audit_log",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("actor", sa.String(length=254), nullable=False),
        sa.Column("actor_role", sa.String(length=20), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("client_address", sa.String(length=45), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("object_type", sa.String(length=32), nullable=False),
        sa.Column("object_key", sa.String(length=512), nullable=False),
        sa.Column("domain", Domain, nullable=True),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index(op.f("ix_audit_log_created_at"), "audit_log", ["created_at"])
    op.create_index(op.f("ix_audit_log_actor"), "audit_log", ["actor"])
    op.create_index(op.f("ix_audit_log_action"), "audit_log", ["action"])
    op.create_index("ix_audit_log_domain_id", "audit_log", ["domain", "id"])
    op.create_index("ix_audit_log_object", "audit_log", ["object_type", "object_key"])


def downgrade() -> None:
    op.drop_table("audit_log")
    op.drop_table("admin_domains")
    op.drop_table("admins")
    op.drop_table("alias_domains")
    op.drop_table("aliases")
    op.drop_table("mailboxes")
    op.drop_table("domains")
