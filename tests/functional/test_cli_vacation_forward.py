"""`mailwarden vacation ...` and `mailwarden forward ...` on every backend.

Without a ManageSieve server (the default) changes are stored with a notice; against a closed
port they are stored and the command exits 3 with a warning; against a real Dovecot the script
lands on the server.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mailwarden.stack.sieve.managesieve import ManageSieveClient
from tests.functional.cli_helpers import Cli
from tests.support.managesieve_server import (
    USER_PASSWORD,
    ManageSieveServer,
    closed_port,
    running_server,
)

ALICE = "alice@example.org"
BOB = "bob@example.org"
NOTICE = (
    "mailwarden: notice: stored; not applied: no ManageSieve server configured "
    "(MAILWARDEN_MANAGESIEVE_HOST)\n"
)
MASTER_SECRET = "closed-port master secret"


@pytest.fixture
def mailboxes(cli: Cli) -> Cli:
    cli.add_domain("example.org")
    cli.add_domain("example.net")
    cli.add_mailbox(ALICE)
    cli.add_mailbox(BOB)
    return cli


@pytest.fixture(scope="module")
def server() -> Iterator[ManageSieveServer]:
    yield from running_server([ALICE, BOB])


def server_env(server: ManageSieveServer) -> dict[str, str | None]:
    return {
        "MAILWARDEN_MANAGESIEVE_HOST": server.host,
        "MAILWARDEN_MANAGESIEVE_PORT": str(server.port),
        "MAILWARDEN_SIEVE_MASTER_USER": server.master_user,
        "MAILWARDEN_SIEVE_MASTER_PASSWORD": server.master_password,
    }


def unreachable_env() -> dict[str, str | None]:
    return {
        "MAILWARDEN_MANAGESIEVE_HOST": "127.0.0.1",
        "MAILWARDEN_MANAGESIEVE_PORT": str(closed_port()),
        "MAILWARDEN_SIEVE_MASTER_PASSWORD": MASTER_SECRET,
    }


# --- vacation -----------------------------------------------------------------------------------


def test_vacation_set_show_and_disable(mailboxes: Cli, tmp_path: Path) -> None:
    cli = mailboxes
    body = tmp_path / "away.txt"
    body.write_bytes(b"Hello,\r\nI am away until 14 July.\r\n\r\nAlice\r\n")
    result = cli.ok(
        "vacation",
        "set",
        "Alice@Example.org",
        "--subject",
        'Away "until" July',
        "--body-file",
        str(body),
        "--from",
        "2025-07-01",
        "--until",
        "2025-07-14",
        "--interval-days",
        "3",
    )
    assert result.stdout == (
        "Auto-reply of alice@example.org set: from 2025-07-01 until 2025-07-14, "
        "at most one reply per sender every 3 days.\n"
    )
    assert result.stderr == NOTICE

    shown = cli.json("vacation", "show", ALICE)
    assert set(shown) == {
        "address",
        "enabled",
        "subject",
        "body",
        "starts_on",
        "ends_on",
        "interval_days",
        "updated_at",
    }
    assert shown["address"] == ALICE
    assert shown["enabled"] is True
    assert shown["subject"] == 'Away "until" July'
    assert shown["body"] == "Hello,\nI am away until 14 July.\n\nAlice\n"
    assert (shown["starts_on"], shown["ends_on"], shown["interval_days"]) == (
        "2025-07-01",
        "2025-07-14",
        3,
    )

    text = cli.ok("vacation", "show", ALICE).stdout
    assert "enabled  yes" in text
    assert 'subject  Away "until" July' in text
    assert text.endswith("\nHello,\nI am away until 14 July.\n\nAlice\n")

    disabled = cli.ok("vacation", "disable", ALICE)
    assert "~ change vacation alice@example.org" in disabled.stdout
    assert "enabled: True -> False" in disabled.stdout
    assert disabled.stderr == NOTICE
    again = cli.json("vacation", "show", ALICE)
    assert again["enabled"] is False
    assert again["subject"] == shown["subject"]
    assert "nothing to change" in cli.ok("vacation", "disable", ALICE).stdout

    actions = [entry["action"] for entry in cli.audit() if entry["object_type"] == "vacation"]
    assert actions == ["vacation.update", "vacation.create"]


def test_vacation_reads_the_body_from_stdin_and_prints_json(mailboxes: Cli) -> None:
    created = mailboxes.json(
        "vacation",
        "set",
        BOB,
        "--subject",
        "Out of office",
        "--body-file",
        "-",
        input="Back on Monday.\n${name} stays literal.\n",
    )
    assert created["body"] == "Back on Monday.\n${name} stays literal.\n"
    assert (created["starts_on"], created["ends_on"], created["interval_days"]) == (None, None, 7)
    assert created == mailboxes.json("vacation", "show", BOB)


def test_a_mailbox_without_an_auto_reply_shows_as_disabled(mailboxes: Cli) -> None:
    assert mailboxes.json("vacation", "show", ALICE) == {
        "address": ALICE,
        "enabled": False,
        "subject": None,
        "body": None,
        "starts_on": None,
        "ends_on": None,
        "interval_days": None,
        "updated_at": None,
    }
    assert mailboxes.ok("vacation", "show", ALICE).stdout == f"{ALICE} has no auto-reply.\n"


def test_vacation_dry_run_changes_nothing(mailboxes: Cli) -> None:
    before = mailboxes.state()
    planned = mailboxes.json(
        "vacation",
        "set",
        ALICE,
        "--subject",
        "Away",
        "--body-file",
        "-",
        "--dry-run",
        input="Away.\n",
    )
    assert planned["dry_run"] is True
    [change] = planned["plan"]
    assert (change["change"], change["object_type"], change["key"]) == ("create", "vacation", ALICE)
    assert change["changes"]["subject"] == "Away"
    assert change["changes"]["body_chars"] == len("Away.\n")
    text = mailboxes.ok(
        "vacation",
        "set",
        ALICE,
        "--subject",
        "Away",
        "--body-file",
        "-",
        "--dry-run",
        input="Away.\n",
    )
    assert text.stdout.startswith("Dry run: nothing was changed. The plan:\n")
    # A dry run stores nothing, so there is nothing to notice about applying it either.
    assert text.stderr == ""
    assert mailboxes.state() == before


@pytest.mark.parametrize(
    ("options", "stdin", "fragment"),
    [
        (["--from", "2025-7-1"], "Away.", "starts_on: '2025-7-1' is not a date of the form"),
        (["--until", "2025-02-30"], "Away.", "ends_on: '2025-02-30' is not a calendar date"),
        (["--from", "2025-07-02", "--until", "2025-07-01"], "Away.", "[before_start]"),
        (["--interval-days", "0"], "Away.", "interval_days: is 0;"),
        (["--interval-days", "366"], "Away.", "[out_of_range]"),
        (["--subject", "Away\nBcc: x@example.net"], "Away.", "subject: contains U+000A"),
        (["--subject", ""], "Away.", "subject: a subject is required [required]"),
        ([], "", "body: a message text is required [required]"),
        ([], "NUL\x00inside", "[control_character]"),
    ],
)
def test_vacation_refuses_bad_input_naming_the_field(
    mailboxes: Cli, options: list[str], stdin: str, fragment: str
) -> None:
    before = mailboxes.state()
    argv = ["vacation", "set", ALICE, "--body-file", "-"]
    if "--subject" not in options:
        argv += ["--subject", "Away"]
    line = mailboxes.refused(*argv, *options, input=stdin)
    assert fragment in line
    assert mailboxes.state() == before


def test_a_body_that_is_not_utf8_is_refused(mailboxes: Cli, tmp_path: Path) -> None:
    body = tmp_path / "latin1.txt"
    body.write_bytes("Grüße".encode("latin-1"))
    line = mailboxes.refused(
        "vacation", "set", ALICE, "--subject", "Away", "--body-file", str(body)
    )
    assert line == "mailwarden: body: is not UTF-8 text (invalid byte at offset 2) [not_utf8]"


def test_a_missing_body_file_is_a_usage_error(mailboxes: Cli, tmp_path: Path) -> None:
    result = mailboxes.usage_error(
        "vacation", "set", ALICE, "--subject", "Away", "--body-file", str(tmp_path / "none")
    )
    assert "--body-file" in result.stderr


def test_vacation_of_an_unknown_or_foreign_mailbox_is_not_found(mailboxes: Cli) -> None:
    line = mailboxes.refused("vacation", "show", "nobody@example.org")
    assert line == "mailwarden: mailbox not found: nobody@example.org"
    mailboxes.add_admin("carol", "domain-admin", "example.net")
    line = mailboxes.refused(
        "vacation",
        "set",
        ALICE,
        "--subject",
        "x",
        "--body-file",
        "-",
        input="x",
        as_admin="carol",
    )
    assert line == f"mailwarden: mailbox not found: {ALICE}"


def test_apply_without_a_server_is_refused(mailboxes: Cli) -> None:
    line = mailboxes.refused("vacation", "apply", ALICE)
    assert line.startswith("mailwarden: managesieve_host: no ManageSieve server configured")
    assert line.endswith("[not_configured]")


# --- forward ------------------------------------------------------------------------------------


def test_forward_set_show_and_disable(mailboxes: Cli) -> None:
    cli = mailboxes
    result = cli.ok("forward", "set", ALICE, "Alice@Home.example", "alice+list@example.net")
    assert result.stdout == (
        "Mail to alice@example.org is forwarded to alice@home.example, "
        "alice+list@example.net; a copy stays in the mailbox.\n"
    )
    assert result.stderr == NOTICE
    shown = cli.json("forward", "show", ALICE)
    assert set(shown) == {"address", "enabled", "targets", "keep_copy", "updated_at"}
    assert shown["targets"] == ["alice@home.example", "alice+list@example.net"]
    assert (shown["enabled"], shown["keep_copy"]) == (True, True)

    changed = cli.json("forward", "set", ALICE, "desk@example.net", "--no-keep-copy")
    assert (changed["targets"], changed["keep_copy"]) == (["desk@example.net"], False)
    # Without the flag the stored choice stays.
    assert cli.json("forward", "set", ALICE, "desk@example.net")["keep_copy"] is False
    text = cli.ok("forward", "show", ALICE).stdout
    assert "targets  desk@example.net" in text and "keep copy  no" in text

    disabled = cli.ok("forward", "disable", ALICE)
    assert "enabled: True -> False" in disabled.stdout
    assert cli.json("forward", "show", ALICE)["enabled"] is False
    actions = [e["action"] for e in cli.audit() if e["object_type"] == "forward"]
    assert actions == ["forward.update", "forward.update", "forward.create"]


def test_forward_dry_run_changes_nothing(mailboxes: Cli) -> None:
    before = mailboxes.state()
    planned = mailboxes.json("forward", "set", ALICE, "x@example.net", "--dry-run")
    assert planned["plan"][0]["changes"] == {
        "enabled": True,
        "targets": ["x@example.net"],
        "keep_copy": True,
    }
    mailboxes.ok("forward", "disable", ALICE, "--dry-run")
    assert mailboxes.state() == before


@pytest.mark.parametrize(
    ("targets", "fragment"),
    [
        (["x@example.net", "X@Example.net"], "targets[1]: x@example.net is already targets[0]"),
        ([ALICE], "targets[0]: alice@example.org is the mailbox itself"),
        (["|/bin/sh"], "targets[0]: target '|/bin/sh' pipes mail to a command"),
        (["root"], "[unqualified_target]"),
        (["a@b@example.net"], "[at_sign]"),
    ],
)
def test_forward_refuses_bad_targets_naming_the_field(
    mailboxes: Cli, targets: list[str], fragment: str
) -> None:
    before = mailboxes.state()
    line = mailboxes.refused("forward", "set", ALICE, *targets)
    assert fragment in line
    assert mailboxes.state() == before


def test_forward_without_targets_is_a_usage_error(mailboxes: Cli) -> None:
    mailboxes.usage_error("forward", "set", ALICE)


# --- follow-up failures and a real server -------------------------------------------------------


def test_an_unreachable_server_stores_the_change_and_exits_3(mailboxes: Cli) -> None:
    env = unreachable_env()
    result = mailboxes.run(
        "vacation",
        "set",
        ALICE,
        "--subject",
        "Away",
        "--body-file",
        "-",
        input="Away.\n",
        env=env,
    )
    assert result.exit_code == 3
    assert result.stdout.startswith("Auto-reply of alice@example.org set:")
    [warning] = result.stderr.splitlines()
    assert warning == (
        f"mailwarden: warning: stored, but the Sieve script of {ALICE} was not applied: "
        f"ManageSieve: cannot connect to 127.0.0.1:{env['MAILWARDEN_MANAGESIEVE_PORT']}: "
        "connection refused"
    )
    assert mailboxes.json("vacation", "show", ALICE)["enabled"] is True

    for argv in (
        ("forward", "set", ALICE, "x@example.net"),
        ("forward", "disable", ALICE),
        ("vacation", "disable", ALICE),
        ("vacation", "apply", ALICE),
    ):
        result = mailboxes.run(*argv, env=env)
        assert result.exit_code == 3, argv
        assert "warning: stored, but the Sieve script" in result.stderr
        assert MASTER_SECRET not in result.stdout + result.stderr
    assert mailboxes.json("forward", "show", ALICE)["enabled"] is False


@pytest.fixture
def own_script(server: ManageSieveServer) -> Iterator[Callable[[], list[tuple[str, bool]]]]:
    """Alice's own script, active; yields a look at her scripts, as she sees them."""

    def session() -> ManageSieveClient:
        client = ManageSieveClient(server.host, server.port)
        client.connect()
        client.authenticate_plain(ALICE, USER_PASSWORD)
        return client

    def scripts() -> list[tuple[str, bool]]:
        with session() as client:
            listed = sorted(client.list_scripts())
            client.logout()
        return listed

    with session() as client:
        client.put_script("own", 'require "fileinto";\r\nfileinto "Filed";\r\n')
        client.set_active("own")
        client.logout()
    yield scripts
    with session() as client:
        client.set_active("")
        client.delete_script("own")
        client.logout()


def test_changes_reach_a_real_managesieve_server(
    mailboxes: Cli, server: ManageSieveServer, own_script: Callable[[], list[tuple[str, bool]]]
) -> None:
    env = server_env(server)
    result = mailboxes.run(
        "vacation",
        "set",
        ALICE,
        "--subject",
        'Away "now"',
        "--body-file",
        "-",
        "--until",
        "2099-12-31",
        input="Gone.\n",
        env=env,
    )
    assert (result.exit_code, result.stderr) == (0, "")
    script = server.stored_script(ALICE)
    assert script is not None
    assert 'vacation :days 7 :subject "Away \\"now\\"" "Gone.\r\n";' in script
    assert 'currentdate :value "le" "date" "2099-12-31"' in script

    result = mailboxes.run("forward", "set", ALICE, "desk@example.net", "--no-keep-copy", env=env)
    assert (result.exit_code, result.stderr) == (0, "")
    script = server.stored_script(ALICE)
    assert script is not None
    assert 'redirect "desk@example.net";' in script and "vacation :days 7" in script

    applied = mailboxes.json("vacation", "apply", ALICE, env=env)
    assert applied["applied"] is True
    assert (applied["vacation_enabled"], applied["forward_enabled"]) == (True, True)
    assert applied["script"] == server.stored_script(ALICE)
    text = mailboxes.ok("vacation", "apply", ALICE, env=env).stdout
    assert text == (
        f"Sieve script 'mailwarden' of {ALICE} uploaded (vacation on, forwarding on).\n"
    )
    # Never activated: Alice's own script stays the active one.
    assert own_script() == [("mailwarden", False), ("own", True)]

    assert mailboxes.run("vacation", "disable", ALICE, env=env).exit_code == 0
    assert mailboxes.run("forward", "disable", ALICE, env=env).exit_code == 0
    assert server.stored_script(ALICE) is None
    assert own_script() == [("own", True)]
    text = mailboxes.ok("vacation", "apply", ALICE, env=env).stdout
    assert text == (
        f"Neither vacation nor forwarding is enabled for {ALICE}: "
        "Sieve script 'mailwarden' removed.\n"
    )
    assert server.master_password not in text


def test_a_wrong_master_password_exits_3_without_showing_it(
    mailboxes: Cli, server: ManageSieveServer
) -> None:
    env = server_env(server) | {"MAILWARDEN_SIEVE_MASTER_PASSWORD": MASTER_SECRET}
    result = mailboxes.run("forward", "set", BOB, "desk@example.net", env=env)
    assert result.exit_code == 3
    assert "refused the login of master user 'mailwarden-sieve' for bob@example.org" in (
        result.stderr
    )
    assert MASTER_SECRET not in result.stdout + result.stderr
    assert server.stored_script(BOB) is None


# --- help ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ("vacation", "set"),
        ("vacation", "show"),
        ("vacation", "disable"),
        ("vacation", "apply"),
        ("forward", "set"),
        ("forward", "show"),
        ("forward", "disable"),
    ],
)
def test_every_command_has_examples(cli: Cli, command: tuple[str, str]) -> None:
    text = cli.ok(*command, "--help").stdout
    assert "Examples:" in text
    assert f"mailwarden {command[0]} {command[1]}" in text


def test_the_group_help_documents_store_only_mode_and_exit_codes(cli: Cli) -> None:
    for group in ("vacation", "forward"):
        text = " ".join(cli.ok(group, "--help").stdout.split())
        assert "MAILWARDEN_MANAGESIEVE_HOST" in text
        assert "3 stored, but the upload failed" in text
        # The user's own filters are left alone, and the help says how.
        assert "It is never made the active script" in text
        assert "so the user's own filters keep working" in text
