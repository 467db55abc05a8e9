"""Mail through Postfix to Dovecot, routed only by what mailwarden stored."""

from __future__ import annotations

import smtplib

import pytest

from .conftest import PASSWORD, MailStack
from .mail import unique_subject

SENDER = "someone@outside.example"


def _refusal(stack: MailStack, recipient: str) -> tuple[int, bytes]:
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        stack.mail.send(SENDER, [recipient], unique_subject("refused"))
    return refused.value.recipients[recipient]


def test_it_delivers_to_a_mailbox(stack: MailStack) -> None:
    address = f"alice@{stack.new_domain()}"
    stack.add_mailbox(address)
    subject = unique_subject("mailbox")

    stack.mail.send(SENDER, [address], subject)

    stack.mail.wait_for_message(address, PASSWORD, subject)


def test_an_alias_delivers_to_both_targets(stack: MailStack) -> None:
    domain = stack.new_domain()
    first, second = f"first@{domain}", f"second@{domain}"
    stack.add_mailbox(first)
    stack.add_mailbox(second)
    stack.add_alias(f"team@{domain}", first, second)
    subject = unique_subject("alias")

    stack.mail.send(SENDER, [f"team@{domain}"], subject)

    stack.mail.wait_for_message(first, PASSWORD, subject)
    stack.mail.wait_for_message(second, PASSWORD, subject)


def test_an_alias_domain_delivers_to_the_same_mailbox(stack: MailStack) -> None:
    domain = stack.new_domain()
    other = f"alias-{domain}"
    address = f"carol@{domain}"
    stack.add_mailbox(address)
    stack.add_alias_domain(other, domain)
    subject = unique_subject("alias domain")

    stack.mail.send(SENDER, [f"carol@{other}"], subject)

    stack.mail.wait_for_message(address, PASSWORD, subject)


def test_a_catch_all_takes_unknown_addresses_but_not_a_real_mailboxs_mail(
    stack: MailStack,
) -> None:
    domain = stack.new_domain()
    catcher, real = f"catcher@{domain}", f"real@{domain}"
    stack.add_mailbox(catcher)
    stack.add_mailbox(real)
    stack.add_alias(f"@{domain}", catcher)
    for_nobody, for_real = unique_subject("catch-all"), unique_subject("real mailbox")

    stack.mail.send(SENDER, [f"nobody-in-particular@{domain}"], for_nobody)
    stack.mail.send(SENDER, [real], for_real)

    stack.mail.wait_for_message(catcher, PASSWORD, for_nobody)
    stack.mail.wait_for_message(real, PASSWORD, for_real)
    # Both messages have arrived where they belong; the real mailbox's did not go to the
    # catch-all as well.
    assert for_real not in stack.mail.imap_subjects(catcher, PASSWORD)
    assert for_nobody not in stack.mail.imap_subjects(real, PASSWORD)


def test_an_unknown_recipient_is_refused_at_rcpt(stack: MailStack) -> None:
    domain = stack.new_domain()
    stack.add_mailbox(f"known@{domain}")

    code, reply = _refusal(stack, f"unknown@{domain}")

    assert code == 550
    assert reply.startswith(b"5.1.1 "), reply


def test_an_inactive_mailbox_neither_receives_nor_logs_in(stack: MailStack) -> None:
    address = f"dora@{stack.new_domain()}"
    stack.add_mailbox(address)
    assert stack.mail.imap_login_ok(address, PASSWORD)

    stack.update_mailbox(address, active=False)

    code, reply = _refusal(stack, address)
    assert code == 550
    assert reply.startswith(b"5.1.1 "), reply
    assert not stack.mail.imap_login_ok(address, PASSWORD)
    assert not stack.mail.pop3_login_ok(address, PASSWORD)
    assert stack.mail.submission_auth_code(address, PASSWORD) == 535
