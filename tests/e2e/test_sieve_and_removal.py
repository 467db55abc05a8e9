"""Vacation, forwarding and deferred deletion, as the real daemons carry them out.

Vacation and forwarding go from the services through ManageSieve into Pigeonhole, which runs
the script at LMTP delivery; removal and restore change what Postfix and Dovecot accept at once;
purge removes the maildir Dovecot wrote.
"""

from __future__ import annotations

import smtplib
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mailwarden.db.engine import session_factory
from mailwarden.forwarding import service as forwarding
from mailwarden.forwarding.schemas import ForwardSet
from mailwarden.kernel.actor import Actor, Channel
from mailwarden.kernel.unit_of_work import UnitOfWork
from mailwarden.mailboxes import service as mailboxes
from mailwarden.maintenance import service as maintenance
from mailwarden.vacation import service as vacation
from mailwarden.vacation.schemas import VacationSet

from .conftest import PASSWORD, MailStack
from .mail import poll, unique_subject


def applied(stack: MailStack, action: Callable[[UnitOfWork, Actor], Any]) -> Any:
    """Run a service call and demand that its host work (the Sieve upload) succeeded."""
    with UnitOfWork(session_factory(stack.engine)(), stack.settings) as uow:
        result = action(uow, Actor.local_operator(Channel.SYSTEM))
        uow.finish()
    assert uow.follow_up_failures == [], [str(failure) for failure in uow.follow_up_failures]
    return result


def dovecot_log(stack: MailStack) -> str:
    return Path(stack.info["logs"]["dovecot"]).read_text(errors="replace")


def test_vacation_replies_once_per_sender_within_the_interval(stack: MailStack) -> None:
    domain = stack.new_domain("vac")
    away, sender = f"away@{domain}", f"colleague@{domain}"
    stack.add_mailbox(away)
    stack.add_mailbox(sender)
    today = date.today()
    subject = 'Out of office: "back" on Monday \\ really'
    data = VacationSet(
        subject=subject,
        body="I am away.\nYour mail will be read when I am back.\n",
        starts_on=today - timedelta(days=1),
        ends_on=today + timedelta(days=1),
        interval_days=1,
    )
    applied(stack, lambda uow, actor: vacation.set_vacation(uow, actor, away, data))

    first, second = unique_subject("vacation-1"), unique_subject("vacation-2")
    stack.mail.send(sender, [away], first)
    stack.mail.wait_for_message(sender, PASSWORD, subject)
    stack.mail.send(sender, [away], second)
    stack.mail.wait_for_message(away, PASSWORD, second)
    # Pigeonhole decides at delivery: once it logged the duplicate, no second reply exists.
    poll(
        lambda: (
            f"discarded duplicate vacation response to <{sender}>" in dovecot_log(stack) or None
        ),
        20,
        "the second message's vacation decision",
    )
    replies = [s for s in stack.mail.imap_subjects(sender, PASSWORD) if s == subject]
    assert replies == [subject]
    assert {first, second} <= set(stack.mail.imap_subjects(away, PASSWORD))


def test_vacation_outside_its_interval_sends_nothing(stack: MailStack) -> None:
    domain = stack.new_domain("later")
    away, sender = f"later@{domain}", f"early@{domain}"
    stack.add_mailbox(away)
    stack.add_mailbox(sender)
    tomorrow = date.today() + timedelta(days=1)
    data = VacationSet(subject="Not yet away", body="Later.", starts_on=tomorrow)
    applied(stack, lambda uow, actor: vacation.set_vacation(uow, actor, away, data))
    marker = unique_subject("before-vacation")
    stack.mail.send(sender, [away], marker)
    stack.mail.wait_for_message(away, PASSWORD, marker)
    # The script ran at that delivery (it is the active one) and chose not to reply.
    assert "Not yet away" not in stack.mail.imap_subjects(sender, PASSWORD)
    assert f"vacation response to <{sender}>" not in dovecot_log(stack)


@pytest.mark.parametrize("keep_copy", [True, False], ids=["keep-copy", "no-copy"])
def test_forwarding_with_and_without_a_kept_copy(stack: MailStack, keep_copy: bool) -> None:
    domain = stack.new_domain("fwd")
    owner, first, second = f"owner@{domain}", f"first@{domain}", f"second@{domain}"
    for address in (owner, first, second):
        stack.add_mailbox(address)
    data = ForwardSet(targets=[first, second], keep_copy=keep_copy)
    applied(stack, lambda uow, actor: forwarding.set_forward(uow, actor, owner, data))

    subject = unique_subject("forwarded")
    stack.mail.send(f"someone@{domain}", [owner], subject)
    stack.mail.wait_for_message(first, PASSWORD, subject)
    stack.mail.wait_for_message(second, PASSWORD, subject)
    if keep_copy:
        stack.mail.wait_for_message(owner, PASSWORD, subject)
    else:
        # The redirects happened while the owner's delivery ran, which is therefore over.
        assert subject not in stack.mail.imap_subjects(owner, PASSWORD)

    applied(stack, lambda uow, actor: forwarding.disable_forward(uow, actor, owner))
    after = unique_subject("not-forwarded")
    stack.mail.send(f"someone@{domain}", [owner], after)
    stack.mail.wait_for_message(owner, PASSWORD, after)
    assert after not in stack.mail.imap_subjects(first, PASSWORD)


def test_a_removed_mailbox_is_refused_at_once_and_restored_within_the_grace_period(
    stack: MailStack,
) -> None:
    address = f"leaver@{stack.new_domain('rm')}"
    stack.add_mailbox(address)
    before = unique_subject("before-removal")
    stack.mail.send("someone@outside.example", [address], before)
    stack.mail.wait_for_message(address, PASSWORD, before)

    stack.run(lambda uow, actor: mailboxes.remove(uow, actor, address))
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        stack.mail.send("someone@outside.example", [address], unique_subject("after-removal"))
    assert refused.value.recipients[address][0] == 550
    assert not stack.mail.imap_login_ok(address, PASSWORD)
    assert not stack.mail.pop3_login_ok(address, PASSWORD)

    stack.run(lambda uow, actor: mailboxes.restore(uow, actor, address))
    assert stack.mail.imap_login_ok(address, PASSWORD)
    again = unique_subject("after-restore")
    stack.mail.send("someone@outside.example", [address], again)
    stack.mail.wait_for_message(address, PASSWORD, again)
    # Nothing was lost in between: the mail from before the removal is still there.
    assert before in stack.mail.imap_subjects(address, PASSWORD)


def test_purge_after_the_grace_period_deletes_the_maildir(stack: MailStack) -> None:
    address = f"gone@{stack.new_domain('purge')}"
    created = stack.add_mailbox(address)
    subject = unique_subject("last-message")
    stack.mail.send("someone@outside.example", [address], subject)
    stack.mail.wait_for_message(address, PASSWORD, subject)
    maildir = stack.settings.mail_root / created.maildir
    assert any(maildir.rglob("*")), "Dovecot wrote the maildir"

    stack.run(lambda uow, actor: mailboxes.remove(uow, actor, address))
    # Within the grace period purge leaves it alone.
    kept = stack.run(lambda uow, actor: maintenance.purge(uow, actor))
    assert address not in [m.address for m in kept.mailboxes]
    assert maildir.exists()

    later = datetime.now(UTC) + timedelta(hours=stack.settings.deletion_grace_hours, minutes=1)
    purged = applied(stack, lambda uow, actor: maintenance.purge(uow, actor, now=later))
    assert address in [m.address for m in purged.mailboxes]
    assert not maildir.exists()
    assert stack.quota_usage_bytes(address) is None
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        stack.mail.send("someone@outside.example", [address], unique_subject("after-purge"))
