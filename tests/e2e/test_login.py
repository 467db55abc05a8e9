"""IMAP, POP3 and SMTP AUTH against the hashes mailwarden writes, read by Dovecot's SQL passdb."""

from __future__ import annotations

import pytest

from mailwarden.kernel.passwords import WRITABLE_SCHEMES, Scheme

from .conftest import PASSWORD, MailStack

# Non-ASCII and a quote: the hash is of the UTF-8 bytes, whatever the protocol carries.
SCHEME_PASSWORD = "Pässwörd 'e2e' ✓"


@pytest.mark.parametrize("scheme", sorted(WRITABLE_SCHEMES))
def test_imap_and_pop3_accept_every_writable_scheme(stack: MailStack, scheme: Scheme) -> None:
    address = f"user-{scheme.value.lower()}@{stack.new_domain()}"
    created = stack.add_mailbox(address, SCHEME_PASSWORD, scheme=scheme)
    assert created.password_scheme == scheme.value

    assert stack.mail.imap_login_ok(address, SCHEME_PASSWORD)
    assert stack.mail.pop3_login_ok(address, SCHEME_PASSWORD)


def test_a_wrong_password_is_refused(stack: MailStack) -> None:
    address = f"erin@{stack.new_domain()}"
    stack.add_mailbox(address)

    assert not stack.mail.imap_login_ok(address, PASSWORD + "x")
    assert not stack.mail.pop3_login_ok(address, PASSWORD + "x")
    assert stack.mail.submission_auth_code(address, PASSWORD + "x") == 535
    assert stack.mail.imap_login_ok(address, PASSWORD)


def test_a_password_change_takes_effect_at_once(stack: MailStack) -> None:
    address = f"frank@{stack.new_domain()}"
    stack.add_mailbox(address)
    assert stack.mail.imap_login_ok(address, PASSWORD)
    new_password = "a brand new passphrase"

    stack.set_password(address, new_password)

    assert not stack.mail.imap_login_ok(address, PASSWORD)
    assert stack.mail.imap_login_ok(address, new_password)
    assert stack.mail.pop3_login_ok(address, new_password)
    assert stack.mail.submission_auth_code(address, new_password) == 235
