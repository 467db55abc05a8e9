"""The generated Dovecot configuration: doveconf parses it, and its SQL runs on every backend.

The queries are taken from the rendered mailwarden-sql.conf.ext exactly as Dovecot reads them
(continuation lines joined), `%Lu` replaced by the login the way Dovecot expands it (lowercased,
quoted), and run through SQLAlchemy on the committed world of test_postfix_maps.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, inspect, text
from sqlalchemy.engine import make_url

from mailwarden.apppasswords import service as apppasswords
from mailwarden.apppasswords.models import AppPassword
from mailwarden.apppasswords.schemas import AppPasswordCreate
from mailwarden.db.engine import session_factory
from mailwarden.kernel.actor import Actor, Channel
from mailwarden.kernel.passwords import Scheme, hash_password, verify_password
from mailwarden.kernel.unit_of_work import UnitOfWork
from mailwarden.settings import Settings
from mailwarden.stack.config import render_dovecot
from mailwarden.stack.dovecot import APP_PASSWORDS_SQL, CONF_FRAGMENT, DICT_SQL, MASTER_USERS, SQL
from mailwarden.stack.target import DeployTarget, TcpPort, UnixSocket
from tests.integration.test_postfix_maps import (
    GIB,
    PASSWORD,
    build_mail_world,
    full_scans,
    postgresql_socket_alias,
)
from tests.support.databases import delete_all_rows
from tests.support.services import require_tool

LIVE = {"user1@a.example", "user2@a.example", "user@b.example"}
LOCKED = {"paused@b.example", "gone@b.example", "x@off.example", "nobody@a.example"}


def settings_file(text_: str) -> dict[str, str]:
    """`key = value` lines of a Dovecot settings file, continuation lines joined with a space
    (as Dovecot's settings reader does); sections are skipped."""
    values: dict[str, str] = {}
    pending = ""
    for raw in text_.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1].rstrip() + " "
            continue
        line, pending = pending + line, ""
        key, sep, value = line.partition(" = ")
        if sep and "{" not in key:
            values[key] = value
    return values


def as_dovecot_runs_it(query: str, login: str) -> Any:
    # Dovecot lowercases for %Lu and escapes for the driver; the logins here need no escaping.
    # Colons are escaped for text() only (`'*:bytes='` is not a bind parameter).
    return text(query.replace("%Lu", login.lower()).replace(":", "\\:"))


@pytest.fixture(scope="module")
def world(
    engine: Engine, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[dict[str, str], Settings]]:
    tmp_path = tmp_path_factory.mktemp("dovecot-queries")
    settings = Settings(
        data_dir=tmp_path, database_url=database_url, password_scheme=Scheme.SHA256_CRYPT
    )
    delete_all_rows(engine)
    build_mail_world(lambda: UnitOfWork(session_factory(engine)(), settings))
    target = DeployTarget(
        postfix_dir=tmp_path / "postfix",
        dovecot_dir=tmp_path / "dovecot",
        mail_root=Path("/srv/vmail"),
        vmail_user="vmail",
        vmail_group="vmail",
    )
    try:
        yield settings_file(render_dovecot(settings, target)[SQL]), settings
    finally:
        delete_all_rows(engine)


World = tuple[dict[str, str], Settings]


def test_password_query_lets_only_live_mailboxes_log_in(world: World, engine: Engine) -> None:
    queries, _ = world
    with engine.connect() as connection:
        for login in LIVE:
            rows = connection.execute(as_dovecot_runs_it(queries["password_query"], login))
            row = rows.mappings().one()
            assert set(row.keys()) == {"user", "password"}
            assert row["user"] == login
            assert row["password"].startswith("{SHA256-CRYPT}")
            assert verify_password(PASSWORD, row["password"])
        for login in LOCKED:
            rows = connection.execute(as_dovecot_runs_it(queries["password_query"], login))
            assert rows.all() == [], login
        mixed_case = connection.execute(
            as_dovecot_runs_it(queries["password_query"], "User1@A.Example")
        )
        assert mixed_case.mappings().one()["user"] == "user1@a.example"


def test_user_query_gives_home_and_quota(world: World, engine: Engine) -> None:
    queries, _ = world
    with engine.connect() as connection:
        user1 = (
            connection.execute(as_dovecot_runs_it(queries["user_query"], "user1@a.example"))
            .mappings()
            .one()
        )
        user2 = (
            connection.execute(as_dovecot_runs_it(queries["user_query"], "user2@a.example"))
            .mappings()
            .one()
        )
        for login in LOCKED:
            rows = connection.execute(as_dovecot_runs_it(queries["user_query"], login))
            assert rows.all() == [], login
    # No uid/gid: every mailbox runs as mail_uid/mail_gid of the fragment.
    assert dict(user1) == {
        "user": "user1@a.example",
        "home": "/srv/vmail/a.example/user1/",
        "quota_rule": f"*:bytes={2 * GIB}",
    }
    # 0 is unlimited for Dovecot as for mailwarden.
    assert user2["quota_rule"] == "*:bytes=0"


def test_iterate_query_lists_exactly_the_live_mailboxes(world: World, engine: Engine) -> None:
    queries, _ = world
    with engine.connect() as connection:
        users = connection.execute(as_dovecot_runs_it(queries["iterate_query"], "")).scalars()
        assert set(users) == LIVE


def test_login_queries_start_from_an_index(world: World, engine: Engine) -> None:
    queries, _ = world
    with engine.connect() as connection:
        for name in ("password_query", "user_query"):
            query = queries[name].replace("%Lu", "user1@a.example")
            assert full_scans(connection, query) == [], name


def test_quota_dict_maps_onto_the_quota_usage_table(world: World, engine: Engine) -> None:
    _, settings = world
    target = DeployTarget.production(settings)
    dict_sql = render_dovecot(settings, target)[DICT_SQL]
    maps = [settings_file(block.split("}", 1)[0]) for block in dict_sql.split("map {")[1:]]
    assert {m["pattern"] for m in maps} == {"priv/quota/storage", "priv/quota/messages"}
    columns = {column["name"] for column in inspect(engine).get_columns("quota_usage")}
    primary_key = inspect(engine).get_pk_constraint("quota_usage")["constrained_columns"]
    for mapping in maps:
        assert mapping["table"] == "quota_usage"
        assert mapping["username_field"] == "username" == primary_key[0]
        assert mapping["value_field"] in columns


# --- app passwords: the second passdb ------------------------------------------------------


def with_password(query: str, login: str, password: str, backend: str) -> Any:
    """The app-password query as Dovecot runs it: %w escaped by the driver's own rules."""
    if backend in ("mysql", "mariadb"):
        escaped = password.replace("\\", "\\\\").replace("'", "\\'")
    else:
        escaped = password.replace("'", "''")
    return as_dovecot_runs_it(query.replace("%w", escaped), login)


@pytest.fixture(scope="module")
def app_passwords(world: World, engine: Engine) -> tuple[str, dict[str, str]]:
    """The app-password query, and an app password of every mailbox (live or locked)."""
    _, settings = world
    rendered = render_dovecot(settings, DeployTarget.production(settings))[APP_PASSWORDS_SQL]
    operator = Actor.local_operator(Channel.SYSTEM)
    data = AppPasswordCreate(name="phone")
    made: dict[str, str] = {}
    with UnitOfWork(session_factory(engine)(), settings) as uow:
        for address in sorted(LIVE | LOCKED - {"gone@b.example", "nobody@a.example"}):
            made[address] = apppasswords.create(uow, operator, address, data).password
        # A removed mailbox takes no new app password: this one dates from before the removal.
        gone_id = uow.session.execute(
            text("SELECT id FROM mailboxes WHERE address = 'gone@b.example'")
        ).scalar_one()
        made["gone@b.example"] = "gonegone-" + "a" * 26
        uow.session.add(
            AppPassword(
                mailbox_id=gone_id,
                public_id="gonegone",
                name="phone",
                password_hash=hash_password(made["gone@b.example"], settings.password_scheme),
            )
        )
        uow.finish()
    return settings_file(rendered)["password_query"], made


def test_app_password_query_finds_the_one_row_of_the_password(
    app_passwords: tuple[str, dict[str, str]], engine: Engine, backend: str
) -> None:
    query, made = app_passwords
    with engine.connect() as connection:
        for login in LIVE:
            password = made[login]
            rows = connection.execute(with_password(query, login, password, backend))
            row = rows.mappings().one()
            assert set(row.keys()) == {"user", "password"}
            assert row["user"] == login
            assert row["password"].startswith("{SHA256-CRYPT}")
            assert verify_password(password, row["password"])
            # The right public id with a wrong secret: Dovecot gets the row, the hash says no.
            wrong = password[:-1] + ("b" if password[-1] != "b" else "c")
            row = connection.execute(with_password(query, login, wrong, backend)).mappings().one()
            assert not verify_password(wrong, row["password"])
        mixed_case = connection.execute(
            with_password(query, "User1@A.Example", made["user1@a.example"], backend)
        )
        assert mixed_case.mappings().one()["user"] == "user1@a.example"


def test_app_password_query_refuses_locked_mailboxes_and_other_mailboxes_passwords(
    app_passwords: tuple[str, dict[str, str]], engine: Engine, backend: str
) -> None:
    query, made = app_passwords
    with engine.connect() as connection:
        for login in LOCKED - {"nobody@a.example"}:
            rows = connection.execute(with_password(query, login, made[login], backend))
            assert rows.all() == [], login
        # user2's app password names user2's row: for user1 it selects nothing.
        rows = connection.execute(
            with_password(query, "user1@a.example", made["user2@a.example"], backend)
        )
        assert rows.all() == []
        # The mailbox password, or nothing at all (a lookup without a password), neither.
        for password in (PASSWORD, ""):
            rows = connection.execute(with_password(query, "user1@a.example", password, backend))
            assert rows.all() == [], password


@pytest.mark.parametrize("password", ["'; DROP TABLE app_passwords; --", "ab\\'cdefgh-x", "\\"])
def test_app_password_query_takes_quotes_in_the_password_as_text(
    password: str, app_passwords: tuple[str, dict[str, str]], engine: Engine, backend: str
) -> None:
    query, _ = app_passwords
    with engine.connect() as connection:
        rows = connection.execute(with_password(query, "user1@a.example", password, backend))
        assert rows.all() == []
        count = connection.execute(text("SELECT COUNT(*) FROM app_passwords")).scalar_one()
    assert count == len(LIVE | LOCKED) - 1


def test_app_password_query_starts_from_an_index(
    app_passwords: tuple[str, dict[str, str]], engine: Engine, backend: str
) -> None:
    query, made = app_passwords
    with engine.connect() as connection:
        if backend == "mariadb":
            connection.exec_driver_sql("ANALYZE TABLE app_passwords").all()
        statement = str(
            with_password(query, "user1@a.example", made["user1@a.example"], backend)
        ).replace("\\:", ":")
        assert full_scans(connection, statement) == []


def _doveconf() -> str:
    return require_tool("doveconf", "dovecot-core")


@pytest.mark.parametrize("master_password", [None, "sieve master secret"])
@pytest.mark.parametrize("over_tcp", [False, True])
def test_doveconf_parses_the_fragment(
    database_url: str, tmp_path: Path, master_password: str | None, over_tcp: bool
) -> None:
    dovecot_dir = tmp_path / "dovecot"
    settings = Settings(
        data_dir=tmp_path,
        database_url=database_url,
        password_scheme=Scheme.SHA256_CRYPT,
        sieve_master_password=None if master_password is None else SecretStr(master_password),
    )
    endpoints: dict[str, Any] = (
        {"lmtp": TcpPort("127.0.0.1", 10024), "sasl": TcpPort("127.0.0.1", 10025)}
        if over_tcp
        else {
            "lmtp": UnixSocket(tmp_path / "spool/private/dovecot-lmtp"),
            "sasl": UnixSocket(tmp_path / "spool/private/auth"),
        }
    )
    target = DeployTarget(
        postfix_dir=tmp_path / "postfix",
        dovecot_dir=dovecot_dir,
        mail_root=tmp_path / "vmail",
        vmail_user="vmail",
        vmail_group="vmail",
        postfix_spool=tmp_path / "spool",
        sieve_submission="127.0.0.1:10587",
        **endpoints,
    )
    files = render_dovecot(settings, target)
    assert (MASTER_USERS in files) is (master_password is not None)
    for relative, content in files.items():
        (dovecot_dir / relative).parent.mkdir(parents=True, exist_ok=True)
        (dovecot_dir / relative).write_text(content)
    (dovecot_dir / "dovecot.conf").write_text(
        f"base_dir = {tmp_path}/run\n!include {dovecot_dir}/{CONF_FRAGMENT}\n"
    )
    result = subprocess.run(
        [_doveconf(), "-c", str(dovecot_dir / "dovecot.conf"), "-n"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0 and "rror" not in result.stderr, result.stderr
    config = result.stdout
    assert f"args = {dovecot_dir}/{SQL}" in config
    # The mailbox password first; when it fails, the app passwords (continuing on failure is
    # Dovecot's default, which -n leaves out; a `return-fail` there would show).
    passdbs = [block.split("}", 1)[0] for block in config.split("passdb {")[1:]]
    mailbox = next(i for i, block in enumerate(passdbs) if f"{dovecot_dir}/{SQL}\n" in block)
    assert "result_" not in passdbs[mailbox]
    assert f"args = {dovecot_dir}/{APP_PASSWORDS_SQL}\n" in passdbs[mailbox + 1]
    assert "submission_host = 127.0.0.1:10587" in config
    assert "sieve_vacation_dont_check_recipient = yes" in config
    if over_tcp:
        assert "port = 10024" in config and "port = 10025" in config
    else:
        assert f"unix_listener {tmp_path}/spool/private/auth" in config
    # The master user exists for ManageSieve only, and still needs a live mailbox to log in as.
    sieve_block = config.split("protocol sieve {", 1)[1] if "protocol sieve {" in config else ""
    assert ("master = yes" in sieve_block) is (master_password is not None)
    assert ("result_success = continue" in sieve_block) is (master_password is not None)
    assert config.count("master = yes") == (0 if master_password is None else 1)
    if master_password is not None:
        user, _, stored = files[MASTER_USERS].strip().partition(":")
        assert user == settings.sieve_master_user
        assert verify_password(master_password, stored)


# PostgreSQL only: libpq names its unix sockets by port.
@pytest.mark.parametrize("backend", ["postgresql"], indirect=True, scope="session")
def test_the_connect_string_reaches_postgresql_over_a_socket_on_its_port(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    """Dovecot hands `connect` to libpq as it is; libpq (through psycopg) reads it here."""
    with postgresql_socket_alias(engine, database_url) as alias:
        settings = Settings(data_dir=tmp_path, database_url=alias.url())
        files = render_dovecot(settings, DeployTarget.production(settings))
        for name in (SQL, DICT_SQL):
            connect = settings_file(files[name])["connect"]
            conninfo = connect[1:-1].replace('\\"', '"').replace("\\\\", "\\")
            assert f"host={alias.directory} port={alias.port} " in conninfo
            with psycopg.connect(conninfo) as connection:
                database = connection.execute("SELECT current_database()").fetchone()
            assert database == (make_url(database_url).database,), name
