"""`mailwarden logs ingest` and `logs summary --host`: a host's log read through its runner."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from tests.functional.cli_helpers import Cli

# Postfix lines as rsyslog writes them, in the current month so no year is in doubt.
LINES = (
    "{stamp} mx1 postfix/smtpd[11]: 4A1B2C3D4E: client=mail.example.net[192.0.2.7]\n"
    "{stamp} mx1 postfix/cleanup[12]: 4A1B2C3D4E: message-id=<1@example.net>\n"
    "{stamp} mx1 postfix/qmgr[13]: 4A1B2C3D4E: from=<ann@example.net>, size=1234, nrcpt=1 "
    "(queue active)\n"
    "{stamp} mx1 postfix/lmtp[14]: 4A1B2C3D4E: to=<bob@example.org>, "
    "relay=mx[private/dovecot-lmtp], delay=0.1, delays=0/0/0/0.1, dsn=2.0.0, "
    "status=sent (250 2.0.0 Saved)\n"
    "{stamp} mx1 postfix/qmgr[13]: 4A1B2C3D4E: removed\n"
    "{stamp} mx1 postfix/smtpd[11]: NOQUEUE: reject: RCPT from unknown[198.51.100.9]: 550 5.1.1 "
    "<nobody@example.org>: Recipient address rejected: User unknown in virtual mailbox table; "
    "from=<spam@example.com> to=<nobody@example.org> proto=ESMTP helo=<x>\n"
)


def write_log(path: Path) -> None:
    moment = datetime.now() - timedelta(hours=1)
    stamp = f"{moment:%b} {moment.day:>2} {moment:%H:%M:%S}"
    path.write_text(LINES.format(stamp=stamp))


def test_ingest_stores_a_hosts_traffic_once_and_reports_it(cli: Cli, tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    write_log(log)
    cli.ok("host", "add", "mx1", "--local", "--log", str(log))

    planned = cli.json("logs", "ingest", "--dry-run")
    done = cli.ok("logs", "ingest", "--host", "mx1")
    again = cli.json("logs", "ingest", "--host", "mx1", "--retention-days", "30")

    assert planned[0]["dry_run"] is True and planned[0]["lines"] == 6
    assert "mx1: read 6 lines from 1 file(s); stored 1 hour(s)." in done.stdout
    assert (again[0]["lines"], again[0]["hours_touched"]) == (0, 0)
    ingests = [e for e in cli.audit() if e["action"] == "logs.ingest"]
    assert [e["after"]["lines"] for e in ingests] == [0, 6]


def test_ingest_refuses_an_unknown_host_and_a_bad_retention(cli: Cli) -> None:
    assert "host" in cli.refused("logs", "ingest", "--host", "nowhere")
    cli.usage_error("logs", "ingest", "--retention-days", "0")


def test_summary_reads_a_registered_hosts_logs(cli: Cli, tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    write_log(log)
    cli.ok("host", "add", "mx1", "--local", "--log", str(log))

    summary = cli.json("logs", "summary", "--host", "mx1")

    assert summary["totals"]["received"] == 1
    assert summary["totals"]["delivered"] == 1
    assert summary["totals"]["rejected"] == 1
