"""Indexes for the incidents list: newest first, of one host or the open ones.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-21
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_health_incidents_host_id_id", "health_incidents", ["host_id", "id"])
    op.create_index("ix_health_incidents_resolved_at_id", "health_incidents", ["resolved_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_health_incidents_resolved_at_id", table_name="health_incidents")
    op.drop_index("ix_health_incidents_host_id_id", table_name="health_incidents")
