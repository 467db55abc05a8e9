"""`logs ingest` of the devstack's real Postfix log, reached locally and over SSH."""

from __future__ import annotations

import smtplib
from datetime import datetime, timedelta

import pytest

from mailwarden.logs import service
from mailwarden.logs.schemas import IngestReport

from .conftest import PASSWORD, StackHost
from .mail import unique_subject

SENDER = "someone@outside.example"
COUNTERS = ("received", "delivered", "rejected", "bounced", "deferrals")


def stored(stack_host: StackHost) -> dict[str, int]:
    """The host's stored counters over the last two days."""
    series = stack_host.run(
        lambda uow, actor: service.traffic(
            uow, actor, stack_host.name, since=datetime.now() - timedelta(days=2), bucket="day"
        )
    )
    return {name: sum(getattr(p, name) for p in series.points) for name in COUNTERS}


def ingest(stack_host: StackHost) -> IngestReport:
    return stack_host.run(lambda uow, actor: service.ingest(uow, actor, stack_host.name))


def test_ingest_counts_what_postfix_logged_since_the_last_run(stack_host: StackHost) -> None:
    stack = stack_host.stack
    first = ingest(stack_host)  # whatever earlier tests left in the log
    assert first.host == stack_host.name
    before = stored(stack_host)
    domain = stack.new_domain("traffic")
    addresses = [f"{local}@{domain}" for local in ("ann", "ben", "cem")]
    for address in addresses:
        stack.add_mailbox(address)
        subject = unique_subject("traffic")
        stack.mail.send(SENDER, [address], subject)
        stack.mail.wait_for_message(address, PASSWORD, subject)
        stack.mail.wait_for_log(f"to=<{address}>", "status=sent")
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        stack.mail.send(SENDER, [f"nobody@{domain}"], unique_subject("refused"))
    stack.mail.wait_for_log("reject:", f"nobody@{domain}")

    second = ingest(stack_host)
    after = stored(stack_host)

    assert second.lines > 0
    assert {name: after[name] - before[name] for name in COUNTERS} == {
        "received": 3,
        "delivered": 3,
        "rejected": 1,
        "bounced": 0,
        "deferrals": 0,
    }
    # Again: only what the daemons logged since (a Dovecot logout, an anvil statistic) is
    # read, and nothing is counted twice.
    ingest(stack_host)
    assert stored(stack_host) == after
    top = stack_host.run(
        lambda uow, actor: service.top(
            uow,
            actor,
            stack_host.name,
            kind="recipient_domain",
            since=datetime.now() - timedelta(days=1),
            limit=100,
        )
    )
    assert {"entry": domain, "count": 3} in [entry.model_dump() for entry in top.entries]


def test_summarize_host_reads_the_logs_of_the_host(stack_host: StackHost) -> None:
    stack = stack_host.stack
    address = f"dana@{stack.new_domain('summary')}"
    stack.add_mailbox(address)
    subject = unique_subject("summary")
    stack.mail.send(SENDER, [address], subject)
    stack.mail.wait_for_message(address, PASSWORD, subject)
    stack.mail.wait_for_log(f"to=<{address}>", "status=sent")

    summary = stack_host.run(lambda uow, actor: service.summarize_host(uow, actor, stack_host.name))

    assert summary.recipients[address] == 1
    assert summary.totals.delivered >= 1
    assert all(source.startswith(f"{stack_host.name}:") for source in summary.sources)
