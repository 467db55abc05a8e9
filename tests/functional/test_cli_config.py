"""`mailwarden config postfix|dovecot`: writing, checking, refusing, never showing a secret."""

from __future__ import annotations

import grp
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from tests.functional.cli_helpers import Cli, describe, run
from tests.unit.test_stack_config import in_unprivileged_process

MASTER_ENV = {"MAILWARDEN_SIEVE_MASTER_PASSWORD": "sieve master secret"}


def _exists(group: str) -> bool:
    try:
        grp.getgrnam(group)
    except KeyError:
        return False
    return True


# Root gives the secret files to the daemon's group; anyone else here keeps them private.
AS_ROOT = os.geteuid() == 0
if AS_ROOT and not (_exists("postfix") and _exists("dovecot")):
    pytest.skip(
        "as root, `config --out` needs the groups postfix and dovecot (install the daemons)",
        allow_module_level=True,
    )
SECRET_MODE = 0o640 if AS_ROOT else 0o600


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
    assert len(maps) == 10 and set(maps.values()) == {SECRET_MODE}
    assert result.stdout.count("wrote ") == len(written)
    if AS_ROOT:
        postfix_gid = grp.getgrnam("postfix").gr_gid
        assert {(out / name).stat().st_gid for name in maps} == {postfix_gid}
        assert "(mode 0640, group postfix)" in result.stdout
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
    secret = f"{SECRET_MODE:04o}"
    group = "dovecot" if AS_ROOT else None
    assert {entry["file"]: (entry["mode"], entry["group"]) for entry in listing} == {
        "conf.d/90-mailwarden.conf": ("0644", None),
        "mailwarden-sql.conf.ext": (secret, group),
        "mailwarden-app-passwords-sql.conf.ext": (secret, group),
        "mailwarden-dict-sql.conf.ext": (secret, group),
        "mailwarden-master-users": (secret, group),
    }
    assert modes(out)["mailwarden-master-users"] == SECRET_MODE
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


def test_out_and_stdout_together_are_a_usage_error(cli: Cli, tmp_path: Path) -> None:
    # --stdout writes nothing: ignoring --out would let the caller believe the files exist.
    out = tmp_path / "postfix"
    result = cli.usage_error("config", "postfix", "--out", str(out), "--stdout")
    assert "--out" in result.output and "--stdout" in result.output
    assert not out.exists()
    cli.usage_error("config", "dovecot", "--stdout", "--out", str(tmp_path / "dovecot"))
    assert not (tmp_path / "dovecot").exists()


@pytest.mark.skipif(not AS_ROOT, reason="giving a file to another group needs root")
def test_check_reports_a_secret_file_readable_by_another_group(cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "dovecot"
    cli.ok("config", "dovecot", "--out", str(out))
    assert cli.ok("config", "dovecot", "--check", "--out", str(out)).exit_code == 0
    # A shared group: its members would read the database password.
    os.chown(out / "mailwarden-sql.conf.ext", -1, grp.getgrnam("users").gr_gid)
    result = cli.run("config", "dovecot", "--check", "--out", str(out))
    assert result.exit_code == 1, describe(result)
    assert "differs  mailwarden-sql.conf.ext" in result.stdout
    assert "mode 0640 and group users" in result.stdout
    assert "should be 0640 with group dovecot" in result.stdout


# Run by `nobody`, the PostgreSQL test server (trust over TCP) is the database it can reach.
@pytest.mark.parametrize("backend", ["postgresql"], indirect=True, scope="session")
def test_a_user_outside_the_daemon_group_gets_private_files_and_a_note(
    cli: Cli, backend: str
) -> None:
    def write(directory: Path) -> dict[str, Any]:
        result = run(cli.url, "config", "postfix", "--out", str(directory / "postfix"))
        return {
            "exit_code": result.exit_code,
            "stdout": result.stdout,
            "stderr": result.stderr,
            "modes": modes(directory / "postfix"),
        }

    outcome = in_unprivileged_process(write, primary_group="users", extra_groups=[])
    assert outcome["exit_code"] == 0, outcome
    maps = {name: mode for name, mode in outcome["modes"].items() if name.startswith("mailwarden/")}
    assert len(maps) == 10 and set(maps.values()) == {0o600}
    assert outcome["modes"]["main.cf.mailwarden"] == 0o644
    assert "(mode 0600)" in outcome["stdout"]
    # One note on stderr says what to do where the files are installed.
    note = outcome["stderr"].strip()
    assert note.startswith("mailwarden: note: 10 file(s) hold the database password")
    assert "chgrp postfix FILE && chmod 0640 FILE" in note and "\n" not in note


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
    # The preview keeps Dovecot's closing quote: it reads like the real file.
    assert dovecot.exit_code == 0 and 'password=<redacted>"\n' in dovecot.stdout
    for result in (preview, written, checked, dovecot):
        assert "s3cret-pw" not in result.stdout + result.stderr
