"""App passwords against the real Dovecot (IMAP, POP3) and Postfix submission (SMTP AUTH through
Dovecot's SASL): the second passdb of the generated configuration."""

from __future__ import annotations

import contextlib
import imaplib

from mailwarden.apppasswords import service as apppasswords
from mailwarden.apppasswords.schemas import AppPasswordCreate
from mailwarden.domains import service as domains
from mailwarden.domains.schemas import DomainUpdate
from mailwarden.kernel.schemas import parse
from mailwarden.mailboxes import service as mailboxes

from .conftest import PASSWORD, MailStack
from .mail import message, poll, unique_subject

HOST = "127.0.0.1"


def add_app_password(stack: MailStack, address: str, name: str = "phone") -> str:
    data = AppPasswordCreate(name=name)
    return stack.run(lambda uow, actor: apppasswords.create(uow, actor, address, data)).password


def revoke(stack: MailStack, address: str, name: str) -> None:
    stack.run(lambda uow, actor: apppasswords.revoke(uow, actor, address, name))


def imap_login_command_ok(stack: MailStack, address: str, password: str) -> bool:
    """IMAP LOGIN (not AUTHENTICATE): the command most mail clients use."""
    imap = imaplib.IMAP4(HOST, stack.ports["imap"], timeout=10)
    try:
        imap.login(address, password)
    except imaplib.IMAP4.error:
        return False
    finally:
        imap.shutdown()
    return True


def accepted_everywhere(stack: MailStack, address: str, password: str) -> bool:
    results = {
        "imap": stack.mail.imap_login_ok(address, password),
        "imap-login": imap_login_command_ok(stack, address, password),
        "pop3": stack.mail.pop3_login_ok(address, password),
        "submission": stack.mail.submission_auth_code(address, password) == 235,
    }
    assert len(set(results.values())) == 1, results
    return results["imap"]


def test_an_app_password_logs_in_and_sends_beside_the_mailbox_password(stack: MailStack) -> None:
    address = f"kate@{stack.new_domain('app')}"
    stack.add_mailbox(address)
    app_password = add_app_password(stack, address)
    subject = unique_subject("sent with an app password")

    assert accepted_everywhere(stack, address, app_password)
    assert accepted_everywhere(stack, address, PASSWORD)
    with stack.mail.submission(address, app_password) as smtp:
        smtp.sendmail(address, [address], message(address, [address], subject).as_bytes())
    stack.mail.wait_for_message(address, app_password, subject)


def test_wrong_revoked_and_foreign_app_passwords_are_refused(stack: MailStack) -> None:
    domain = stack.new_domain("app")
    address, neighbour = f"liam@{domain}", f"mona@{domain}"
    stack.add_mailbox(address)
    stack.add_mailbox(neighbour)
    phone, laptop = (
        add_app_password(stack, address, "phone"),
        add_app_password(stack, address, "laptop"),
    )
    foreign = add_app_password(stack, neighbour)
    public_id, _, secret = phone.partition("-")
    wrong_secret = f"{public_id}-{secret[::-1]}"

    assert not accepted_everywhere(stack, address, wrong_secret)
    assert not accepted_everywhere(stack, address, foreign)
    assert accepted_everywhere(stack, neighbour, foreign)

    revoke(stack, address, "phone")

    assert not accepted_everywhere(stack, address, phone)
    assert accepted_everywhere(stack, address, laptop)
    assert accepted_everywhere(stack, address, PASSWORD)


def test_app_passwords_stop_with_their_mailbox_and_domain(stack: MailStack) -> None:
    domain = stack.new_domain("app")
    address = f"nina@{domain}"
    stack.add_mailbox(address)
    app_password = add_app_password(stack, address)

    stack.update_mailbox(address, active=False)
    assert not accepted_everywhere(stack, address, app_password)
    stack.update_mailbox(address, active=True)
    assert accepted_everywhere(stack, address, app_password)

    inactive = parse(DomainUpdate, {"active": False})
    stack.run(lambda uow, actor: domains.update(uow, actor, domain, inactive))
    assert not accepted_everywhere(stack, address, app_password)
    active = parse(DomainUpdate, {"active": True})
    stack.run(lambda uow, actor: domains.update(uow, actor, domain, active))
    assert accepted_everywhere(stack, address, app_password)

    stack.run(lambda uow, actor: mailboxes.remove(uow, actor, address))
    assert not accepted_everywhere(stack, address, app_password)


def _session_ended(imap: imaplib.IMAP4) -> bool | None:
    try:
        imap.noop()
    except (imaplib.IMAP4.abort, OSError):
        with contextlib.suppress(OSError):
            imap.shutdown()
        return True
    return None


def test_revoking_ends_a_session_opened_with_the_app_password(stack: MailStack) -> None:
    address = f"olga@{stack.new_domain('app')}"
    stack.add_mailbox(address)
    app_password = add_app_password(stack, address)
    imap = imaplib.IMAP4(HOST, stack.ports["imap"], timeout=10)
    imap.login(address, app_password)
    imap.select("INBOX")

    revoke(stack, address, app_password.partition("-")[0])

    poll(lambda: _session_ended(imap), 10, f"the end of {address}'s app-password session")
    assert not accepted_everywhere(stack, address, app_password)
