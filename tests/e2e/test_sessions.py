"""A mailbox that stops being usable also loses the sessions that were already open."""

from __future__ import annotations

import contextlib
import imaplib

import pytest

from mailwarden.domains import service as domains
from mailwarden.domains.schemas import DomainUpdate
from mailwarden.kernel.schemas import parse
from mailwarden.mailboxes import service as mailboxes

from .conftest import PASSWORD, MailStack
from .mail import poll

HOST = "127.0.0.1"


def open_session(stack: MailStack, address: str) -> imaplib.IMAP4:
    imap = imaplib.IMAP4(HOST, stack.ports["imap"], timeout=10)
    imap.login(address, PASSWORD)
    imap.select("INBOX")
    return imap


def session_ended(imap: imaplib.IMAP4) -> bool | None:
    try:
        imap.noop()
    except (imaplib.IMAP4.abort, OSError):
        with contextlib.suppress(OSError):
            imap.shutdown()
        return True
    return None


@pytest.mark.parametrize("how", ["remove", "deactivate"])
def test_an_open_session_ends_when_the_mailbox_stops_being_usable(
    stack: MailStack, how: str
) -> None:
    domain = stack.new_domain("kick")
    leaving, staying = f"leaving@{domain}", f"staying@{domain}"
    stack.add_mailbox(leaving)
    stack.add_mailbox(staying)
    ended, kept = open_session(stack, leaving), open_session(stack, staying)
    try:
        if how == "remove":
            stack.run(lambda uow, actor: mailboxes.remove(uow, actor, leaving))
        else:
            stack.update_mailbox(leaving, active=False)
        poll(lambda: session_ended(ended), 10, f"the end of {leaving}'s session")
        assert kept.noop()[0] == "OK"
    finally:
        kept.logout()


def test_deactivating_a_domain_ends_every_session_in_it(stack: MailStack) -> None:
    domain, other = stack.new_domain("kickall"), stack.new_domain("elsewhere")
    addresses = [f"one@{domain}", f"two@{domain}"]
    for address in (*addresses, f"three@{other}"):
        stack.add_mailbox(address)
    sessions = [open_session(stack, address) for address in addresses]
    outside = open_session(stack, f"three@{other}")
    try:
        change = parse(DomainUpdate, {"active": False})
        stack.run(lambda uow, actor: domains.update(uow, actor, domain, change))
        for imap in sessions:
            poll(lambda imap=imap: session_ended(imap), 10, f"the end of a session in {domain}")
        assert outside.noop()[0] == "OK"
    finally:
        outside.logout()
