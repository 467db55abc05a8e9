"""Engine and session factory, built on demand (never at import time)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    if isinstance(dbapi_connection, sqlite3.Connection):
        # Let SQLAlchemy issue BEGIN itself: pysqlite's own transaction handling breaks
        # SAVEPOINTs and delays BEGIN past the first read.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # Foreign keys are off by default in SQLite; WAL lets Postfix/Dovecot read while we write.
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.close()


def build_engine(url: str, **kwargs: Any) -> Engine:
    parsed = make_url(url)
    options: dict[str, Any] = {"pool_pre_ping": True, **kwargs}
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        options.pop("pool_pre_ping", None)
    elif parsed.get_backend_name() in {"mysql", "mariadb"}:
        # utf8mb4 so IDN display names and Unicode names survive; recycle before wait_timeout.
        options.setdefault("pool_recycle", 3600)
        if "charset" not in parsed.query:
            parsed = parsed.update_query_dict({"charset": "utf8mb4"})
    engine = create_engine(parsed, **options)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_begin(connection: Any) -> None:
    # IMMEDIATE takes the write lock up front. A deferred transaction that read first and then
    # wants to write fails at once with "database is locked" (busy_timeout does not apply)
    # when Dovecot wrote quota usage in between; waiting for the lock at BEGIN does not.
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)
