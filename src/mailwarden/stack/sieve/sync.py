"""Bring a mailbox's Sieve script in line with its stored vacation and forwarding settings.

The database is the truth. After a change commits, `queue_apply` reads the mailbox's rows back
(so the script reflects what was committed, including a change another admin committed to the
other setting meanwhile), renders the one script and uploads it through ManageSieve as the
script `mailwarden`, or deletes that script when nothing is enabled.

Mailwarden never activates its script: a mailbox has one active script, and that slot belongs
to the user (their own filters, activated in their own ManageSieve client). The generated
Dovecot configuration runs `mailwarden` from its file before the user's active script
(`sieve_before`, see script.py). Mailwarden versions before that activated `mailwarden`, which
switched the user's script off; an upload or removal now deactivates `mailwarden` when it is the
active one (the user's earlier choice is not recorded anywhere, so it cannot be restored).

Login: SASL PLAIN as the Dovecot master user `sieve_master_user` (authcid) on behalf of the
mailbox (authzid = its address), so mailwarden never needs a user's password. The master password
is sent only over TLS (STARTTLS, certificate verified against `managesieve_host`) or to a
loopback peer, where it never leaves the host.

`managesieve_host = ""` is the documented store-only mode: nothing is uploaded and that is not a
failure (the faces print a notice; `vacation apply` uploads once a server is configured). Every
other failure raises FollowUpFailed with a one-line reason; the stored change stands.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from mailwarden.forwarding.models import Forward
from mailwarden.kernel.errors import FollowUpFailed
from mailwarden.kernel.unit_of_work import UnitOfWork
from mailwarden.settings import Settings
from mailwarden.vacation.models import Vacation

from .managesieve import (
    DEFAULT_TIMEOUT,
    AuthenticationFailed,
    CommandRefused,
    ConnectFailed,
    ManageSieveClient,
    ManageSieveError,
)
from .script import SCRIPT_NAME, AutoReply, Redirect, render_script

NOT_CONFIGURED = (
    "stored; not applied: no ManageSieve server configured (MAILWARDEN_MANAGESIEVE_HOST)"
)


class Outcome(StrEnum):
    UPLOADED = "uploaded"  # stored; runs before the user's own active script
    REMOVED = "removed"  # nothing enabled: the script was deleted
    ABSENT = "absent"  # nothing enabled and no script there: nothing to do
    NOT_CONFIGURED = "not_configured"  # store-only mode (managesieve_host = "")


def is_configured(settings: Settings) -> bool:
    return settings.managesieve_host != ""


def auto_reply_of(vacation: Vacation | None) -> AutoReply | None:
    if vacation is None or not vacation.enabled:
        return None
    return AutoReply(
        subject=vacation.subject,
        body=vacation.body,
        days=vacation.interval_days,
        starts_on=vacation.starts_on,
        ends_on=vacation.ends_on,
    )


def redirect_of(forward: Forward | None) -> Redirect | None:
    if forward is None or not forward.enabled or not forward.targets:
        return None
    return Redirect(targets=tuple(forward.targets), keep_copy=forward.keep_copy)


def script_for_mailbox(session: Session, mailbox_id: int) -> str | None:
    """The script the mailbox's stored rows call for (None: no script), read afresh."""
    fresh = {"populate_existing": True}
    vacation = session.scalars(
        select(Vacation).where(Vacation.mailbox_id == mailbox_id).execution_options(**fresh)
    ).one_or_none()
    forward = session.scalars(
        select(Forward).where(Forward.mailbox_id == mailbox_id).execution_options(**fresh)
    ).one_or_none()
    return render_script(auto_reply_of(vacation), redirect_of(forward))


def _not_applied(address: str) -> str:
    return f"the Sieve script of {address} was not applied"


def push_script(
    settings: Settings, address: str, script: str | None, *, timeout: float = DEFAULT_TIMEOUT
) -> Outcome:
    """Upload `script` for `address` (never activated), or remove ours when it is None."""
    if not is_configured(settings):
        return Outcome.NOT_CONFIGURED
    what = _not_applied(address)
    if settings.sieve_master_password is None:
        raise FollowUpFailed(
            what, "no ManageSieve master password configured (MAILWARDEN_SIEVE_MASTER_PASSWORD)"
        )
    client = ManageSieveClient(
        settings.managesieve_host, settings.managesieve_port, timeout=timeout
    )
    try:
        with client:
            client.connect()
            _secure(client, settings.managesieve_host)
            client.authenticate_plain(
                settings.sieve_master_user,
                settings.sieve_master_password.get_secret_value(),
                authzid=address,
            )
            outcome = _remove(client) if script is None else _upload(client, script)
            client.logout()
            return outcome
    except AuthenticationFailed as exc:
        raise FollowUpFailed(
            what,
            f"ManageSieve server {client.where} refused the login of master user "
            f"{settings.sieve_master_user!r} for {address}: {exc}",
        ) from None
    except CommandRefused as exc:
        if exc.command == "PUTSCRIPT":
            reason = f"ManageSieve server {client.where} rejected the script: "
            reason += exc.response.describe()
        else:
            reason = f"ManageSieve server {client.where}: {exc}"
        raise FollowUpFailed(what, reason) from None
    except ManageSieveError as exc:
        raise FollowUpFailed(what, f"ManageSieve: {exc}") from None


def _secure(client: ManageSieveClient, host: str) -> None:
    """TLS before the master password leaves this host; loopback needs none."""
    if client.peer_is_loopback:
        return
    if "STARTTLS" not in client.capabilities:
        raise ConnectFailed(
            f"{client.where} offers no STARTTLS, and the master password is sent only over "
            "TLS or to a loopback address"
        )
    client.starttls(server_hostname=host)


def _upload(client: ManageSieveClient, script: str) -> Outcome:
    # Before the upload, not after: until the new text is stored the old one runs once (from
    # sieve_before), never twice.
    _deactivate_if_ours(client)
    client.put_script(SCRIPT_NAME, script)
    return Outcome.UPLOADED


def _remove(client: ManageSieveClient) -> Outcome:
    try:
        client.delete_script(SCRIPT_NAME)
    except CommandRefused as refused:
        code = refused.response.code[:1]
        if code == ("NONEXISTENT",):
            return Outcome.ABSENT
        if code != ("ACTIVE",):
            raise
        # The active script cannot be deleted.
        _deactivate_if_ours(client)
        client.delete_script(SCRIPT_NAME)
    return Outcome.REMOVED


def _deactivate_if_ours(client: ManageSieveClient) -> None:
    """Switch `mailwarden` off as the active script, which an older mailwarden made it.

    Only when it is the active one: SETACTIVE "" switches off whatever is active, and a script
    the user activated themselves is theirs. Nothing else is activated instead, since which
    script the user had active before is recorded nowhere.
    """
    if dict(client.list_scripts()).get(SCRIPT_NAME, False):
        client.set_active("")


def apply_mailbox(session: Session, settings: Settings, mailbox_id: int, address: str) -> Outcome:
    """Render from the stored rows and push; FollowUpFailed on any failure."""
    try:
        script = script_for_mailbox(session, mailbox_id)
    except SQLAlchemyError as exc:
        reason = str(exc.orig if hasattr(exc, "orig") and exc.orig else exc).splitlines()[0]
        raise FollowUpFailed(
            _not_applied(address), f"reading the stored settings back failed: {reason}"
        ) from None
    finally:
        # End the read before talking to the network: an open transaction would hold SQLite's
        # write lock (BEGIN IMMEDIATE), or sit idle in PostgreSQL/MariaDB, for the whole
        # ManageSieve exchange.
        session.rollback()
    return push_script(settings, address, script)


def queue_apply(uow: UnitOfWork, mailbox_id: int, address: str) -> None:
    """Apply the mailbox's script once the unit of work has committed (never on a dry run)."""
    uow.after_commit(_operation(uow, mailbox_id, address))


def _operation(uow: UnitOfWork, mailbox_id: int, address: str) -> Callable[[], None]:
    def apply() -> None:
        apply_mailbox(uow.session, uow.settings, mailbox_id, address)

    return apply
