"""Quotas set in mailwarden, enforced and counted by Dovecot."""

from __future__ import annotations

from .conftest import PASSWORD, MailStack
from .mail import poll, unique_subject

KIB = 1024
QUOTA = 16 * KIB
# Each message is a quarter of the quota: the fifth delivery at the latest must be refused.
BODY = "x" * 76 + "\n"
BODY_OF_4_KIB = BODY * (4 * KIB // len(BODY))


def test_the_quota_is_enforced_and_the_usage_reported(stack: MailStack) -> None:
    address = f"kate@{stack.new_domain()}"
    stack.add_mailbox(address, quota_bytes=QUOTA)
    sender = "bulk@outside.example"

    replies = []
    for _ in range(6):
        replies.append(
            stack.mail.lmtp_deliver(sender, address, unique_subject("filler"), BODY_OF_4_KIB)
        )
        if replies[-1][0] != 250:
            break

    code, reply = replies[-1]
    assert code == 552, replies
    assert reply.startswith("5.2.2 "), replies
    assert 2 <= len(replies) <= 5, replies

    # Through Postfix the refusal comes back from LMTP after Postfix accepted the message:
    # it bounces, and the log says why.
    stack.mail.send(sender, [address], unique_subject("over quota"), body=BODY_OF_4_KIB)
    line = stack.mail.wait_for_log(f"to=<{address}>", "status=bounced")
    assert "552 5.2.2" in line, line

    # quota_clone writes after each delivery, asynchronously: wait for the last one.
    stored = len(replies) - 1
    usage = poll(
        lambda: _at_least(stack.quota_usage_bytes(address), stored * 4 * KIB),
        20,
        f"quota_usage of {address} to count {stored} messages",
    )
    assert usage <= QUOTA, usage
    assert stack.get_mailbox(address).quota_used_bytes == usage
    assert len(stack.mail.imap_subjects(address, PASSWORD)) == stored


def _at_least(value: int | None, minimum: int) -> int | None:
    return value if value is not None and value >= minimum else None
