"""Mailbox search on PostgreSQL: trigram indexes on address and name, so that a `q` search
finds its matches through an index instead of reading the table.

Only PostgreSQL has them (pg_trgm, a trusted extension since PostgreSQL 13: the database
owner may create it). Where the extension cannot be created, the search still works, by
reading the table; the migration says so and goes on. SQLite and MariaDB are untouched.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-21
"""

from __future__ import annotations

import logging

from alembic import op
from sqlalchemy.exc import DBAPIError

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

# Kept out of the portable models; mailwarden.db.migrate.DIALECT_ONLY_INDEXES names them.
INDEXES = {"ix_mailboxes_address_trgm": "address", "ix_mailboxes_name_trgm": "name"}


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    try:
        with bind.begin_nested():
            bind.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except DBAPIError as error:
        log.warning("pg_trgm unavailable (%s): mailbox search will read the table", error.orig)
        return
    for name, column in INDEXES.items():
        op.create_index(
            name,
            "mailboxes",
            [column],
            postgresql_using="gin",
            postgresql_ops={column: "gin_trgm_ops"},
        )


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    for name in INDEXES:
        bind.exec_driver_sql(f"DROP INDEX IF EXISTS {name}")
