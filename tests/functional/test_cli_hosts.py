"""`mailwarden host ...` and `mailwarden apply-config` through the real CLI, on every backend.

SSH hosts are added against the real OpenSSH server on loopback; known_hosts goes to a data
directory of the test's own. Applying configuration to real daemons is proven in
tests/e2e/test_apply_config.py; here, what the CLI refuses before reaching any host.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.functional.cli_helpers import Cli
from tests.support.sshd import SshServer


@pytest.fixture
def data_env(tmp_path: Path) -> dict[str, str | None]:
    return {"MAILWARDEN_DATA_DIR": str(tmp_path / "data")}


def test_add_list_show_update_remove_a_local_host(cli: Cli) -> None:
    added = cli.json("host", "add", "mx1", "--local", "--log", "/var/log/mail.log", "--json")
    cli.ok("host", "add", "mx2", "--local", "--mail-root", "/srv/vmail")

    listed = cli.json("host", "list", "--json")
    table = cli.ok("host", "list").stdout
    shown = cli.json("host", "show", "mx2", "--json")
    updated = cli.json("host", "update", "mx2", "--postfix-dir", "/etc/postfix-out", "--json")
    cli.ok("host", "remove", "mx1")
    after = cli.json("host", "list", "--json")

    assert added["name"] == "mx1" and added["transport"] == "local"
    assert [host["name"] for host in listed] == ["mx1", "mx2"]
    assert "mx1" in table and "local" in table
    assert shown["mail_root"] == "/srv/vmail"
    assert updated["postfix_config_dir"] == "/etc/postfix-out"
    assert [host["name"] for host in after] == ["mx2"]
    actions = [(entry["action"], entry["object_key"]) for entry in cli.audit()]
    assert ("host.create", "mx1") in actions
    assert ("host.update", "mx2") in actions
    assert ("host.delete", "mx1") in actions


def test_dry_runs_change_nothing(cli: Cli) -> None:
    cli.ok("host", "add", "mx1", "--local")
    before = cli.state()

    plan = cli.json("host", "add", "mx2", "--local", "--dry-run", "--json")
    cli.ok("host", "update", "mx1", "--mail-root", "/srv", "--dry-run")
    cli.ok("host", "remove", "mx1", "--dry-run")

    assert plan["dry_run"] is True
    assert cli.state() == before


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["host", "add", "Mx1", "--local"], "name"),
        (["host", "add", "mx1;id", "--local"], "name"),
        (["host", "add", "mx1", "--local", "--postfix-dir", "etc/postfix"], "postfix_config_dir"),
        (["host", "add", "mx1", "--local", "--log", "/var/log/a\x1bb"], "log_paths"),
        (["host", "add", "mx1", "--local", "--smtp-port", "0"], "smtp_port"),
        (["host", "add", "mx1", "--local", "--imap-port", "70000"], "imap_port"),
        (["host", "add", "mx1", "--ssh", "root@;rm", "--key", "/nonexistent"], "ssh_target"),
        (["host", "add", "mx1", "--ssh", "-oProxyCommand=x@h", "--key", "/k"], "ssh_target"),
    ],
)
def test_bad_values_exit_1_naming_the_field(cli: Cli, args: list[str], field: str) -> None:
    line = cli.refused(*args)

    assert line.startswith(f"mailwarden: {field}: "), line
    assert cli.json("host", "list", "--json") == []


def test_exactly_one_way_to_reach_a_host(cli: Cli) -> None:
    assert "exactly one of --local and --ssh" in cli.refused("host", "add", "mx1")
    assert "--key" in cli.refused("host", "add", "mx1", "--local", "--key", "/k")


def test_unknown_hosts_and_duplicates_are_refused(cli: Cli) -> None:
    cli.ok("host", "add", "mx1", "--local")

    assert "mx1" in cli.refused("host", "add", "mx1", "--local")
    assert "not found" in cli.refused("host", "show", "mx9")
    assert "not found" in cli.refused("host", "remove", "mx9")
    assert "not found" in cli.refused("host", "check", "mx9")


def test_domain_admins_are_refused(cli: Cli) -> None:
    cli.add_domain("a.example")
    cli.add_admin("carol", "domain-admin", "a.example")
    cli.ok("host", "add", "mx1", "--local")

    for args in (
        ["host", "list"],
        ["host", "show", "mx1"],
        ["host", "add", "mx2", "--local"],
        ["host", "remove", "mx1"],
        ["host", "check", "mx1"],
        ["apply-config", "--host", "mx1", "--dry-run"],
    ):
        assert "not permitted" in cli.refused(*args, as_admin="carol"), args


def test_check_exits_1_when_an_item_fails(cli: Cli) -> None:
    cli.ok("host", "add", "mx1", "--local", "--log", "/nonexistent/mail.log")

    result = cli.run("host", "check", "mx1", "--json")

    assert result.exit_code == 1
    assert '"check": "log /nonexistent/mail.log"' in result.stdout.replace('":"', '": "')
    text = cli.run("host", "check", "mx1").stdout
    assert "FAIL log /nonexistent/mail.log: missing" in text


def test_an_ssh_host_shows_the_recorded_fingerprint(
    cli: Cli, ssh_server: SshServer, data_env: dict[str, str | None]
) -> None:
    target = f"{ssh_server.user}@{ssh_server.host}:{ssh_server.port}"

    added = cli.ok(
        "host", "add", "mx2", "--ssh", target, "--key", str(ssh_server.client_key), env=data_env
    )
    shown = cli.json("host", "show", "mx2", "--json", env=data_env)
    # Reached (the connection item), though this machine has no /etc/postfix/main.cf: exit 1.
    check = cli.run("host", "check", "mx2", "--json", env=data_env)
    refused = cli.refused(
        "host",
        "add",
        "mx3",
        "--ssh",
        target,
        "--key",
        str(ssh_server.client_key),
        "--host-key-fingerprint",
        "SHA256:" + "B" * 43,
        env=data_env,
    )

    assert ssh_server.host_key_fingerprint in added.stdout
    assert shown["host_key_fingerprint"] == ssh_server.host_key_fingerprint
    assert check.exit_code == 1
    assert '"check": "connection",\n      "ok": true' in check.stdout
    assert refused.startswith("mailwarden: host_key_fingerprint: ")
    assert ssh_server.host_key_fingerprint in refused
    known_hosts = Path(str(data_env["MAILWARDEN_DATA_DIR"])) / "known_hosts"
    assert ssh_server.host_key_name in known_hosts.read_text()


def test_apply_config_needs_a_registered_host(cli: Cli) -> None:
    assert "no host is registered" in cli.refused("apply-config", "--dry-run")
    assert "not found" in cli.refused("apply-config", "--host", "mx9")
    assert "Invalid" not in cli.refused("apply-config", "--host", "Bad Name")


def test_apply_config_help_is_a_man_page(cli: Cli) -> None:
    result = cli.run("apply-config", "--help")

    assert result.exit_code == 0
    for fragment in ("--host", "--dry-run", "--json", "Examples:", "apply-config --host mx1"):
        assert fragment in result.stdout
