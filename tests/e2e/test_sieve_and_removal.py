"""Vacation, forwarding and deferred deletion, as the real daemons carry them out.

Vacation and forwarding go from the services through ManageSieve into Pigeonhole, which runs
the script at LMTP delivery, before the script the mailbox's user activated themselves (which
keeps working); removal and restore change what Postfix and Dovecot accept at once; purge
removes the maildir Dovecot wrote.
"""

from __future__ import annotations

import imaplib
import re
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
from mailwarden.stack.sieve.managesieve import ManageSieveClient
from mailwarden.stack.sieve.script import SCRIPT_NAME
from mailwarden.vacation import service as vacation
from mailwarden.vacation.schemas import VacationSet

from .conftest import PASSWORD, MailStack
from .mail import DEFAULT_TIMEOUT, HOST, poll, unique_subject


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
    # Pigeonhole logs a vacation action before it stores the message, through the same log
    # pipe: once the store is logged, a reply would have been logged already.
    stored = poll(
        lambda: (
            [
                line
                for line in dovecot_log(stack).splitlines()
                if f"lmtp({away})" in line and "stored mail into mailbox 'INBOX'" in line
            ]
            or None
        ),
        20,
        f"the log of the delivery to {away}",
    )
    assert len(stored) == 1
    assert f"vacation response to <{sender}>" not in dovecot_log(stack)
    assert "Not yet away" not in stack.mail.imap_subjects(sender, PASSWORD)


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


# A user's own filter: mail with "[filed]" in the subject is flagged and filed into "Filed".
OWN_SCRIPT = (
    'require ["fileinto", "imap4flags", "mailbox"];\r\n'
    'if header :contains "subject" "[filed]" {\r\n'
    '    addflag "\\\\Flagged";\r\n'
    '    fileinto :create "Filed";\r\n'
    "}\r\n"
)
_FLAGS = re.compile(rb"FLAGS \(([^)]*)\)")


def folder_messages(stack: MailStack, address: str, folder: str) -> dict[str, set[str]]:
    """Subject -> IMAP flags of each message in `folder` ({} while it does not exist)."""
    imap = imaplib.IMAP4(HOST, stack.ports["imap"], timeout=DEFAULT_TIMEOUT)
    try:
        imap.authenticate("PLAIN", lambda _challenge: f"\0{address}\0{PASSWORD}".encode())
        status, exists = imap.select(folder, readonly=True)
        if status != "OK" or exists[0] == b"0":
            return {}
        _, data = imap.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    finally:
        imap.shutdown()
    messages = {}
    for item in data:
        if isinstance(item, tuple):
            flags = _FLAGS.search(item[0])
            subject = item[1].decode(errors="replace").strip().partition(":")[2].strip()
            messages[subject] = set(flags.group(1).decode().split()) if flags else set()
    return messages


def wait_until_filed(stack: MailStack, address: str, subject: str) -> set[str]:
    """Poll until `subject` is in the user's folder Filed; its flags."""
    return poll(
        lambda: folder_messages(stack, address, "Filed").get(subject),
        DEFAULT_TIMEOUT,
        f"{subject!r} in {address}'s folder Filed",
    )


def own_scripts(stack: MailStack, address: str) -> dict[str, bool]:
    """The user's scripts (name -> active), seen as the user, with their own password."""
    with ManageSieveClient(HOST, stack.ports["sieve"]) as client:
        client.connect()
        client.authenticate_plain(address, PASSWORD)
        scripts = dict(client.list_scripts())
        client.logout()
    return scripts


def test_the_users_own_active_script_keeps_working_beside_vacation_and_forwarding(
    stack: MailStack,
) -> None:
    domain = stack.new_domain("own")
    user, sender, deputy = f"user@{domain}", f"sender@{domain}", f"deputy@{domain}"
    created = stack.add_mailbox(user)
    for address in (sender, deputy):
        stack.add_mailbox(address)
    # The user uploads and activates their own filter, as their mail client would.
    with ManageSieveClient(HOST, stack.ports["sieve"]) as client:
        client.connect()
        client.authenticate_plain(user, PASSWORD)
        client.put_script("own", OWN_SCRIPT)
        client.set_active("own")
        client.logout()
    first = unique_subject("[filed] before")
    stack.mail.send(sender, [user], first)
    assert "\\Flagged" in wait_until_filed(stack, user, first)

    # Vacation and forwarding with a kept copy: both happen, and the user's rules file the copy.
    away = VacationSet(subject=unique_subject("Away"), body="Back soon.\n")
    applied(stack, lambda uow, actor: vacation.set_vacation(uow, actor, user, away))
    copy = ForwardSet(targets=[deputy], keep_copy=True)
    applied(stack, lambda uow, actor: forwarding.set_forward(uow, actor, user, copy))
    assert own_scripts(stack, user) == {"own": True, SCRIPT_NAME: False}
    during = unique_subject("[filed] during")
    stack.mail.send(sender, [user], during)
    stack.mail.wait_for_message(sender, PASSWORD, away.subject)
    stack.mail.wait_for_message(deputy, PASSWORD, during)
    assert "\\Flagged" in wait_until_filed(stack, user, during)
    assert during not in stack.mail.imap_subjects(user, PASSWORD)
    # Pigeonhole could store the compiled script beside it in the user's home; else it would
    # compile it again for every message, with an error in the log each time.
    sieve_dir = stack.settings.mail_root / created.maildir / "sieve"
    assert (sieve_dir / f"{SCRIPT_NAME}.svbin").is_file()

    # Forwarding without a copy: forwarded, and the user's rules do not file it anywhere.
    no_copy = ForwardSet(targets=[deputy], keep_copy=False)
    applied(stack, lambda uow, actor: forwarding.set_forward(uow, actor, user, no_copy))
    gone = unique_subject("[filed] forwarded only")
    stack.mail.send(sender, [user], gone)
    stack.mail.wait_for_message(deputy, PASSWORD, gone)
    # The redirect happened while the user's delivery ran, which is therefore over.
    assert gone not in folder_messages(stack, user, "Filed")
    assert gone not in stack.mail.imap_subjects(user, PASSWORD)

    # Both off: mailwarden's script is gone, the user's is still the active one, and works.
    applied(stack, lambda uow, actor: vacation.disable_vacation(uow, actor, user))
    assert own_scripts(stack, user) == {"own": True, SCRIPT_NAME: False}
    applied(stack, lambda uow, actor: forwarding.disable_forward(uow, actor, user))
    assert own_scripts(stack, user) == {"own": True}
    after = unique_subject("[filed] after")
    stack.mail.send(sender, [user], after)
    assert "\\Flagged" in wait_until_filed(stack, user, after)
    assert after not in stack.mail.imap_subjects(deputy, PASSWORD)

    # Every delivery ran its scripts without a complaint: neither mailwarden's missing file
    # (before and after) nor compiling and storing it in the user's home while it existed.
    complaints = [
        line
        for line in dovecot_log(stack).splitlines()
        if user in line and re.search(r"\b(Error|Warning|Fatal|Panic)\b", line)
    ]
    assert complaints == []


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
