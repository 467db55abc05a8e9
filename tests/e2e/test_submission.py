"""Submission with SMTP AUTH: a user sends as the addresses they own, and only those."""

from __future__ import annotations

import smtplib

import pytest

from .conftest import PASSWORD, MailStack
from .mail import message, unique_subject


def test_a_mailbox_user_sends_as_itself_and_as_its_alias_but_not_as_another(
    stack: MailStack,
) -> None:
    domain = stack.new_domain()
    user, recipient, stranger = f"gina@{domain}", f"hank@{domain}", f"ivan@{domain}"
    for address in (user, recipient, stranger):
        stack.add_mailbox(address)
    alias = f"sales@{domain}"
    stack.add_alias(alias, user)
    as_self, as_alias = unique_subject("as self"), unique_subject("as alias")

    with stack.mail.submission(user, PASSWORD) as smtp:
        smtp.sendmail(user, [recipient], message(user, [recipient], as_self).as_bytes())
        smtp.sendmail(alias, [recipient], message(alias, [recipient], as_alias).as_bytes())
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            smtp.sendmail(stranger, [recipient], message(stranger, [recipient], "no").as_bytes())

    code, reply = refused.value.recipients[recipient]
    assert code == 553
    assert reply.startswith(b"5.7.1 "), reply
    assert b"not owned by user" in reply, reply
    stack.mail.wait_for_message(recipient, PASSWORD, as_self)
    stack.mail.wait_for_message(recipient, PASSWORD, as_alias)


def test_submission_refuses_mail_without_auth(stack: MailStack) -> None:
    domain = stack.new_domain()
    recipient = f"jane@{domain}"
    stack.add_mailbox(recipient)

    with (
        smtplib.SMTP("127.0.0.1", stack.mail.submission_port, timeout=20) as smtp,
        pytest.raises(smtplib.SMTPRecipientsRefused) as refused,
    ):
        smtp.sendmail(recipient, [recipient], message(recipient, [recipient], "no").as_bytes())

    code, _reply = refused.value.recipients[recipient]
    assert code == 554
