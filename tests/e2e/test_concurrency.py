"""Mailwarden and Dovecot write the same database: neither may make the other fail."""

from __future__ import annotations

import threading

from .conftest import MailStack
from .mail import unique_subject

WRITES = 40


def test_mailwarden_writes_while_dovecot_writes_quota_usage(stack: MailStack) -> None:
    # Every delivery makes Dovecot's quota_clone write quota_usage. On SQLite a mailwarden
    # transaction that reads before it writes must wait for such a write, never fail with
    # "database is locked".
    domain = stack.new_domain()
    receiver, edited = f"busy@{domain}", f"edited@{domain}"
    stack.add_mailbox(receiver)
    stack.add_mailbox(edited)
    stop = threading.Event()
    delivered: list[int] = []

    def deliver() -> None:
        while not stop.is_set():
            code, _ = stack.mail.lmtp_deliver("load@outside.example", receiver, "load", "x\n")
            delivered.append(code)

    worker = threading.Thread(target=deliver)
    worker.start()
    try:
        for number in range(WRITES):
            stack.update_mailbox(edited, name=unique_subject(f"name {number}"))
    finally:
        stop.set()
        worker.join(timeout=30)

    assert delivered and set(delivered) == {250}, delivered
    assert stack.get_mailbox(edited).name.startswith(f"name {WRITES - 1} ")
