"""Talking to the devstack the way mail clients and servers do, with the standard library only.

SMTP (port 25 role and submission with AUTH), LMTP straight to Dovecot, IMAP and POP3. Waiting
is always polling with a deadline, never a fixed sleep.
"""

from __future__ import annotations

import imaplib
import poplib
import smtplib
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import TypeVar

HOST = "127.0.0.1"
# Generous for a loaded CI machine; a delivery here normally takes a few milliseconds.
DEFAULT_TIMEOUT = 20.0
_POLL_SECONDS = 0.05
T = TypeVar("T")


def unique_subject(label: str) -> str:
    """A subject no other test (or earlier run against the same stack) uses."""
    return f"{label} {uuid.uuid4().hex[:12]}"


def message(
    sender: str, recipients: list[str], subject: str, body: str = "Hello from the e2e suite.\n"
) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = ", ".join(recipients)
    mail["Subject"] = subject
    mail.set_content(body)
    return mail


def poll(check: Callable[[], T | None], timeout: float, what: str) -> T:
    """Call `check` until it returns something other than None; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result is not None:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(_POLL_SECONDS)


def _imap_login(imap: imaplib.IMAP4, username: str, password: str) -> None:
    # AUTHENTICATE PLAIN carries UTF-8; imaplib's LOGIN command only takes ASCII.
    imap.authenticate("PLAIN", lambda _challenge: f"\0{username}\0{password}".encode())


@dataclass(frozen=True)
class MailClient:
    """The devstack's listeners, with one method per thing a test does with them."""

    smtp_port: int
    submission_port: int
    imap_port: int
    pop3_port: int
    lmtp_port: int
    postfix_log: Path

    # --- SMTP ---------------------------------------------------------------------------------

    def send(
        self,
        sender: str,
        recipients: list[str],
        subject: str,
        *,
        body: str = "Hello from the e2e suite.\n",
    ) -> None:
        """Hand a message to Postfix's smtp listener (as another mail server would).

        Raises smtplib.SMTPRecipientsRefused when every recipient is refused at RCPT.
        """
        with smtplib.SMTP(HOST, self.smtp_port, timeout=DEFAULT_TIMEOUT) as smtp:
            refused = smtp.send_message(
                message(sender, recipients, subject, body), sender, recipients
            )
        assert not refused, f"some recipients refused: {refused}"

    @contextmanager
    def submission(self, username: str, password: str) -> Iterator[smtplib.SMTP]:
        """An authenticated session on the submission listener (AUTH PLAIN, no TLS here)."""
        with smtplib.SMTP(HOST, self.submission_port, timeout=DEFAULT_TIMEOUT) as smtp:
            smtp.ehlo()
            # One mechanism only: smtplib.login() would retry a refused password with LOGIN.
            smtp.user, smtp.password = username, password
            code, reply = smtp.auth("PLAIN", smtp.auth_plain)
            assert code == 235, (code, reply)
            yield smtp

    def submission_auth_code(self, username: str, password: str) -> int:
        """The reply code of AUTH PLAIN on the submission listener (235 accepted, 535 not)."""
        with smtplib.SMTP(HOST, self.submission_port, timeout=DEFAULT_TIMEOUT) as smtp:
            smtp.ehlo()
            smtp.user, smtp.password = username, password
            try:
                code, _ = smtp.auth("PLAIN", smtp.auth_plain)
            except smtplib.SMTPAuthenticationError as refused:
                return refused.smtp_code
            return code

    # --- LMTP ---------------------------------------------------------------------------------

    def lmtp_deliver(self, sender: str, recipient: str, subject: str, body: str) -> tuple[int, str]:
        """Deliver straight to Dovecot over LMTP: the first refusal (RCPT or DATA), or 250."""
        with smtplib.LMTP(HOST, self.lmtp_port, timeout=DEFAULT_TIMEOUT) as lmtp:
            lmtp.ehlo_or_helo_if_needed()
            code, reply = lmtp.mail(sender)
            assert code == 250, (code, reply)
            code, reply = lmtp.rcpt(recipient)
            if code != 250:
                return code, reply.decode(errors="replace")
            data = message(sender, [recipient], subject, body).as_bytes()
            try:
                code, reply = lmtp.data(data)
            except smtplib.SMTPDataError as refused:
                return refused.smtp_code, refused.smtp_error.decode(errors="replace")
            return code, reply.decode(errors="replace")

    # --- IMAP / POP3 --------------------------------------------------------------------------

    def imap_login_ok(self, username: str, password: str) -> bool:
        imap = imaplib.IMAP4(HOST, self.imap_port, timeout=DEFAULT_TIMEOUT)
        try:
            _imap_login(imap, username, password)
        except imaplib.IMAP4.error:
            return False
        finally:
            imap.shutdown()
        return True

    def pop3_login_ok(self, username: str, password: str) -> bool:
        pop = poplib.POP3(HOST, self.pop3_port, timeout=DEFAULT_TIMEOUT)
        try:
            pop.user(username)
            pop.pass_(password)
        except poplib.error_proto:
            return False
        finally:
            pop.close()
        return True

    def imap_subjects(self, username: str, password: str) -> list[str]:
        """Subjects of the messages in INBOX, in arrival order."""
        imap = imaplib.IMAP4(HOST, self.imap_port, timeout=DEFAULT_TIMEOUT)
        try:
            _imap_login(imap, username, password)
            _, exists = imap.select("INBOX", readonly=True)
            if exists[0] == b"0":
                return []
            _, data = imap.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        finally:
            imap.shutdown()
        subjects = []
        for item in data:
            if isinstance(item, tuple):
                header = item[1].decode(errors="replace").strip()
                subjects.append(header.partition(":")[2].strip())
        return subjects

    def pop3_count(self, username: str, password: str) -> int:
        pop = poplib.POP3(HOST, self.pop3_port, timeout=DEFAULT_TIMEOUT)
        try:
            pop.user(username)
            pop.pass_(password)
            count, _size = pop.stat()
        finally:
            pop.quit()
        return count

    def wait_for_message(
        self, address: str, password: str, subject: str, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        """Poll the mailbox over IMAP until a message with exactly this subject is in INBOX."""
        poll(
            lambda: True if subject in self.imap_subjects(address, password) else None,
            timeout,
            f"{subject!r} in {address}",
        )

    # --- Postfix's log ------------------------------------------------------------------------

    def wait_for_log(self, *fragments: str, timeout: float = DEFAULT_TIMEOUT) -> str:
        """The first Postfix log line that holds every fragment, polled until it appears."""

        def find() -> str | None:
            for line in self.postfix_log.read_text(errors="replace").splitlines():
                if all(fragment in line for fragment in fragments):
                    return line
            return None

        return poll(find, timeout, f"a Postfix log line with {fragments}")
