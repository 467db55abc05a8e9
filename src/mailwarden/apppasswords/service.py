"""App passwords: one password per mail client, each named, revocable on its own, shown once.

Dovecot accepts them for IMAP, POP3 and ManageSieve, and Postfix for SMTP AUTH on submission
(through Dovecot's SASL), beside the mailbox's own password: a second passdb is consulted when
that one fails (stack/dovecot). The password starts with its public id, which selects the one
row to verify; only the hash of the whole text is stored, in the configured scheme, so Dovecot
verifies it exactly as it verifies mailbox passwords. The same conditions as for the mailbox
password apply: the mailbox and its domain must be active and not removed.

Revoking deletes the row, so the next login with it fails, and ends the mailbox's open sessions
(after commit, where doveadm is configured): a client that is already logged in with the revoked
password would otherwise keep reading mail. The other clients log in again by themselves.
"""

from __future__ import annotations

from typing import Any, Final

from sqlalchemy import func, select

from mailwarden.db.types import utcnow
from mailwarden.kernel.actor import Actor
from mailwarden.kernel.errors import Conflict, LimitExceeded, NotFound, ValidationError
from mailwarden.kernel.pagination import Page, check_limit, page_of
from mailwarden.kernel.passwords import hash_password
from mailwarden.kernel.permissions import Permission
from mailwarden.kernel.text import check_text
from mailwarden.kernel.unit_of_work import ChangeKind, UnitOfWork
from mailwarden.mailboxes import service as mailboxes
from mailwarden.mailboxes.models import Mailbox
from mailwarden.stack.dovecot import sessions

from . import tokens
from .models import AppPassword
from .schemas import AppPasswordCreate, AppPasswordCreated, AppPasswordPublic

MAX_NAME_CHARS: Final = 100
# Enough for every device a person owns; a bound on what one mailbox user can make us store.
MAX_PER_MAILBOX: Final = 50
# A new public id is drawn when one is taken; at 40 bits a second draw is already rare.
_PUBLIC_ID_ATTEMPTS: Final = 8


def snapshot(app_password: AppPassword) -> dict[str, Any]:
    """The audit view: name and public id, never the password or its hash."""
    return {"name": app_password.name, "id": app_password.public_id}


def to_public(address: str, app_password: AppPassword) -> AppPasswordPublic:
    return AppPasswordPublic(
        id=app_password.public_id,
        address=address,
        name=app_password.name,
        created_at=app_password.created_at,
    )


def _check_name(name: str) -> str:
    check_text(name, "name")
    if name.strip() == "":
        raise ValidationError("name", "required", "name the app password (e.g. the device)")
    if len(name) > MAX_NAME_CHARS:
        raise ValidationError(
            "name", "too_long", f"is {len(name)} characters long; at most {MAX_NAME_CHARS}"
        )
    if tokens.PUBLIC_ID.fullmatch(name):
        # revoke() takes a name or an id: a name shaped like an id could name another one.
        raise ValidationError(
            "name", "looks_like_id", "looks like an app password id; add a word or a space"
        )
    return name


def _by_name(uow: UnitOfWork, mailbox: Mailbox, name: str) -> AppPassword | None:
    # Equality in the database, so a name counts as taken exactly when the unique index says so
    # (MariaDB's collation ignores case, for one).
    stmt = select(AppPassword).where(AppPassword.mailbox_id == mailbox.id, AppPassword.name == name)
    return uow.session.scalars(stmt).one_or_none()


def _ensure_slot(uow: UnitOfWork, mailbox: Mailbox) -> None:
    count = uow.session.scalar(
        select(func.count()).select_from(AppPassword).where(AppPassword.mailbox_id == mailbox.id)
    )
    if (count or 0) >= MAX_PER_MAILBOX:
        raise LimitExceeded(
            "name",
            "too_many_app_passwords",
            f"{mailbox.address} has {MAX_PER_MAILBOX} app passwords already, the most a mailbox "
            "may have; revoke one first",
        )


def _unused_public_id(uow: UnitOfWork) -> str:
    for _ in range(_PUBLIC_ID_ATTEMPTS):
        public_id = tokens.new_public_id()
        taken = uow.session.scalar(select(AppPassword.id).where(AppPassword.public_id == public_id))
        if taken is None:
            return public_id
    raise RuntimeError("no unused app password id found; the random source is broken")


def create(
    uow: UnitOfWork, actor: Actor, address: str, data: AppPasswordCreate
) -> AppPasswordCreated:
    """A new app password for the mailbox `address`; the answer holds the password, once."""
    # to_change locks the mailbox row: concurrent creates count and name one after the other.
    mailbox, domain = mailboxes.find_live(
        uow, actor, address, Permission.APP_PASSWORD_CREATE, to_change=True
    )
    name = _check_name(data.name)
    if _by_name(uow, mailbox, name) is not None:
        raise Conflict(
            "name", "duplicate", f"{mailbox.address} has an app password named {name!r} already"
        )
    _ensure_slot(uow, mailbox)
    public_id = _unused_public_id(uow)
    password = tokens.new_password(public_id)
    app_password = AppPassword(
        mailbox_id=mailbox.id,
        public_id=public_id,
        name=name,
        password_hash=hash_password(password, uow.settings.password_scheme),
        created_at=utcnow(),
    )
    uow.session.add(app_password)
    uow.session.flush()
    uow.record(
        actor,
        ChangeKind.CREATE,
        "app_password",
        mailbox.address,
        domain=domain.name,
        after=snapshot(app_password),
    )
    public = to_public(mailbox.address, app_password)
    return AppPasswordCreated(**public.model_dump(), password=password)


def list_app_passwords(
    uow: UnitOfWork,
    actor: Actor,
    address: str,
    *,
    limit: int = 50,
    after: str | None = None,
) -> Page[AppPasswordPublic]:
    """The mailbox's app passwords by name (never a password or hash); `after`: a name."""
    check_limit(limit)
    mailbox, _ = mailboxes.find_live(uow, actor, address, Permission.APP_PASSWORD_READ)
    # Served by the unique index (mailbox_id, name).
    stmt = select(AppPassword).where(AppPassword.mailbox_id == mailbox.id)
    if after:
        stmt = stmt.where(AppPassword.name > check_text(after, "cursor"))
    rows = uow.session.scalars(stmt.order_by(AppPassword.name).limit(limit + 1)).all()
    items = [to_public(mailbox.address, row) for row in rows]
    return page_of(items, limit, lambda item: item.name)


def revoke(uow: UnitOfWork, actor: Actor, address: str, name_or_id: str) -> None:
    """Delete the app password named `name_or_id` (or, when no name matches, with that public
    id); logins with it fail from the commit on, and the mailbox's open sessions end."""
    mailbox, domain = mailboxes.find_live(
        uow, actor, address, Permission.APP_PASSWORD_REVOKE, to_change=True
    )
    check_text(name_or_id, "name")
    app_password = _by_name(uow, mailbox, name_or_id)
    if app_password is None and tokens.PUBLIC_ID.fullmatch(name_or_id):
        app_password = uow.session.scalars(
            select(AppPassword).where(
                AppPassword.mailbox_id == mailbox.id, AppPassword.public_id == name_or_id
            )
        ).one_or_none()
    if app_password is None:
        raise NotFound("app_password", name_or_id)
    before = snapshot(app_password)
    uow.session.delete(app_password)
    uow.session.flush()
    uow.record(
        actor,
        ChangeKind.DELETE,
        "app_password",
        mailbox.address,
        domain=domain.name,
        before=before,
        action="app_password.revoke",
    )
    user = mailbox.address
    uow.after_commit(lambda: sessions.end_sessions(uow.settings, user))
