"""One private, migrated database per backend and test worker."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from mailwarden.db.engine import build_engine
from mailwarden.db.migrate import upgrade

from .services import MARIADB_URL, POSTGRES_URL

# Children first, so rows can be deleted without tripping foreign keys.
TABLES_IN_DELETE_ORDER = (
    "web_sessions",
    "totp_enrolments",
    "recovery_codes",
    "setup_tokens",
    "app_passwords",
    "registration_requests",
    "api_key_domains",
    "api_keys",
    "auth_failures",
    "admin_domains",
    "admins",
    "aliases",
    "vacations",
    "forwards",
    "quota_usage",
    "mailboxes",
    "alias_domains",
    "domains",
    "traffic_top",
    "traffic_hours",
    "log_cursors",
    "health_results",
    "health_incidents",
    "hosts",
    "audit_log",
)


def _database_name() -> str:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    return f"mw_test_{worker}_{uuid.uuid4().hex[:8]}"


@contextmanager
def private_database(
    backend: str, tmp_dir: Path, *, name: str | None = None, keep: bool = False
) -> Iterator[str]:
    """Create an empty database, yield its URL, drop it afterwards (unless `keep`).

    A given `name` is reused: whatever an earlier kept run left under it is dropped first.
    """
    if backend == "sqlite":
        yield f"sqlite:///{tmp_dir / 'mailwarden-test.db'}"
        return
    server_url = POSTGRES_URL if backend == "postgresql" else MARIADB_URL
    name = name or _database_name()
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    # DDL takes no bound identifiers: the name is quoted by the dialect's own preparer.
    quoted = admin.dialect.identifier_preparer.quote_identifier(name)
    drop = f"DROP DATABASE IF EXISTS {quoted}" + (
        " WITH (FORCE)" if backend == "postgresql" else ""
    )
    create = f"CREATE DATABASE {quoted}" + (
        "" if backend == "postgresql" else " CHARACTER SET utf8mb4"
    )
    try:
        with admin.connect() as connection:
            connection.execute(text(drop))
            connection.execute(text(create))
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        if not keep:
            with admin.connect() as connection:
                connection.execute(text(drop))
        admin.dispose()


def migrated_engine(url: str) -> Engine:
    engine = build_engine(url)
    upgrade(engine)
    return engine


def delete_all_rows(engine: Engine) -> None:
    with engine.begin() as connection:
        for table in TABLES_IN_DELETE_ORDER:
            connection.execute(text(f"DELETE FROM {table}"))
