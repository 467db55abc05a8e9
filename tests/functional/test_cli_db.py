"""`mailwarden db ...`, and the database URL the CLI is given."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import make_url

from mailwarden.db.migrate import head_revision
from tests.functional.cli_helpers import Cli, ok, refused, run_json


def test_db_status_reports_a_current_schema_and_upgrade_is_idempotent(cli: Cli) -> None:
    status = cli.json("db", "status")
    assert status == {
        "database": status["database"],
        "revision": head_revision(),
        "head": head_revision(),
        "current": True,
    }
    assert make_url(status["database"]).database == make_url(cli.url).database
    assert "current" in cli.ok("db", "status").stdout
    assert f"is current ({head_revision()})" in cli.ok("db", "upgrade").stdout
    assert cli.json("db", "status")["current"] is True


def _plain_spellings(url: str) -> list[str]:
    """The URL as a DBA would write it: no `+driver` (postgresql://, mysql://, mariadb://)."""
    scheme, _, rest = url.partition("://")
    dialect = scheme.split("+", 1)[0]
    aliases = {"postgresql": ["postgresql", "postgres"], "mariadb": ["mariadb", "mysql"]}
    return [f"{name}://{rest}" for name in aliases.get(dialect, [dialect])]


def test_it_accepts_plain_urls_without_a_driver_name(cli: Cli, backend: str) -> None:
    spellings = _plain_spellings(cli.url)
    if backend == "postgresql":
        assert spellings[0].startswith("postgresql://")
    for number, url in enumerate(spellings):
        status = run_json(url, "db", "status")
        assert status["current"] is True
        created = run_json(url, "domain", "add", f"plain{number}.example")
        assert created["name"] == f"plain{number}.example"
    assert [d["name"] for d in cli.json("domain", "list")] == [
        f"plain{number}.example" for number in range(len(spellings))
    ]


def test_it_refuses_to_work_on_a_database_without_the_schema(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    line = refused(url, "domain", "list")
    assert "mailwarden db upgrade" in line
    status = run_json(url, "db", "status")
    assert (status["revision"], status["current"]) == (None, False)
    assert "Upgraded" in ok(url, "db", "upgrade").stdout
    assert run_json(url, "db", "status")["current"] is True
    assert run_json(url, "domain", "list") == []


def test_db_status_never_shows_the_database_password(cli: Cli, backend: str) -> None:
    url = make_url(cli.url)
    if url.password is None and backend == "postgresql":
        # The test server trusts local connections, so an added password is simply ignored.
        url = url.set(password="s3cret-in-url")
    rendered = url.render_as_string(hide_password=False)
    status = run_json(rendered, "db", "status")
    assert status["current"] is True
    if url.password:
        assert str(url.password) not in status["database"]
        assert str(url.password) not in ok(rendered, "db", "status").stdout
