"""List orderings: lists may be sorted by creation time, with the natural key breaking ties, and
each such order is one index range (keyset pages), never a sort of the whole table.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# (table, index, columns): the models declare the same indexes in __table_args__.
INDEXES = [
    ("domains", "ix_domains_created_at_name", ["created_at", "name"]),
    ("mailboxes", "ix_mailboxes_created_at_address", ["created_at", "address"]),
    # A domain's mailboxes by creation time, as ix_mailboxes_domain_id_address by address.
    (
        "mailboxes",
        "ix_mailboxes_domain_id_created_at_address",
        ["domain_id", "created_at", "address"],
    ),
]


def upgrade() -> None:
    for table, name, columns in INDEXES:
        with op.batch_alter_table(table) as batch:
            batch.create_index(name, columns)


def downgrade() -> None:
    for table, name, _ in reversed(INDEXES):
        with op.batch_alter_table(table) as batch:
            batch.drop_index(name)
