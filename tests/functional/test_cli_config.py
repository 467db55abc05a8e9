"""`mailwarden config postfix|dovecot`: writing, checking, refusing, never showing a secret."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.functional.cli_helpers import Cli, describe, run

MASTER_ENV = {"MAILWARDEN_SIEVE_MASTER_PASSWORD": "sieve master secret"}


def modes(directory: Path) -> dict[str, int]:
    return {
        str(path.relative_to(directory)): stat.S_IMODE(path.stat().st_mode)
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def test_postfix_out_writes_the_files_private_where_they_hold_the_password(
    cli: Cli, tmp_path: Path
) -> None:
    out = tmp_path / "postfix"
    result = cli.ok("config", "postfix", "--out", str(out))
    written = modes(out)
    assert written["main.cf.mailwarden"] == 0o644
    assert written["master.cf.mailwarden"] == 0o644
    maps = {name: mode for name, mode in written.items() if name.startswith("mailwarden/")}
    assert len(maps) == 10 and set(maps.values()) == {0o640}
    assert result.stdout.count("wrote ") == len(written)
    # Paths inside the files point where they will be installed, not where they were written.
    assert "proxy:" in (out / "main.cf.mailwarden").read_text()
    assert (
        "/etc/postfix/mailwarden/virtual_alias_maps.cf" in (out / "main.cf.mailwarden").read_text()
    )


def test_dovecot_out_honours_the_target_overrides(cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "dovecot"
    listing = cli.json(
        "config",
        "dovecot",
        "--out",
        str(out),
        "--dovecot-dir",
        "/srv/dovecot",
        "--mail-root",
        "/srv/vmail",
        env=MASTER_ENV,
    )
    assert {entry["file"]: entry["mode"] for entry in listing} == {
        "conf.d/90-mailwarden.conf": "0644",
        "mailwarden-sql.conf.ext": "0640",
        "mailwarden-dict-sql.conf.ext": "0640",
        "mailwarden-master-users": "0640",
    }
    assert modes(out)["mailwarden-master-users"] == 0o640
    fragment = (out / "conf.d/90-mailwarden.conf").read_text()
    assert "args = /srv/dovecot/mailwarden-sql.conf.ext" in fragment
    assert "'/srv/vmail/'" in (out / "mailwarden-sql.conf.ext").read_text()


def test_check_says_same_then_differs_then_missing(cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "postfix"
    cli.ok("config", "postfix", "--out", str(out))
    same = cli.ok("config", "postfix", "--check", "--out", str(out))
    assert same.stdout.splitlines()[0].split() == ["same", "mailwarden/relay_domains.cf"]
    assert all(line.startswith("same ") for line in same.stdout.splitlines())

    main_cf = out / "main.cf.mailwarden"
    main_cf.write_text(main_cf.read_text().replace("= encrypt", "= may"))
    (out / "mailwarden/transport_maps.cf").unlink()
    result = cli.run("config", "postfix", "--check", "--out", str(out))
    assert result.exit_code == 1, describe(result)
    assert "differs  main.cf.mailwarden" in result.stdout
    assert "missing  mailwarden/transport_maps.cf" in result.stdout
    assert "-mailwarden_submission_tls = may" in result.stdout
    assert "+mailwarden_submission_tls = encrypt" in result.stdout

    statuses = json.loads(
        cli.run("config", "postfix", "--check", "--out", str(out), "--json").stdout
    )
    by_file = {entry["file"]: entry["status"] for entry in statuses}
    assert by_file["main.cf.mailwarden"] == "differs"
    assert by_file["mailwarden/transport_maps.cf"] == "missing"
    assert by_file["mailwarden/relay_domains.cf"] == "same"
    assert len(by_file) == 12


def test_check_accepts_a_master_user_hash_that_verifies(cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "dovecot"
    cli.ok("config", "dovecot", "--out", str(out), env=MASTER_ENV)
    # A fresh rendering has a fresh salt; the deployed hash still verifies the password.
    checked = cli.json("config", "dovecot", "--check", "--out", str(out), env=MASTER_ENV)
    assert {entry["status"] for entry in checked} == {"same"}
    result = cli.run(
        "config",
        "dovecot",
        "--check",
        "--out",
        str(out),
        env={"MAILWARDEN_SIEVE_MASTER_PASSWORD": "another master secret"},
    )
    assert result.exit_code == 1
    assert "differs  mailwarden-master-users" in result.stdout
    assert "master user's password differs (not shown)" in result.stdout
    assert "master secret" not in result.stdout and "$5$" not in result.stdout


def test_a_domain_admin_may_not_generate_or_check(cli: Cli, tmp_path: Path) -> None:
    cli.add_domain("example.org")
    cli.add_admin("alice", "domain-admin", "example.org")
    out = tmp_path / "postfix"
    line = cli.refused("config", "postfix", "--out", str(out), as_admin="alice")
    assert line == "mailwarden: not permitted: system:stack:config"
    assert not out.exists()
    cli.refused("config", "dovecot", "--check", "--out", str(tmp_path), as_admin="alice")
    cli.refused("config", "dovecot", "--stdout", as_admin="alice")


def test_usage_needs_a_destination(cli: Cli) -> None:
    result = cli.usage_error("config", "postfix")
    assert "--out DIR" in result.output
    cli.usage_error("config", "dovecot", "--check", "--stdout")


def test_help_reads_like_a_manual_page(cli: Cli) -> None:
    postfix = cli.ok("config", "postfix", "--help").stdout
    for text in ("Examples:", "Deploy", "main.cf.mailwarden", "postfix reload", "--check"):
        assert text in postfix, text
    dovecot = cli.ok("config", "dovecot", "--help").stdout
    for text in ("Examples:", "Deploy", "conf.d/90-mailwarden.conf", "doveadm reload"):
        assert text in dovecot, text


# Only the PostgreSQL test server (trust authentication) accepts a made-up password.
@pytest.mark.parametrize("backend", ["postgresql"], indirect=True, scope="session")
def test_the_database_password_is_never_printed(cli: Cli, backend: str, tmp_path: Path) -> None:
    url = make_url(cli.url).set(password="s3cret-pw").render_as_string(hide_password=False)
    out = tmp_path / "postfix"
    preview = run(url, "config", "postfix", "--stdout")
    assert preview.exit_code == 0, describe(preview)
    assert "password = <redacted>" in preview.stdout
    written = run(url, "config", "postfix", "--out", str(out))
    assert written.exit_code == 0, describe(written)
    assert "password = s3cret-pw" in (out / "mailwarden/relay_domains.cf").read_text()
    relay = out / "mailwarden/relay_domains.cf"
    relay.write_text(relay.read_text().replace("SELECT", "SELECT DISTINCT"))
    checked = run(url, "config", "postfix", "--check", "--out", str(out))
    assert checked.exit_code == 1 and "SELECT DISTINCT" in checked.stdout
    dovecot = run(url, "config", "dovecot", "--stdout")
    assert dovecot.exit_code == 0 and "password=<redacted>" in dovecot.stdout
    for result in (preview, written, checked, dovecot):
        assert "s3cret-pw" not in result.stdout + result.stderr
