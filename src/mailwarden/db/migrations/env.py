"""Alembic environment: runs on the connection mailwarden hands over (see db/migrate.py)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from mailwarden.db.migrate import include_object
from mailwarden.db.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds tables instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_object=include_object,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `mailwarden db upgrade`, not the alembic command")
_run(connection)
