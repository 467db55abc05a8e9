"""Logins to the console and the portal in the audit log, failed ones included.

A failed login names whatever was typed as the user, which is hostile text as often as not: it
is stored without control characters, cut to the column's length, and (like every audit field)
escaped by whatever shows it.
"""

from __future__ import annotations

import unicodedata
from enum import StrEnum

from mailwarden.kernel.actor import Actor
from mailwarden.kernel.audit import AuditEntry
from mailwarden.kernel.unit_of_work import UnitOfWork

_NAME_LENGTH = 254
# Who a failed attempt was; there is no role to name.
_ANONYMOUS_ROLE = "anonymous"


class LoginKind(StrEnum):
    ADMIN = "admin"
    MAILBOX = "mailbox"


def printable_name(typed: str) -> str:
    """What was typed as a user name, lowercased, without control characters, cut to size."""
    cleaned = "".join(
        "\ufffd" if unicodedata.category(c) in ("Cc", "Cs") else c for c in typed.strip()
    )
    return cleaned.lower()[:_NAME_LENGTH] or "(empty)"


def record_login(
    uow: UnitOfWork, actor: Actor, kind: LoginKind, *, domain: str | None = None, how: str = ""
) -> None:
    """A successful login (`how`: "password", "password+totp", "password+recovery-code")."""
    uow.session.add(
        AuditEntry(
            actor=actor.username,
            actor_role=actor.role.value,
            channel=actor.channel.value,
            client_address=actor.client_address,
            action=f"{kind.value}.login",
            object_type=kind.value,
            object_key=actor.username,
            domain=domain,
            after={"method": how} if how else None,
        )
    )
    uow.session.flush()


def record_failed_login(
    uow: UnitOfWork,
    typed_name: str,
    kind: LoginKind,
    *,
    channel: str,
    client_address: str | None,
    reason: str,
    domain: str | None = None,
) -> None:
    """A refused login: wrong password or code, unknown user, or too many attempts."""
    name = printable_name(typed_name)
    uow.session.add(
        AuditEntry(
            actor=name,
            actor_role=_ANONYMOUS_ROLE,
            channel=channel,
            client_address=client_address,
            action=f"{kind.value}.login-failed",
            object_type=kind.value,
            object_key=name,
            domain=domain,
            after={"reason": reason},
        )
    )
    uow.session.flush()
