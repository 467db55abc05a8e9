"""Admins' second factor: TOTP enrolment, recovery codes, and the check at login.

An admin manages its own second factor only, with its own session (never through an API key:
a key is not the password). A superadmin may reset another admin's second factor, which is what
a lost phone comes down to. Secrets and codes never reach an audit entry: entries say what
state the second factor went from and to.
"""

from __future__ import annotations

import hmac
from typing import Any

import segno
from sqlalchemy import delete, func, select

from mailwarden.admins.models import Admin
from mailwarden.admins.service import normalize_username
from mailwarden.db.types import utcnow
from mailwarden.kernel.actor import Actor, Channel, Role
from mailwarden.kernel.errors import Conflict, NotFound, PermissionDenied, ValidationError
from mailwarden.kernel.passwords import verify_password
from mailwarden.kernel.permissions import Permission, require
from mailwarden.kernel.unit_of_work import ChangeKind, UnitOfWork
from mailwarden.settings import Settings

from .codes import (
    RECOVERY_CODE_COUNT,
    hash_recovery_code,
    matching_step,
    new_recovery_code,
    new_secret,
    normalize_recovery_code,
    provisioning_uri,
)
from .models import RecoveryCode, TotpEnrolment
from .schemas import Enrolment, TwoFactorStatus

# The name a refusal carries: these operations are every admin's own, not a permission.
_SELF = "self:admin:2fa"
_OFF, _PENDING, _ON = "off", "pending", "on"


def is_required(settings: Settings, role: Role) -> bool:
    """Whether the settings require a second factor of admins of `role`."""
    return role.value in settings.require_second_factor


def is_enrolled(uow: UnitOfWork, admin_id: int) -> bool:
    """Whether the admin has a confirmed second factor (the login must ask for a code)."""
    stmt = select(TotpEnrolment.admin_id).where(
        TotpEnrolment.admin_id == admin_id, TotpEnrolment.confirmed_at.is_not(None)
    )
    return uow.session.scalar(stmt) is not None


def _own_admin(uow: UnitOfWork, actor: Actor, *, changes: bool) -> Admin:
    """The acting admin's own account (locked when it is about to change)."""
    if actor.admin_id is None or actor.is_mailbox_user:
        raise PermissionDenied(_SELF, "only an admin account has a second factor")
    if changes and actor.read_only:
        raise PermissionDenied(_SELF, "read-only credentials")
    if changes and actor.api_key is not None:
        # Enrolling through a stolen key would lock the owner out of its own console.
        raise PermissionDenied(_SELF, "an API key cannot change the second factor")
    admin = uow.session.get(Admin, actor.admin_id, with_for_update=changes)
    if admin is None or not admin.active:
        raise NotFound("admin", actor.username)
    return admin


def _enrolment(uow: UnitOfWork, admin_id: int) -> TotpEnrolment | None:
    # Locked: two logins racing with one code must not both accept it.
    return uow.session.get(TotpEnrolment, admin_id, with_for_update=True)


def _confirmed(uow: UnitOfWork, admin_id: int) -> TotpEnrolment:
    enrolment = _enrolment(uow, admin_id)
    if enrolment is None or enrolment.confirmed_at is None:
        raise Conflict("code", "not_enrolled", "no second factor is set up")
    return enrolment


def _codes_left(uow: UnitOfWork, admin_id: int) -> int:
    stmt = (
        select(func.count())
        .select_from(RecoveryCode)
        .where(RecoveryCode.admin_id == admin_id, RecoveryCode.used_at.is_(None))
    )
    return uow.session.scalar(stmt) or 0


def _replace_recovery_codes(uow: UnitOfWork, admin_id: int) -> list[str]:
    """A new set of recovery codes; the old ones stop working. Only hashes are stored."""
    uow.session.execute(delete(RecoveryCode).where(RecoveryCode.admin_id == admin_id))
    codes: list[str] = []
    while len(codes) < RECOVERY_CODE_COUNT:
        code = new_recovery_code()
        if code not in codes:
            codes.append(code)
    uow.session.add_all(
        RecoveryCode(admin_id=admin_id, code_hash=hash_recovery_code(canonical))
        for canonical in (normalize_recovery_code(code) for code in codes)
        if canonical is not None
    )
    uow.session.flush()
    return codes


def _record(
    uow: UnitOfWork,
    actor: Actor,
    admin: Admin,
    action: str,
    before: dict[str, Any],
    after: dict[str, Any],
) -> None:
    uow.record(
        actor,
        ChangeKind.UPDATE,
        "admin",
        admin.username,
        domain=None,
        before=before,
        after=after,
        action=action,
    )


def _accept_totp(uow: UnitOfWork, enrolment: TotpEnrolment, code: str) -> bool:
    """Whether `code` is a current TOTP code not used before; if so, it is used up."""
    step = matching_step(enrolment.secret, code, after_step=enrolment.last_used_step)
    if step is None:
        return False
    enrolment.last_used_step = step
    uow.session.flush()
    return True


def _accept_recovery_code(uow: UnitOfWork, actor: Actor, admin: Admin, code: str) -> bool:
    """Whether `code` is one of the admin's unused recovery codes; if so, it is used up."""
    canonical = normalize_recovery_code(code)
    if canonical is None:
        return False
    digest = hash_recovery_code(canonical)
    unused = uow.session.scalars(
        select(RecoveryCode)
        .where(RecoveryCode.admin_id == admin.id, RecoveryCode.used_at.is_(None))
        .with_for_update()
    )
    match: RecoveryCode | None = None
    # Compare with every code, so timing does not tell which one (or whether one) matched.
    for row in unused:
        if hmac.compare_digest(digest, row.code_hash):
            match = row
    if match is None:
        return False
    match.used_at = utcnow()
    uow.session.flush()
    left = _codes_left(uow, admin.id)
    _record(
        uow,
        actor,
        admin,
        "admin.recovery-code-used",
        {"recovery_codes_left": left + 1},
        {"recovery_codes_left": left},
    )
    return True


def _accept_code(
    uow: UnitOfWork, actor: Actor, admin: Admin, enrolment: TotpEnrolment, code: str
) -> bool:
    return _accept_totp(uow, enrolment, code) or _accept_recovery_code(uow, actor, admin, code)


def _wrong_code() -> ValidationError:
    return ValidationError(
        "code", "totp", "the code is not right; check the device's clock and use a fresh code"
    )


def status(uow: UnitOfWork, actor: Actor) -> TwoFactorStatus:
    """The acting admin's second factor."""
    admin = _own_admin(uow, actor, changes=False)
    enrolment = uow.session.get(TotpEnrolment, admin.id)
    confirmed_at = enrolment.confirmed_at if enrolment is not None else None
    return TwoFactorStatus(
        enrolled=confirmed_at is not None,
        confirmed_at=confirmed_at,
        recovery_codes_left=_codes_left(uow, admin.id) if confirmed_at is not None else 0,
        required=is_required(uow.settings, Role(admin.role)),
    )


def begin_enrolment(uow: UnitOfWork, actor: Actor, *, issuer: str = "Mailwarden") -> Enrolment:
    """Start (or restart) enrolment with a fresh secret; it counts once a code confirms it."""
    admin = _own_admin(uow, actor, changes=True)
    enrolment = _enrolment(uow, admin.id)
    if enrolment is not None and enrolment.confirmed_at is not None:
        raise Conflict(
            "two_factor", "enrolled", "a second factor is set up already; disable it first"
        )
    before = _OFF if enrolment is None else _PENDING
    secret = new_secret()
    if enrolment is None:
        uow.session.add(TotpEnrolment(admin_id=admin.id, secret=secret, last_used_step=0))
    else:
        enrolment.secret = secret
        enrolment.last_used_step = 0
        enrolment.created_at = utcnow()
    uow.session.flush()
    _record(uow, actor, admin, "admin.2fa-begin", {"two_factor": before}, {"two_factor": _PENDING})
    uri = provisioning_uri(secret, admin.username, issuer)
    return Enrolment(
        secret=secret,
        otpauth_uri=uri,
        qr_svg=segno.make(uri, error="m").svg_inline(scale=4),
    )


def confirm_enrolment(uow: UnitOfWork, actor: Actor, code: str) -> list[str]:
    """Confirm the pending enrolment with a code from the device. Returns the recovery codes:
    the only time they are ever shown."""
    admin = _own_admin(uow, actor, changes=True)
    enrolment = _enrolment(uow, admin.id)
    if enrolment is None:
        raise Conflict("code", "not_started", "begin the enrolment first")
    if enrolment.confirmed_at is not None:
        raise Conflict("code", "enrolled", "a second factor is set up already")
    if not _accept_totp(uow, enrolment, code):
        raise _wrong_code()
    enrolment.confirmed_at = utcnow()
    codes = _replace_recovery_codes(uow, admin.id)
    _record(
        uow,
        actor,
        admin,
        "admin.2fa-enable",
        {"two_factor": _PENDING},
        {"two_factor": _ON, "recovery_codes_left": len(codes)},
    )
    return codes


def verify(
    uow: UnitOfWork,
    admin_id: int,
    code: str,
    *,
    channel: Channel = Channel.WEB,
    client_address: str | None = None,
) -> bool:
    """The second step of a login: a current TOTP code not used before, or an unused recovery
    code. Anything else is False, never an error. The caller counts a False as a failed login.

    `channel` and `client_address` describe the login for the audit entry of a recovery code.
    """
    admin = uow.session.get(Admin, admin_id)
    if admin is None or not admin.active:
        return False
    enrolment = _enrolment(uow, admin_id)
    if enrolment is None or enrolment.confirmed_at is None:
        return False
    actor = Actor(
        username=admin.username,
        role=Role(admin.role),
        channel=channel,
        admin_id=admin.id,
        client_address=client_address,
    )
    return _accept_code(uow, actor, admin, enrolment, code)


def regenerate_recovery_codes(uow: UnitOfWork, actor: Actor, code: str) -> list[str]:
    """A new set of recovery codes for a current TOTP code; the old set stops working."""
    admin = _own_admin(uow, actor, changes=True)
    enrolment = _confirmed(uow, admin.id)
    left = _codes_left(uow, admin.id)
    # A recovery code does not count here: it would buy ten more with one.
    if not _accept_totp(uow, enrolment, code):
        raise _wrong_code()
    codes = _replace_recovery_codes(uow, admin.id)
    _record(
        uow,
        actor,
        admin,
        "admin.2fa-recovery-codes",
        {"recovery_codes_left": left},
        {"recovery_codes_left": len(codes)},
    )
    return codes


def disable(uow: UnitOfWork, actor: Actor, *, password: str, code: str) -> None:
    """Remove the acting admin's second factor: it takes the password and a code, so a stolen
    session alone cannot. Allowed even where the settings require one (status().required then
    sends the admin back to enrolment)."""
    admin = _own_admin(uow, actor, changes=True)
    if not verify_password(password, admin.password_hash):
        raise ValidationError("password", "wrong_password", "the password is not right")
    enrolment = _confirmed(uow, admin.id)
    left = _codes_left(uow, admin.id)
    if not _accept_code(uow, actor, admin, enrolment, code):
        raise _wrong_code()
    _remove(uow, enrolment)
    _record(
        uow,
        actor,
        admin,
        "admin.2fa-disable",
        {"two_factor": _ON, "recovery_codes_left": left},
        {"two_factor": _OFF},
    )


def _remove(uow: UnitOfWork, enrolment: TotpEnrolment) -> None:
    uow.session.execute(delete(RecoveryCode).where(RecoveryCode.admin_id == enrolment.admin_id))
    uow.session.delete(enrolment)
    uow.session.flush()


def reset(uow: UnitOfWork, actor: Actor, username: str) -> bool:
    """A superadmin removes another admin's second factor (a lost device). True when there was
    one (confirmed or pending) to remove; nothing is recorded otherwise."""
    require(actor, Permission.ADMIN_UPDATE)
    name = normalize_username(username)
    admin = uow.session.scalars(select(Admin).where(Admin.username == name)).one_or_none()
    if admin is None:
        raise NotFound("admin", name)
    if actor.admin_id is not None and actor.admin_id == admin.id:
        raise Conflict(
            "username", "self_reset", "disable your own second factor with your password and a code"
        )
    enrolment = _enrolment(uow, admin.id)
    if enrolment is None:
        return False
    before = _ON if enrolment.confirmed_at is not None else _PENDING
    _remove(uow, enrolment)
    _record(uow, actor, admin, "admin.2fa-reset", {"two_factor": before}, {"two_factor": _OFF})
    return True
