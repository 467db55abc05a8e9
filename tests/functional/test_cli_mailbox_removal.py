"""`mailbox remove|restore|list --removed|show` and `maintenance purge` on every backend."""

from __future__ import annotations

import stat
import tarfile
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from mailwarden.cli import output
from tests.functional.cli_helpers import Cli

MIB = 1024**2
GIB = 1024**3


@pytest.fixture
def mail_root(tmp_path: Path) -> Path:
    root = tmp_path / "vmail"
    root.mkdir()
    return root


def stack_env(mail_root: Path, **extra: str) -> dict[str, str | None]:
    """The purge's settings, as an operator's cron job would set them."""
    return {"MAILWARDEN_MAIL_ROOT": str(mail_root), **extra}


def due_now(mail_root: Path, **extra: str) -> dict[str, str | None]:
    """A grace period of zero: whatever was removed is due for the purge at once."""
    return stack_env(mail_root, MAILWARDEN_DELETION_GRACE_HOURS="0", **extra)


def deliver(mail_root: Path, maildir: str) -> Path:
    home = mail_root / maildir
    (home / "Maildir" / "cur").mkdir(parents=True)
    (home / "Maildir" / "cur" / "1.host:2,S").write_text("Subject: hi\n\nhello\n")
    return home


def sql(engine: Engine, statement: str, **values: object) -> None:
    with engine.begin() as connection:
        connection.execute(text(statement), values)


def _world(cli: Cli) -> None:
    cli.add_domain("example.org", "--quota", "10G", "--mailbox-quota", "2G", "--max-mailboxes", "3")
    cli.add_domain("other.example")
    cli.add_mailbox("alice@example.org")
    cli.add_mailbox("bob@example.org")
    cli.add_mailbox("eve@other.example")
    cli.add_admin("carol", "domain-admin", "example.org")


def test_remove_stops_the_mailbox_and_says_until_when_it_can_be_restored(cli: Cli) -> None:
    _world(cli)
    result = cli.ok("mailbox", "remove", "alice@example.org")
    assert "remove mailbox alice@example.org" in result.stdout
    assert "delivery and login stopped" in result.stdout
    assert "mailbox restore alice@example.org" in result.stdout
    assert "maintenance purge" in result.stdout

    shown = cli.json("mailbox", "show", "alice@example.org")
    removed_at = datetime.fromisoformat(shown["removed_at"])
    purge_after = datetime.fromisoformat(shown["purge_after"])
    assert purge_after - removed_at == timedelta(hours=48)
    assert purge_after.strftime("%Y-%m-%d %H:%M UTC") in result.stdout

    text_view = cli.ok("mailbox", "show", "alice@example.org").stdout
    assert "removed" in text_view and "purge after" in text_view

    listed = cli.json("mailbox", "list", "--domain", "example.org")
    assert [m["address"] for m in listed] == ["bob@example.org"]
    removed = cli.json("mailbox", "list", "--removed")
    assert [m["address"] for m in removed] == ["alice@example.org"]
    assert removed[0]["purge_after"] == shown["purge_after"]
    table = cli.ok("mailbox", "list", "--removed").stdout
    assert "alice@example.org" in table and "PURGE AFTER" in table
    assert (
        "No removed mailboxes."
        in cli.ok("mailbox", "list", "--removed", "--domain", "other.example").stdout
    )

    entries = cli.audit()
    assert (entries[0]["action"], entries[0]["object_key"]) == (
        "mailbox.remove",
        "alice@example.org",
    )
    assert datetime.fromisoformat(entries[0]["before"]["purge_after"]) == purge_after

    line = cli.refused("mailbox", "remove", "alice@example.org")
    assert line.endswith("[already_removed]"), line
    line = cli.refused("mailbox", "edit", "alice@example.org", "--name", "x")
    assert line.endswith("[removed]") and "mailbox restore" in line, line


def test_remove_as_json_returns_the_mailbox_with_its_purge_time(cli: Cli) -> None:
    _world(cli)
    removed = cli.json("mailbox", "remove", "alice@example.org")
    assert removed["address"] == "alice@example.org"
    assert removed["removed_at"] is not None and removed["purge_after"] is not None


def test_the_address_stays_taken_until_the_purge(cli: Cli) -> None:
    _world(cli)
    cli.ok("mailbox", "remove", "alice@example.org")
    state = cli.state()
    line = cli.refused("mailbox", "add", "alice@example.org", "--random-password")
    assert line.startswith("mailwarden: address: ") and line.endswith("[pending_purge]"), line
    assert "mailbox restore alice@example.org" in line and "maintenance purge" in line
    assert cli.state() == state


def test_restore_brings_a_removed_mailbox_back(cli: Cli) -> None:
    _world(cli)
    cli.ok("mailbox", "remove", "alice@example.org")
    state = cli.state()

    plan = cli.ok("mailbox", "restore", "alice@example.org", "--dry-run").stdout
    assert "Dry run" in plan and "alice@example.org" in plan
    assert cli.state() == state

    result = cli.ok("mailbox", "restore", "alice@example.org")
    assert "Restored mailbox alice@example.org" in result.stdout
    shown = cli.json("mailbox", "show", "alice@example.org")
    assert (shown["removed_at"], shown["purge_after"]) == (None, None)
    assert "alice@example.org" in [m["address"] for m in cli.json("mailbox", "list")]
    assert cli.audit()[0]["action"] == "mailbox.restore"

    line = cli.refused("mailbox", "restore", "alice@example.org")
    assert line.endswith("[not_removed]"), line


def test_restore_is_refused_when_the_domain_is_full_or_the_grace_period_is_over(
    cli: Cli, mail_root: Path
) -> None:
    _world(cli)  # example.org allows three mailboxes
    cli.ok("mailbox", "remove", "alice@example.org")
    cli.add_mailbox("carl@example.org")
    cli.add_mailbox("dan@example.org")
    state = cli.state()
    line = cli.refused("mailbox", "restore", "alice@example.org")
    assert line.endswith("[max_mailboxes]"), line
    line = cli.refused("mailbox", "restore", "alice@example.org", env=due_now(mail_root))
    assert line.endswith("[grace_expired]") and "maintenance purge" in line, line
    assert cli.state() == state


def test_a_domain_admin_removes_and_restores_in_its_domain_only_and_never_purges(
    cli: Cli, mail_root: Path
) -> None:
    _world(cli)
    cli.ok("mailbox", "remove", "bob@example.org", as_admin="carol")
    cli.ok("mailbox", "restore", "bob@example.org", as_admin="carol")
    cli.ok("mailbox", "remove", "eve@other.example")
    state = cli.state()
    expected = "mailwarden: mailbox not found: eve@other.example"
    assert cli.refused("mailbox", "restore", "eve@other.example", as_admin="carol") == expected
    assert cli.refused("mailbox", "remove", "eve@other.example", as_admin="carol") == expected
    line = cli.refused("maintenance", "purge", as_admin="carol", env=due_now(mail_root))
    assert line.startswith("mailwarden: not permitted: system:maintenance:purge"), line
    assert cli.state() == state


def test_purge_deletes_what_is_due_and_reports_it(cli: Cli, mail_root: Path) -> None:
    _world(cli)
    home = deliver(mail_root, "example.org/alice/")
    neighbour = deliver(mail_root, "example.org/bob/")
    cli.ok("mailbox", "remove", "alice@example.org")

    # Within the grace period nothing is due.
    result = cli.ok("maintenance", "purge", env=stack_env(mail_root))
    assert "Nothing to purge" in result.stdout and home.is_dir()

    state = cli.state()
    dry = cli.ok("maintenance", "purge", "--dry-run", env=due_now(mail_root))
    assert "Dry run" in dry.stdout and "alice@example.org" in dry.stdout
    assert "would delete the maildir" in dry.stdout
    dry_json = cli.json("maintenance", "purge", "--dry-run", env=due_now(mail_root))
    assert (dry_json["dry_run"], dry_json["purged"]) == (True, 1)
    assert dry_json["mailboxes"][0]["outcome"] == "would_delete"
    assert cli.state() == state and home.is_dir()

    report = cli.json("maintenance", "purge", env=due_now(mail_root))
    assert (report["purged"], report["deleted"], report["archived"], report["failed"]) == (
        1,
        1,
        0,
        0,
    )
    assert report["mailboxes"][0]["address"] == "alice@example.org"
    assert report["mailboxes"][0]["path"] == str(home)
    assert not home.exists() and neighbour.is_dir()
    assert cli.refused("mailbox", "show", "alice@example.org") == (
        "mailwarden: mailbox not found: alice@example.org"
    )
    assert cli.audit()[0]["action"] == "mailbox.purge"
    # The address is free again.
    cli.add_mailbox("alice@example.org")


def test_purge_prints_a_line_per_mailbox_and_a_summary(cli: Cli, mail_root: Path) -> None:
    _world(cli)
    deliver(mail_root, "example.org/alice/")
    cli.ok("mailbox", "remove", "alice@example.org")
    cli.ok("mailbox", "remove", "bob@example.org")
    result = cli.ok("maintenance", "purge", env=due_now(mail_root))
    lines = result.stdout.splitlines()
    assert any("alice@example.org" in line and "maildir deleted" in line for line in lines)
    assert any("bob@example.org" in line and "no maildir on disk" in line for line in lines)
    assert lines[-1].startswith("Purged 2 mailboxes"), result.stdout
    assert "1 deleted" in lines[-1] and "1 not on disk" in lines[-1] and "0 failed" in lines[-1]


def test_purge_archives_when_configured(cli: Cli, mail_root: Path, tmp_path: Path) -> None:
    _world(cli)
    home = deliver(mail_root, "example.org/alice/")
    cli.ok("mailbox", "remove", "alice@example.org")
    archive_dir = tmp_path / "archive"
    env = due_now(
        mail_root,
        MAILWARDEN_REMOVED_MAIL_ACTION="archive",
        MAILWARDEN_ARCHIVE_DIR=str(archive_dir),
    )
    report = cli.json("maintenance", "purge", env=env)
    assert (report["purged"], report["archived"], report["action"]) == (1, 1, "archive")
    archive = Path(report["mailboxes"][0]["archive"])
    assert archive.parent == archive_dir and stat.S_IMODE(archive.stat().st_mode) == 0o600
    with tarfile.open(archive) as tar:
        assert "example.org/alice/Maildir/cur/1.host:2,S" in tar.getnames()
    assert not home.exists()


def test_a_maildir_outside_the_mail_root_is_left_alone_and_exits_3(
    cli: Cli, engine: Engine, mail_root: Path, tmp_path: Path
) -> None:
    _world(cli)
    outside = tmp_path / "etc"
    outside.mkdir()
    (outside / "passwd").write_text("root:x:0:0\n")
    cli.ok("mailbox", "remove", "alice@example.org")
    sql(engine, "UPDATE mailboxes SET maildir = :m WHERE address = 'alice@example.org'", m="../etc")

    result = cli.run("maintenance", "purge", env=due_now(mail_root))

    assert result.exit_code == 3, result.stdout + result.stderr
    assert "maildir left in place, mailbox kept for the next purge" in result.stdout
    warning = result.stderr.strip().splitlines()
    assert len(warning) == 1, warning
    assert warning[0].startswith("mailwarden: warning: kept mailbox alice@example.org for the ")
    assert "'../etc'" in warning[0]
    assert (outside / "passwd").read_text() == "root:x:0:0\n"
    assert "1 failed" in result.stdout and "1 mailbox kept for the next purge" in result.stdout
    # Still listed, still holding its address, and tried again by the next run.
    assert [m["address"] for m in cli.json("mailbox", "list", "--removed")] == ["alice@example.org"]
    again = cli.run("maintenance", "purge", env=due_now(mail_root))
    assert again.exit_code == 3 and "alice@example.org (retry)" in again.stdout


def test_purge_refuses_on_a_host_without_the_mail_root(cli: Cli, tmp_path: Path) -> None:
    _world(cli)
    cli.ok("mailbox", "remove", "alice@example.org")
    state = cli.state()
    # The dry run makes the same check: it must not promise what the real run refuses.
    for dry_run in (["--dry-run"], []):
        line = cli.refused("maintenance", "purge", *dry_run, env=due_now(tmp_path / "missing"))
        assert line.startswith("mailwarden: mail_root: ") and line.endswith("[unusable]"), line
    assert cli.state() == state


def test_purge_help_explains_scheduling_grace_and_archives(cli: Cli) -> None:
    text_help = cli.ok("maintenance", "purge", "--help").stdout
    for phrase in (
        "cron",
        "systemd",
        "maintenance purge",
        "MAILWARDEN_DELETION_GRACE_HOURS",
        "MAILWARDEN_REMOVED_MAIL_ACTION",
        "MAILWARDEN_ARCHIVE_DIR",
        "--dry-run",
        "domain remove --cascade",
        "never overwritten",
    ):
        assert phrase in text_help, phrase
    # Exit status as it is: nothing promised about "nothing purged" once a run is under way.
    status = " ".join(text_help.split()).split("Exit status:")[1]
    assert "0 done" in status and "1 refused or stopped" in status
    assert "3 finished, but some maildirs could not be handled" in status
    assert "next run tries it again" in status
    assert "nothing purged" not in status


def test_show_and_list_report_usage_as_dovecot_counts_it(cli: Cli, engine: Engine) -> None:
    _world(cli)
    sql(
        engine,
        "INSERT INTO quota_usage (username, bytes, messages) VALUES (:u, :b, :m)",
        u="alice@example.org",
        b=int(1.2 * MIB),
        m=42,
    )
    shown = cli.json("mailbox", "show", "alice@example.org")
    assert (shown["quota_used_bytes"], shown["quota_used_messages"]) == (int(1.2 * MIB), 42)
    text_view = cli.ok("mailbox", "show", "alice@example.org").stdout
    assert "1.2 MiB of 2 GiB (0.1%), 42 messages" in text_view
    assert "█" in text_view or "░" in text_view  # the bar under the usage line

    bob = cli.json("mailbox", "show", "bob@example.org")
    assert (bob["quota_used_bytes"], bob["quota_used_messages"]) == (None, None)
    assert "not reported by Dovecot yet" in cli.ok("mailbox", "show", "bob@example.org").stdout

    listed = {m["address"]: m["quota_used_bytes"] for m in cli.json("mailbox", "list")}
    assert listed == {
        "alice@example.org": int(1.2 * MIB),
        "bob@example.org": None,
        "eve@other.example": None,
    }
    table = cli.ok("mailbox", "list", "--domain", "example.org").stdout
    alice_row = next(line for line in table.splitlines() if "alice@example.org" in line)
    assert "1.2 MiB (0.1%)" in alice_row and "USED" in table


def test_the_usage_column_fits_a_narrow_terminal(
    cli: Cli, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    _world(cli)
    sql(
        engine,
        "INSERT INTO quota_usage (username, bytes, messages) VALUES (:u, :b, :m)",
        u="alice@example.org",
        b=GIB,
        m=1,
    )
    monkeypatch.setattr(output.console, "width", 80)
    table = cli.ok("mailbox", "list").stdout
    assert all(len(line) <= 80 for line in table.splitlines()), table
    alice_row = next(line for line in table.splitlines() if "alice@example.org" in line)
    assert "1 GiB (50.0%)" in alice_row


def test_domain_remove_cascade_says_what_stops_now_and_what_the_purge_does_later(
    cli: Cli, mail_root: Path
) -> None:
    _world(cli)
    cli.ok("alias", "add", "info@example.org", "alice@example.org")
    homes = [deliver(mail_root, f"example.org/{local}/") for local in ("alice", "bob")]
    state = cli.state()

    dry = " ".join(
        cli.ok("domain", "remove", "example.org", "--cascade", "--dry-run").stdout.split()
    )
    assert "Dry run" in dry and "would be deactivated at once" in dry
    assert "2 mailboxes removed" in dry
    assert cli.state() == state

    done = " ".join(cli.ok("domain", "remove", "example.org", "--cascade").stdout.split())
    assert "Domain example.org is inactive now: Postfix no longer accepts its mail." in done
    assert "Deleted 1 alias and 0 alias domains; removed 2 mailboxes" in done
    purge_after = cli.json("mailbox", "show", "alice@example.org")["purge_after"]
    moment = datetime.fromisoformat(purge_after).strftime("%Y-%m-%d %H:%M")
    assert f"After {moment} UTC, `mailwarden maintenance purge` deletes the mailboxes" in done
    assert "cannot be restored" in done
    assert cli.json("domain", "show", "example.org")["active"] is False
    line = cli.refused("mailbox", "restore", "alice@example.org")
    assert line.endswith("[domain_removed]"), line
    line = cli.refused("domain", "remove", "example.org", "--cascade")
    assert line.endswith("[already_removed]"), line
    assert all(home.is_dir() for home in homes)

    report = cli.json("maintenance", "purge", env=due_now(mail_root))
    assert (report["purged"], report["domains"]) == (2, ["example.org"])
    assert not any(home.exists() for home in homes)
    assert cli.refused("domain", "show", "example.org").endswith("not found: example.org")
    assert [d["name"] for d in cli.json("domain", "list")] == ["other.example"]


def test_domain_remove_of_an_empty_domain_is_immediate_and_json_says_so(cli: Cli) -> None:
    cli.add_domain("empty.example")
    result = cli.json("domain", "remove", "empty.example")
    assert result["removal"]["deleted"] is True
    assert [(c["change"], c["key"]) for c in result["plan"]] == [("delete", "empty.example")]
    text_out = cli.ok("domain", "remove", "--help").stdout
    for phrase in ("deleted at once", "grace period", "maintenance purge", "cannot be restored"):
        assert phrase in " ".join(text_out.split()), phrase
