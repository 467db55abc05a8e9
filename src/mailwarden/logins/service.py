"""Logging in to the console (admins, with a second factor when enrolled) and the portal
(mailbox users): the password check, the failure counters shared with the API, and the audit
entries of successes and failures, in one place for every face that logs people in.

A refused attempt raises LoginRefused after counting it; the face must still commit (the
counters and the audit entry of the failure are the point), then show the message.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from mailwarden.admins import service as admins
from mailwarden.admins.models import Admin
from mailwarden.domains.models import Domain
from mailwarden.kernel.actor import Actor, Channel
from mailwarden.kernel.errors import MailwardenError, PermissionDenied, RateLimited, ValidationError
from mailwarden.kernel.unit_of_work import UnitOfWork
from mailwarden.mailboxes import selfservice
from mailwarden.throttle import service as throttle
from mailwarden.throttle.service import Subject
from mailwarden.twofactor import service as twofactor
from mailwarden.websessions import service as websessions
from mailwarden.websessions.service import SessionKind

from .audit import LoginKind, printable_name, record_failed_login, record_login

WRONG_CREDENTIALS = "Wrong username or password."
WRONG_CODE = "Wrong or already used code."


class LoginRefused(MailwardenError):
    """The attempt failed and was counted; commit, then show `message`."""


class CurrentPasswordRefused(ValidationError):
    """A self-service password change with a wrong current password, counted like a failed
    login; commit, then show the field error."""


@dataclass(frozen=True, slots=True)
class AdminLogin:
    actor: Actor
    admin_id: int
    # The password was right; a TOTP or recovery code is owed before the session is whole.
    second_factor_due: bool


def _subjects(uow: UnitOfWork, name: str, client_address: str | None) -> list[Subject]:
    """The account first (a success clears it), then the client address."""
    return [
        # Typed text: a NUL would fail on PostgreSQL, so the counter keys on the cleaned name.
        throttle.account(uow.settings, printable_name(name)),
        throttle.client(uow.settings, client_address),
    ]


def _refuse(
    uow: UnitOfWork,
    subjects: list[Subject],
    typed: str,
    kind: LoginKind,
    client_address: str | None,
    reason: str,
    message: str,
) -> LoginRefused:
    uow.session.rollback()
    throttle.record_failure(uow, subjects)
    record_failed_login(
        uow, typed, kind, channel=Channel.WEB.value, client_address=client_address, reason=reason
    )
    return LoginRefused(message)


def _ensure_allowed(
    uow: UnitOfWork, subjects: list[Subject], typed: str, kind: LoginKind, client: str | None
) -> None:
    try:
        throttle.ensure_allowed(uow, subjects)
    except RateLimited:
        record_failed_login(
            uow, typed, kind, channel=Channel.WEB.value, client_address=client, reason="throttled"
        )
        raise


def admin_login(
    uow: UnitOfWork, username: str, password: str, *, client_address: str | None
) -> AdminLogin:
    """Check an admin's password (RateLimited when its account or the client is blocked)."""
    subjects = _subjects(uow, username, client_address)
    _ensure_allowed(uow, subjects, username, LoginKind.ADMIN, client_address)
    try:
        actor = admins.authenticate(uow, username, password, Channel.WEB, client_address)
    except PermissionDenied:
        raise _refuse(
            uow, subjects, username, LoginKind.ADMIN, client_address, "password", WRONG_CREDENTIALS
        ) from None
    assert actor.admin_id is not None
    throttle.clear(uow, subjects[0])
    due = twofactor.is_enrolled(uow, actor.admin_id)
    if not due:
        record_login(uow, actor, LoginKind.ADMIN, how="password")
    return AdminLogin(actor, actor.admin_id, due)


def admin_second_factor(
    uow: UnitOfWork, admin_id: int, code: str, *, client_address: str | None
) -> Actor:
    """Check the TOTP or recovery code owed after the password."""
    admin = uow.session.get(Admin, admin_id)
    if admin is None:
        raise PermissionDenied("login", "the account is gone")
    subjects = _subjects(uow, admin.username, client_address)
    _ensure_allowed(uow, subjects, admin.username, LoginKind.ADMIN, client_address)
    if not twofactor.verify(uow, admin_id, code):
        raise _refuse(
            uow,
            subjects,
            admin.username,
            LoginKind.ADMIN,
            client_address,
            "second-factor",
            WRONG_CODE,
        )
    throttle.clear(uow, subjects[0])
    actor = admins.actor_for(uow, admin.username, Channel.WEB, client_address)
    record_login(uow, actor, LoginKind.ADMIN, how="password+second-factor")
    return actor


def mailbox_login(
    uow: UnitOfWork, address: str, password: str, *, client_address: str | None
) -> Actor:
    """Check a mailbox password for the portal; the hash is upgraded on success."""
    subjects = _subjects(uow, address, client_address)
    _ensure_allowed(uow, subjects, address, LoginKind.MAILBOX, client_address)
    try:
        actor = selfservice.authenticate(uow, address, password, client_address=client_address)
    except PermissionDenied:
        raise _refuse(
            uow,
            subjects,
            address,
            LoginKind.MAILBOX,
            client_address,
            "password",
            "Wrong address or password.",
        ) from None
    throttle.clear(uow, subjects[0])
    domain = uow.session.scalar(select(Domain.name).where(Domain.id.in_(actor.domain_ids)))
    record_login(uow, actor, LoginKind.MAILBOX, domain=domain, how="password")
    return actor


def change_own_password(
    uow: UnitOfWork,
    actor: Actor,
    *,
    current: str,
    new: str,
    client_address: str | None,
    keep_session: int | None = None,
) -> None:
    """An admin or a mailbox user changes its own password in the console or the portal.

    Wrong current passwords count against the same account and client as failed logins (the
    form is another way to guess), and a change ends the account's other browser sessions
    (`keep_session`: the one making the change).
    """
    subjects = _subjects(uow, actor.username, client_address)
    throttle.ensure_allowed(uow, subjects)
    try:
        if actor.is_mailbox_user:
            selfservice.change_own_password(uow, actor, current=current, new=new)
        else:
            admins.change_own_password(uow, actor, current, new)
    except ValidationError as exc:
        if exc.rule != "wrong_password":
            raise
        uow.session.rollback()
        throttle.record_failure(uow, subjects)
        raise CurrentPasswordRefused.many(exc.issues) from None
    throttle.clear(uow, subjects[0])
    if actor.is_mailbox_user:
        assert actor.mailbox_id is not None
        websessions.end_all(uow, SessionKind.MAILBOX, actor.mailbox_id, keep=keep_session)
    else:
        assert actor.admin_id is not None
        websessions.end_all(uow, SessionKind.ADMIN, actor.admin_id, keep=keep_session)
