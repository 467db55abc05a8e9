"""Deferred deletion: `remove` stops a mailbox, `restore` takes it back within the grace period,
`maintenance.purge` deletes the rows and the maildirs (or archives them) once it has ended."""

from __future__ import annotations

import dataclasses
import os
import stat
import subprocess
import tarfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, inspect, select, update

from mailwarden.alias_domains import service as alias_domains
from mailwarden.alias_domains.schemas import AliasDomainCreate
from mailwarden.aliases import service as aliases
from mailwarden.aliases.schemas import AliasCreate
from mailwarden.db.models import AuditEntry
from mailwarden.db.types import utcnow
from mailwarden.domains import service as domains
from mailwarden.domains.models import Domain
from mailwarden.forwarding.models import Forward
from mailwarden.kernel.actor import Actor
from mailwarden.kernel.errors import (
    Conflict,
    LimitExceeded,
    NotFound,
    PermissionDenied,
    ValidationError,
)
from mailwarden.kernel.schemas import parse
from mailwarden.kernel.unit_of_work import ChangeKind, UnitOfWork
from mailwarden.mailboxes import service as mailboxes
from mailwarden.mailboxes.models import Mailbox, QuotaUsage
from mailwarden.mailboxes.schemas import MailboxCreate, MailboxUpdate
from mailwarden.maintenance import service as maintenance
from mailwarden.maintenance.service import Outcome, PurgeResult
from mailwarden.settings import Settings
from mailwarden.stack import maildirs
from mailwarden.vacation.models import Vacation
from tests.conftest import UowFactory
from tests.factories.world import GIB, PASSWORD, World

operator = Actor.local_operator()
GRACE = timedelta(hours=48)
AFTER_GRACE = timedelta(hours=49)


@pytest.fixture
def mail_root(tmp_path: Path) -> Path:
    root = tmp_path / "vmail"
    root.mkdir()
    return root


@pytest.fixture
def settings(tmp_path: Path, mail_root: Path) -> Settings:
    """The suite's settings, with a private mail root (conftest's points at /var/vmail)."""
    return Settings(data_dir=tmp_path, password_scheme="SHA256-CRYPT", mail_root=mail_root)


# --- helpers ---------------------------------------------------------------------------------


def deliver(mail_root: Path, maildir: str, messages: int = 2) -> Path:
    """A maildir with real files in it, the way Dovecot leaves one."""
    home = mail_root / maildir
    for sub in ("cur", "new", "tmp"):
        (home / "Maildir" / sub).mkdir(parents=True, exist_ok=True)
    for number in range(messages):
        (home / "Maildir" / "cur" / f"{number}.host:2,S").write_text(f"Subject: {number}\n\nhi\n")
    (home / "sieve").mkdir(exist_ok=True)
    (home / "sieve" / "vacation.sieve").write_text('require "vacation";\n')
    return home


def files_under(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


def remove(make_uow: UowFactory, address: str, actor: Actor = operator) -> None:
    with make_uow() as uow:
        mailboxes.remove(uow, actor, address)
        uow.finish()


def purge(
    make_uow: UowFactory,
    *,
    later: timedelta = AFTER_GRACE,
    dry_run: bool = False,
    actor: Actor = operator,
    settings_changes: dict[str, Any] | None = None,
    **options: Any,
) -> PurgeResult:
    with make_uow(dry_run=dry_run) as uow:
        if settings_changes:
            uow.settings = uow.settings.model_copy(update=settings_changes)
        result = maintenance.purge(uow, actor, now=utcnow() + later, **options)
        uow.finish()
    # Nothing is left for after the commit: each maildir is handled before its row goes.
    assert uow.follow_up_failures == []
    return result


def mailbox_row(uow: UnitOfWork, address: str) -> Mailbox | None:
    return uow.session.scalars(select(Mailbox).where(Mailbox.address == address)).one_or_none()


def purge_error_of(make_uow: UowFactory, address: str) -> str | None:
    """The stored reason of the last failed purge; KeyError when the row is gone."""
    with make_uow() as uow:
        row = mailbox_row(uow, address)
        if row is None:
            raise KeyError(address)
        return row.purge_error


def set_column(make_uow: UowFactory, address: str, **values: Any) -> None:
    """Write a column directly, the way an import or a hand edit could."""
    with make_uow() as uow:
        uow.session.execute(update(Mailbox).where(Mailbox.address == address).values(**values))
        uow.finish()


def census(make_uow: UowFactory) -> dict[str, Any]:
    """Every row mailwarden's purge could touch, read directly."""
    with make_uow() as uow:
        session = uow.session
        return {
            "mailboxes": sorted(
                (m.address, m.deleted_at, m.maildir, m.purge_error)
                for m in session.scalars(select(Mailbox))
            ),
            "domains": sorted(
                (d.name, d.active, d.deleted_at) for d in session.scalars(select(Domain))
            ),
            "quota_usage": sorted(session.scalars(select(QuotaUsage.username))),
            "vacations": sorted(session.scalars(select(Vacation.mailbox_id))),
            "forwards": sorted(session.scalars(select(Forward.mailbox_id))),
            "audit": session.scalar(select(func.count()).select_from(AuditEntry)),
        }


def actions_since(make_uow: UowFactory, newest: int) -> list[tuple[str, str]]:
    with make_uow() as uow:
        stmt = select(AuditEntry).where(AuditEntry.id > newest).order_by(AuditEntry.id)
        return [(e.action, e.object_key) for e in uow.session.scalars(stmt)]


def newest_audit_id(make_uow: UowFactory) -> int:
    with make_uow() as uow:
        return uow.session.scalar(select(func.max(AuditEntry.id))) or 0


def add_extras(make_uow: UowFactory, address: str) -> None:
    """Vacation, forwarding and Dovecot's usage row: what a purge must take along."""
    with make_uow() as uow:
        mailbox_id = uow.session.scalar(select(Mailbox.id).where(Mailbox.address == address))
        assert mailbox_id is not None
        uow.session.add_all(
            [
                Vacation(mailbox_id=mailbox_id, subject="Away", body="Back soon"),
                Forward(mailbox_id=mailbox_id, targets=["elsewhere@example.net"]),
                QuotaUsage(username=address, bytes=1234, messages=2),
            ]
        )
        uow.finish()


# --- remove ----------------------------------------------------------------------------------


def test_remove_hides_the_mailbox_from_lists_but_get_shows_when_it_will_be_purged(
    make_uow: UowFactory, world: World
) -> None:
    newest = newest_audit_id(make_uow)
    before = utcnow()
    with make_uow() as uow:
        shown = mailboxes.remove(uow, operator, "user1@a.example")
        plan = uow.finish()
    assert shown.removed_at is not None and before <= shown.removed_at <= utcnow()
    assert shown.purge_after == shown.removed_at + GRACE

    with make_uow() as uow:
        listed = [m.address for m in mailboxes.list_mailboxes(uow, operator).items]
        removed = mailboxes.list_mailboxes(uow, operator, removed=True).items
        got = mailboxes.get(uow, operator, "USER1@a.example")
        row = mailbox_row(uow, "user1@a.example")
        stored = None if row is None else row.deleted_at
    assert "user1@a.example" not in listed and "postmaster@a.example" in listed
    assert [m.address for m in removed] == ["user1@a.example"]
    assert (got.removed_at, got.purge_after) == (shown.removed_at, shown.purge_after)
    assert stored == shown.removed_at  # the row stays until the purge

    assert actions_since(make_uow, newest) == [("mailbox.remove", "user1@a.example")]
    assert (plan[0].kind, plan[0].key) == (ChangeKind.DELETE, "user1@a.example")
    assert plan[0].changes["purge_after"] == shown.purge_after.isoformat()
    assert plan[0].changes["maildir"] == "a.example/user1/"


def test_the_removed_listing_pages_by_address_like_the_others(
    make_uow: UowFactory, world: World
) -> None:
    with make_uow() as uow:
        for local in ("c", "a", "b"):
            data = parse(MailboxCreate, {"address": f"{local}@b.example"})
            mailboxes.create(uow, operator, data, password=PASSWORD)
        uow.finish()
    for local in ("c", "a", "b"):
        remove(make_uow, f"{local}@b.example")
    with make_uow() as uow:
        first = mailboxes.list_mailboxes(uow, operator, removed=True, limit=2)
        second = mailboxes.list_mailboxes(
            uow, operator, removed=True, limit=2, after=first.next_cursor
        )
        only_b = mailboxes.list_mailboxes(uow, operator, removed=True, search="b@")
    assert [m.address for m in first.items + second.items] == [
        "a@b.example",
        "b@b.example",
        "c@b.example",
    ]
    assert second.next_cursor is None
    assert [m.address for m in only_b.items] == ["b@b.example"]


def test_removed_mailboxes_do_not_count_against_the_domain_limits(
    make_uow: UowFactory, world: World
) -> None:
    with make_uow() as uow:
        usage = domains.show(uow, operator, "a.example")
    assert (usage.mailboxes, usage.allocated_quota_bytes) == (2, 2 * GIB)
    remove(make_uow, "user1@a.example")
    with make_uow() as uow:
        usage = domains.show(uow, operator, "a.example")
        domain = domains.get(uow, operator, "a.example")
        # The quota user1 held is free again: 9 GiB more fit next to postmaster's 1 GiB.
        domains.check_mailbox_quota(uow, domain, 9 * GIB)
    assert (usage.mailboxes, usage.allocated_quota_bytes) == (1, GIB)


def test_the_address_of_a_removed_mailbox_is_not_reused_before_the_purge(
    make_uow: UowFactory, world: World
) -> None:
    remove(make_uow, "user1@a.example")
    with make_uow() as uow, pytest.raises(Conflict) as caught:
        data = parse(MailboxCreate, {"address": "User1@a.example"})
        mailboxes.create(uow, operator, data, password=PASSWORD)
    assert (caught.value.field, caught.value.rule) == ("address", "pending_purge")
    assert "mailbox restore user1@a.example" in str(caught.value)
    assert "maintenance purge" in str(caught.value)


def test_an_alias_cannot_take_the_address_of_a_removed_mailbox(
    make_uow: UowFactory, world: World
) -> None:
    remove(make_uow, "user1@a.example")
    with make_uow() as uow, pytest.raises(Conflict) as caught:
        data = parse(AliasCreate, {"address": "user1@a.example", "targets": ["x@b.example"]})
        aliases.create(uow, operator, data)
    assert caught.value.rule == "pending_purge"


def test_a_removed_mailbox_cannot_be_edited_nor_removed_twice(
    make_uow: UowFactory, world: World
) -> None:
    remove(make_uow, "user1@a.example")
    state = census(make_uow)
    changes = [
        (
            lambda uow: mailboxes.update(uow, operator, "user1@a.example", MailboxUpdate(name="x")),
            "removed",
            "mailbox restore user1@a.example",
        ),
        (
            lambda uow: mailboxes.set_password(uow, operator, "user1@a.example", "a new secret"),
            "removed",
            "mailbox restore user1@a.example",
        ),
        (
            lambda uow: mailboxes.remove(uow, operator, "user1@a.example"),
            "already_removed",
            "may be purged after",
        ),
    ]
    for change, rule, hint in changes:
        with make_uow() as uow, pytest.raises(Conflict) as caught:
            change(uow)
        assert caught.value.rule == rule and hint in str(caught.value)
    assert census(make_uow) == state


# --- restore ---------------------------------------------------------------------------------


def test_restore_within_the_grace_period_brings_the_mailbox_back(
    make_uow: UowFactory, world: World
) -> None:
    remove(make_uow, "user1@a.example")
    newest = newest_audit_id(make_uow)
    with make_uow() as uow:
        restored = mailboxes.restore(uow, operator, "user1@a.example")
        plan = uow.finish()
    assert (restored.removed_at, restored.purge_after) == (None, None)
    with make_uow() as uow:
        listed = [m.address for m in mailboxes.list_mailboxes(uow, operator).items]
        assert mailboxes.list_mailboxes(uow, operator, removed=True).items == []
        assert domains.show(uow, operator, "a.example").mailboxes == 2
    assert "user1@a.example" in listed
    assert actions_since(make_uow, newest) == [("mailbox.restore", "user1@a.example")]
    assert plan[0].changes["removed_at"][1] is None


def test_restore_refuses_a_mailbox_that_is_not_removed(make_uow: UowFactory, world: World) -> None:
    with make_uow() as uow, pytest.raises(Conflict) as caught:
        mailboxes.restore(uow, operator, "user1@a.example")
    assert caught.value.rule == "not_removed"


def test_restore_after_the_grace_period_is_refused(make_uow: UowFactory, world: World) -> None:
    remove(make_uow, "user1@a.example")
    set_column(make_uow, "user1@a.example", deleted_at=utcnow() - AFTER_GRACE)
    state = census(make_uow)
    with make_uow() as uow, pytest.raises(Conflict) as caught:
        mailboxes.restore(uow, operator, "user1@a.example")
    assert caught.value.rule == "grace_expired"
    assert "maintenance purge" in str(caught.value)
    assert census(make_uow) == state


def _fill(make_uow: UowFactory, *addresses: str, quota: int | None = None) -> None:
    with make_uow() as uow:
        for address in addresses:
            values: dict[str, Any] = {"address": address}
            if quota is not None:
                values["quota_bytes"] = quota
            mailboxes.create(uow, operator, parse(MailboxCreate, values), password=PASSWORD)
        uow.finish()


def test_restore_rechecks_the_mailbox_limit(make_uow: UowFactory, world: World) -> None:
    # a.example allows 5 mailboxes: postmaster and four new ones fill it once user1 is removed.
    remove(make_uow, "user1@a.example")
    _fill(make_uow, *(f"new{n}@a.example" for n in range(4)))
    state = census(make_uow)
    with make_uow() as uow, pytest.raises(LimitExceeded) as caught:
        mailboxes.restore(uow, operator, "user1@a.example")
    assert caught.value.rule == "max_mailboxes"
    assert census(make_uow) == state


def test_restore_rechecks_the_domain_quota(make_uow: UowFactory, world: World) -> None:
    # a.example has 10 GiB: postmaster's 1 GiB and a new 9 GiB mailbox leave nothing for user1.
    remove(make_uow, "user1@a.example")
    _fill(make_uow, "big@a.example", quota=9 * GIB)
    state = census(make_uow)
    with make_uow() as uow, pytest.raises(LimitExceeded) as caught:
        mailboxes.restore(uow, operator, "user1@a.example")
    assert caught.value.rule == "domain_quota_exhausted"
    assert census(make_uow) == state


def test_a_dry_run_restore_changes_nothing(make_uow: UowFactory, world: World) -> None:
    remove(make_uow, "user1@a.example")
    state = census(make_uow)
    with make_uow(dry_run=True) as uow:
        mailboxes.restore(uow, operator, "user1@a.example")
        plan = uow.finish()
    assert [(c.kind, c.key) for c in plan] == [(ChangeKind.UPDATE, "user1@a.example")]
    assert census(make_uow) == state


# --- permissions -----------------------------------------------------------------------------


def test_a_domain_admin_removes_and_restores_only_in_its_own_domain(
    make_uow: UowFactory, world: World
) -> None:
    remove(make_uow, "user1@a.example", world.domain_admin)
    with make_uow() as uow:
        mailboxes.restore(uow, world.domain_admin, "user1@a.example")
        uow.finish()
    remove(make_uow, "user1@b.example")  # by the operator, so there is something to restore
    state = census(make_uow)
    for call in (mailboxes.remove, mailboxes.restore):
        with make_uow() as uow, pytest.raises(NotFound):
            call(uow, world.domain_admin, "user1@b.example")
        with make_uow() as uow, pytest.raises(NotFound):
            call(uow, world.domain_admin, "ghost@b.example")
    assert census(make_uow) == state


def test_a_domain_admin_does_not_see_foreign_removed_mailboxes(
    make_uow: UowFactory, world: World
) -> None:
    remove(make_uow, "user1@a.example")
    remove(make_uow, "user1@b.example")
    with make_uow() as uow:
        listed = mailboxes.list_mailboxes(uow, world.domain_admin, removed=True).items
    assert [m.address for m in listed] == ["user1@a.example"]


@pytest.mark.parametrize("persona", ["domain_admin", "outsider", "read_only_superadmin"])
def test_only_a_superadmin_purges(
    make_uow: UowFactory, world: World, mail_root: Path, persona: str
) -> None:
    if persona == "read_only_superadmin":
        actor = dataclasses.replace(world.superadmin, read_only=True)
    else:
        actor = getattr(world, persona)
    remove(make_uow, "user1@a.example")
    home = deliver(mail_root, "a.example/user1/")
    state = census(make_uow)
    with pytest.raises(PermissionDenied):
        purge(make_uow, actor=actor)
    assert census(make_uow) == state
    assert files_under(home) != []


# --- purge -----------------------------------------------------------------------------------


def test_purge_leaves_mailboxes_within_the_grace_period(
    make_uow: UowFactory, world: World, mail_root: Path
) -> None:
    remove(make_uow, "user1@a.example")
    home = deliver(mail_root, "a.example/user1/")
    state = census(make_uow)
    result = purge(make_uow, later=GRACE - timedelta(minutes=1))
    assert (result.purged, result.due, result.mailboxes) == (0, 0, [])
    assert census(make_uow) == state and files_under(home) != []


def test_purge_deletes_the_rows_what_hangs_on_them_and_the_maildir(
    make_uow: UowFactory, world: World, mail_root: Path
) -> None:
    add_extras(make_uow, "user1@a.example")
    add_extras(make_uow, "postmaster@a.example")
    remove(make_uow, "user1@a.example")
    home = deliver(mail_root, "a.example/user1/")
    neighbour = deliver(mail_root, "a.example/postmaster/")
    kept = files_under(neighbour)
    newest = newest_audit_id(make_uow)

    result = purge(make_uow)
    assert (result.purged, result.archived, result.failed) == (1, 0, 0)
    [entry] = result.mailboxes
    assert (entry.address, entry.outcome, entry.path) == (
        "user1@a.example",
        Outcome.DELETED,
        str(mail_root / "a.example" / "user1"),
    )
    assert not home.exists() and (mail_root / "a.example").is_dir()
    assert files_under(neighbour) == kept
    with make_uow() as uow:
        assert mailbox_row(uow, "user1@a.example") is None
        postmaster_id = uow.session.scalar(
            select(Mailbox.id).where(Mailbox.address == "postmaster@a.example")
        )
    after = census(make_uow)
    # The database removed the vacation and forwarding rows itself (ON DELETE CASCADE).
    assert after["vacations"] == after["forwards"] == [postmaster_id]
    assert after["quota_usage"] == ["postmaster@a.example"]
    assert actions_since(make_uow, newest) == [("mailbox.purge", "user1@a.example")]
    with make_uow() as uow:
        # Nothing may take the address until the purge; afterwards it is free again.
        data = parse(MailboxCreate, {"address": "user1@a.example"})
        assert mailboxes.create(uow, operator, data, password=PASSWORD).removed_at is None


def test_purge_is_fine_with_a_maildir_that_never_existed(
    make_uow: UowFactory, world: World
) -> None:
    remove(make_uow, "user1@a.example")
    result = purge(make_uow)
    assert [(e.address, e.outcome) for e in result.mailboxes] == [
        ("user1@a.example", Outcome.MISSING)
    ]


def test_purge_can_archive_the_maildir_readable_by_its_owner_only(
    make_uow: UowFactory, world: World, mail_root: Path, tmp_path: Path
) -> None:
    remove(make_uow, "user1@a.example")
    home = deliver(mail_root, "a.example/user1/", messages=3)
    archived_files = files_under(home)
    archive_dir = tmp_path / "archives"

    result = purge(
        make_uow,
        settings_changes={"removed_mail_action": "archive", "archive_dir": archive_dir},
    )
    assert (result.purged, result.archived, result.failed) == (1, 1, 0)
    [entry] = result.mailboxes
    assert entry.outcome is Outcome.ARCHIVED and entry.archive is not None
    archive = Path(entry.archive)
    assert archive.parent == archive_dir and archive.name.startswith("user1@a.example-")
    assert archive.name.endswith(".tar.gz")
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    assert stat.S_IMODE(archive_dir.stat().st_mode) == 0o700
    assert not home.exists()
    with tarfile.open(archive) as tar:
        names = sorted(tar.getnames())
        message = tar.extractfile("a.example/user1/Maildir/cur/0.host:2,S")
        assert message is not None and message.read() == b"Subject: 0\n\nhi\n"
    assert names == sorted(["a.example/user1"] + [f"a.example/user1/{f}" for f in archived_files])
    assert [p.name for p in archive_dir.iterdir()] == [archive.name]  # no partial file left


def test_a_second_archive_of_the_same_address_does_not_overwrite_the_first(
    make_uow: UowFactory, world: World, mail_root: Path, tmp_path: Path
) -> None:
    archive_dir = tmp_path / "archives"
    changes = {"removed_mail_action": "archive", "archive_dir": archive_dir}
    moment = utcnow() - AFTER_GRACE
    written = []
    for _ in range(2):
        with make_uow() as uow:
            data = parse(MailboxCreate, {"address": "again@b.example"})
            mailboxes.create(uow, operator, data, password=PASSWORD)
            uow.finish()
        remove(make_uow, "again@b.example")
        set_column(make_uow, "again@b.example", deleted_at=moment)
        deliver(mail_root, "b.example/again/")
        result = purge(make_uow, later=timedelta(0), settings_changes=changes)
        written.append(result.mailboxes[0].archive)
    assert len(set(written)) == 2 and all(Path(str(p)).is_file() for p in written)


@pytest.mark.parametrize(
    "maildir",
    [
        "../outside",
        "a.example/../../outside",
        "OUTSIDE_ABSOLUTE",
        "",
        ".",
        "./",
        "a.example/link-out/",
        "a.example/link-in/",
    ],
)
def test_purge_never_deletes_outside_the_mail_root_nor_through_links(
    make_uow: UowFactory, world: World, mail_root: Path, tmp_path: Path, maildir: str
) -> None:
    outside = tmp_path / "outside"
    (outside / "keep").mkdir(parents=True)
    (outside / "keep" / "precious").write_text("do not delete")
    neighbour = deliver(mail_root, "a.example/postmaster/")
    (mail_root / "a.example" / "link-out").symlink_to(outside)
    (mail_root / "a.example" / "link-in").symlink_to(neighbour)
    maildir = maildir.replace("OUTSIDE_ABSOLUTE", str(outside))
    before = {path: files_under(path) for path in (outside, mail_root)}

    remove(make_uow, "user1@a.example")
    set_column(make_uow, "user1@a.example", maildir=maildir)
    result = purge(make_uow)

    [entry] = result.mailboxes
    assert entry.outcome is Outcome.FAILED and entry.kept
    assert entry.error is not None and entry.error.startswith("maildir ")
    assert (result.failed, result.purged) == (1, 0)
    assert {path: files_under(path) for path in (outside, mail_root)} == before
    # The files stay, and so does the row that says whose they are.
    assert purge_error_of(make_uow, "user1@a.example") == entry.error


def test_purge_leaves_a_maildir_that_overlaps_another_mailbox(
    make_uow: UowFactory, world: World, mail_root: Path
) -> None:
    neighbour = deliver(mail_root, "a.example/postmaster/")
    kept = files_under(mail_root)
    remove(make_uow, "user1@a.example")
    # The domain's directory holds postmaster's maildir: deleting it would delete that mail.
    set_column(make_uow, "user1@a.example", maildir="a.example/")
    result = purge(make_uow)
    [entry] = result.mailboxes
    assert entry.outcome is Outcome.FAILED and "postmaster@a.example" in str(entry.error)
    assert files_under(mail_root) == kept and neighbour.is_dir()
    with make_uow() as uow:
        assert mailbox_row(uow, "user1@a.example") is not None


def test_purge_refuses_to_start_without_the_mail_root(
    make_uow: UowFactory, world: World, tmp_path: Path
) -> None:
    remove(make_uow, "user1@a.example")
    state = census(make_uow)
    with pytest.raises(Conflict) as caught:
        purge(make_uow, settings_changes={"mail_root": tmp_path / "not-the-mail-host"})
    assert (caught.value.field, caught.value.rule) == ("mail_root", "unusable")
    assert census(make_uow) == state


def test_purge_refuses_to_start_when_archives_cannot_be_written(
    make_uow: UowFactory, world: World, tmp_path: Path, mail_root: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    remove(make_uow, "user1@a.example")
    home = deliver(mail_root, "a.example/user1/")
    state = census(make_uow)
    with pytest.raises(Conflict) as caught:
        purge(
            make_uow,
            settings_changes={"removed_mail_action": "archive", "archive_dir": blocker / "x"},
        )
    assert (caught.value.field, caught.value.rule) == ("archive_dir", "unusable")
    assert census(make_uow) == state and files_under(home) != []


def test_a_dry_run_purge_lists_what_would_go_and_touches_nothing(
    make_uow: UowFactory, world: World, mail_root: Path
) -> None:
    add_extras(make_uow, "user1@a.example")
    remove(make_uow, "user1@a.example")
    remove(make_uow, "user1@b.example")
    deliver(mail_root, "a.example/user1/")
    files = files_under(mail_root)
    state = census(make_uow)

    result = purge(make_uow, dry_run=True)

    assert result.dry_run
    assert [(e.address, e.outcome) for e in result.mailboxes] == [
        ("user1@a.example", Outcome.WOULD_DELETE),
        ("user1@b.example", Outcome.MISSING),
    ]
    assert census(make_uow) == state
    assert files_under(mail_root) == files

    archive = {"removed_mail_action": "archive"}
    result = purge(make_uow, dry_run=True, settings_changes=archive)
    assert result.mailboxes[0].outcome is Outcome.WOULD_ARCHIVE
    assert census(make_uow) == state and files_under(mail_root) == files
    assert not (mail_root.parent / "archive").exists()


def test_purge_walks_a_backlog_in_bounded_calls(
    make_uow: UowFactory, world: World, mail_root: Path
) -> None:
    _fill(make_uow, *(f"m{n}@b.example" for n in range(5)))
    for n in range(5):
        remove(make_uow, f"m{n}@b.example")
        deliver(mail_root, f"b.example/m{n}/", messages=1)

    # A dry run continues after the cursor, although its rows come back after each rollback.
    seen: list[str] = []
    cursor = None
    while True:
        result = purge(make_uow, dry_run=True, limit=2, after=cursor)
        seen += [e.address for e in result.mailboxes]
        if result.next_after is None:
            break
        cursor = result.next_after
    assert seen == [f"m{n}@b.example" for n in range(5)]

    progress: list[tuple[int, str]] = []
    first = purge(make_uow, limit=3, progress=lambda r, e: progress.append((r.due, e.address)))
    assert first.purged == 3 and first.next_after is not None and first.due == 5
    second = purge(make_uow, limit=3, after=first.next_after)
    assert second.purged == 2 and second.next_after is None and second.due == 2
    assert progress == [(5, f"m{n}@b.example") for n in range(3)]
    assert list((mail_root / "b.example").iterdir()) == []


def test_purge_validates_its_arguments(make_uow: UowFactory, world: World) -> None:
    for options in ({"limit": 0}, {"limit": maintenance.MAX_PURGE_LIMIT + 1}):
        with pytest.raises(ValidationError) as caught:
            purge(make_uow, **options)
        assert caught.value.field == "limit"
    with make_uow() as uow, pytest.raises(ValidationError) as caught:
        maintenance.purge(uow, operator, now=utcnow().replace(tzinfo=None))
    assert caught.value.rule == "naive_datetime"


def test_purge_leaves_the_domain_in_place(make_uow: UowFactory, world: World) -> None:
    remove(make_uow, "user1@b.example")
    purge(make_uow)
    with make_uow() as uow:
        assert uow.session.scalar(select(Domain.id).where(Domain.name == "b.example"))
        assert domains.show(uow, operator, "b.example").mailboxes == 0


# --- a maildir that cannot be handled keeps its mailbox ---------------------------------------


class Freezer:
    """Directories that refuse changes, the way a read-only mount or a foreign owner does.

    As root (who ignores permission bits) through the immutable attribute, otherwise through
    the mode; a test is skipped where neither works. Everything frozen is thawed at the end.
    """

    def __init__(self) -> None:
        self.frozen: list[Path] = []

    def freeze(self, path: Path) -> None:
        if os.geteuid() != 0:
            path.chmod(0o555)
        else:
            try:
                done = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
            except FileNotFoundError:
                pytest.skip("chattr is not installed")
            if done.returncode != 0:
                pytest.skip(f"no immutable attribute here: {done.stderr.strip()}")
        self.frozen.append(path)

    def thaw(self, path: Path) -> None:
        if os.geteuid() != 0:
            path.chmod(0o755)
        else:
            subprocess.run(["chattr", "-i", str(path)], check=True)
        self.frozen.remove(path)


@pytest.fixture
def freezer() -> Iterator[Freezer]:
    freezer = Freezer()
    yield freezer
    for path in list(freezer.frozen):
        freezer.thaw(path)


def create_mailbox(make_uow: UowFactory, address: str, **settings_changes: Any) -> None:
    with make_uow() as uow:
        if settings_changes:
            uow.settings = uow.settings.model_copy(update=settings_changes)
        mailboxes.create(
            uow, operator, parse(MailboxCreate, {"address": address}), password=PASSWORD
        )
        uow.finish()


def test_a_maildir_that_cannot_be_deleted_keeps_its_mailbox_until_a_purge_succeeds(
    make_uow: UowFactory, world: World, mail_root: Path, freezer: Freezer
) -> None:
    remove(make_uow, "user1@a.example")
    remove(make_uow, "user1@b.example")
    home = deliver(mail_root, "a.example/user1/")
    deliver(mail_root, "b.example/user1/")
    freezer.freeze(home / "Maildir" / "cur")
    old_mail = files_under(home / "Maildir" / "cur")
    newest = newest_audit_id(make_uow)

    result = purge(make_uow)

    failed, purged = result.mailboxes
    assert (failed.address, failed.outcome) == ("user1@a.example", Outcome.FAILED)
    assert "could not be deleted completely" in str(failed.error)
    assert (purged.address, purged.outcome) == ("user1@b.example", Outcome.DELETED)
    assert (result.purged, result.failed) == (1, 1)
    assert purge_error_of(make_uow, "user1@a.example") == failed.error
    assert files_under(home / "Maildir" / "cur") == old_mail
    assert actions_since(make_uow, newest) == [
        ("mailbox.purge_failed", "user1@a.example"),
        ("mailbox.purge", "user1@b.example"),
    ]
    with make_uow() as uow:
        listed = mailboxes.list_mailboxes(uow, operator, removed=True).items
    assert [m.address for m in listed] == ["user1@a.example"]
    # The address stays taken: a new mailbox there would find the old mail in its maildir.
    with pytest.raises(Conflict) as caught:
        create_mailbox(make_uow, "user1@a.example")
    assert caught.value.rule == "pending_purge"

    freezer.thaw(home / "Maildir" / "cur")
    again = purge(make_uow)

    [entry] = again.mailboxes
    assert (entry.address, entry.outcome) == ("user1@a.example", Outcome.DELETED)
    assert entry.previous_error == failed.error
    assert not home.exists()
    with pytest.raises(KeyError):
        purge_error_of(make_uow, "user1@a.example")
    create_mailbox(make_uow, "user1@a.example")


def test_a_dry_run_reports_the_failure_to_come_and_stores_nothing(
    make_uow: UowFactory, world: World, mail_root: Path
) -> None:
    remove(make_uow, "user1@a.example")
    (mail_root / "a.example").mkdir()
    (mail_root / "a.example" / "user1").symlink_to(mail_root)
    state = census(make_uow)
    result = purge(make_uow, dry_run=True)
    [entry] = result.mailboxes
    assert entry.outcome is Outcome.WOULD_FAIL and "symbolic link" in str(entry.error)
    assert (result.purged, result.failed) == (0, 1)
    assert census(make_uow) == state


def test_a_mailbox_restored_while_its_maildir_was_handled_keeps_its_row(
    make_uow: UowFactory, world: World, mail_root: Path
) -> None:
    remove(make_uow, "user1@a.example")

    def restore_meanwhile(_result: PurgeResult, entry: Any) -> None:
        # Another session changes the row between the disk work and the purge's write.
        set_column(make_uow, entry.address, deleted_at=None)

    result = purge(make_uow, progress=restore_meanwhile)

    [entry] = result.mailboxes
    assert entry.outcome is Outcome.FAILED and "changed while its maildir" in str(entry.error)
    with make_uow() as uow:
        row = mailbox_row(uow, "user1@a.example")
        assert row is not None and (row.deleted_at, row.purge_error) == (None, None)


def test_a_purge_interrupted_before_its_commit_is_finished_by_the_next_one(
    make_uow: UowFactory, world: World, mail_root: Path
) -> None:
    remove(make_uow, "user1@a.example")
    home = deliver(mail_root, "a.example/user1/")
    with make_uow() as uow:
        maintenance.purge(uow, operator, now=utcnow() + AFTER_GRACE)
        # No finish(): the transaction is rolled back, as after a crash or a lost database.
    assert not home.exists()
    with make_uow() as uow:
        assert mailbox_row(uow, "user1@a.example") is not None

    result = purge(make_uow)

    assert [(e.address, e.outcome) for e in result.mailboxes] == [
        ("user1@a.example", Outcome.MISSING)
    ]
    with pytest.raises(KeyError):
        purge_error_of(make_uow, "user1@a.example")


def test_an_archive_written_before_an_interruption_is_named_and_never_overwritten(
    make_uow: UowFactory, world: World, mail_root: Path, tmp_path: Path
) -> None:
    archive_dir = tmp_path / "archives"
    changes = {"removed_mail_action": "archive", "archive_dir": archive_dir}
    remove(make_uow, "user1@a.example")
    deliver(mail_root, "a.example/user1/")
    with make_uow() as uow:
        uow.settings = uow.settings.model_copy(update=changes)
        interrupted = maintenance.purge(uow, operator, now=utcnow() + AFTER_GRACE)
    [written] = list(archive_dir.iterdir())
    assert interrupted.mailboxes[0].archive == str(written)
    content = written.read_bytes()

    result = purge(make_uow, settings_changes=changes)

    [entry] = result.mailboxes
    assert (entry.outcome, entry.archive) == (Outcome.MISSING, str(written))
    assert list(archive_dir.iterdir()) == [written] and written.read_bytes() == content


def test_a_dry_run_purge_refuses_where_the_real_one_would(
    make_uow: UowFactory, world: World, tmp_path: Path
) -> None:
    remove(make_uow, "user1@a.example")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    for changes, field in (
        ({"mail_root": tmp_path / "not-the-mail-host"}, "mail_root"),
        ({"removed_mail_action": "archive", "archive_dir": blocker / "x"}, "archive_dir"),
    ):
        for dry_run in (True, False):
            with pytest.raises(Conflict) as caught:
                purge(make_uow, dry_run=dry_run, settings_changes=changes)
            assert (caught.value.field, caught.value.rule) == (field, "unusable")


def test_archiving_reports_an_archive_directory_that_refuses_files(
    mail_root: Path, tmp_path: Path, freezer: Freezer
) -> None:
    home = deliver(mail_root, "a.example/user1/")
    kept = files_under(home)
    archive_dir = tmp_path / "archives"
    archive_dir.mkdir()
    freezer.freeze(archive_dir)
    with pytest.raises(maildirs.MaildirError) as caught:
        maildirs.archive(mail_root, "a.example/user1/", archive_dir, "user1@a.example-x")
    assert caught.value.what == f"maildir {home}"
    assert "could not be archived" in caught.value.reason
    assert caught.value.reason.endswith("left in place")
    assert files_under(home) == kept and list(archive_dir.iterdir()) == []


# --- a new mailbox never inherits mail ----------------------------------------------------------


def test_create_refuses_a_maildir_that_already_holds_files(
    make_uow: UowFactory, world: World, mail_root: Path, tmp_path: Path
) -> None:
    deliver(mail_root, "b.example/fresh/")
    state = census(make_uow)
    with pytest.raises(Conflict) as caught:
        create_mailbox(make_uow, "fresh@b.example")
    assert (caught.value.field, caught.value.rule) == ("address", "maildir_exists")
    assert "b.example/fresh/" in str(caught.value) and str(mail_root) not in str(caught.value)
    assert census(make_uow) == state

    # Where the mail root is not on this host, there is nothing to see: no refusal.
    create_mailbox(make_uow, "fresh@b.example", mail_root=tmp_path / "elsewhere")
    # An empty directory holds no one's mail.
    (mail_root / "b.example" / "empty").mkdir()
    create_mailbox(make_uow, "empty@b.example")


# --- the overlap check ------------------------------------------------------------------------


def test_the_overlap_check_has_an_index_on_maildir(engine: Engine) -> None:
    indexes = inspect(engine).get_indexes("mailboxes")
    assert ["maildir"] in [index["column_names"] for index in indexes]


@pytest.mark.parametrize(
    ("other", "overlaps"),
    [
        ("a.example/user1/", True),
        ("a.example/user1", True),
        ("a.example/user1/inner/", True),
        ("a.example/", True),
        ("a.example", True),
        ("a.example/user10/", False),
        ("a.example/user1.old/", False),
        ("a.example/user1-x/inner/", False),
        # Another directory on disk: only a case-insensitive collation would confuse them.
        ("a.example/USER1/inner/", False),
    ],
)
def test_the_overlap_check_finds_maildirs_above_and_inside_but_not_beside(
    make_uow: UowFactory, world: World, mail_root: Path, other: str, overlaps: bool
) -> None:
    remove(make_uow, "user1@a.example")
    home = deliver(mail_root, "a.example/user1/")
    set_column(make_uow, "postmaster@a.example", maildir=other)
    [entry] = purge(make_uow).mailboxes
    if overlaps:
        assert entry.outcome is Outcome.FAILED and "postmaster@a.example" in str(entry.error)
        assert home.is_dir()
    else:
        assert entry.outcome is Outcome.DELETED and not home.exists()


# --- domain remove --cascade ------------------------------------------------------------------


def domain_row(make_uow: UowFactory, name: str) -> tuple[bool, Any] | None:
    """(active, deleted_at) of a domain read directly, or None once it is gone."""
    with make_uow() as uow:
        domain = uow.session.scalars(select(Domain).where(Domain.name == name)).one_or_none()
        return None if domain is None else (domain.active, domain.deleted_at)


def test_cascade_stops_the_domain_now_and_the_purge_deletes_it_with_its_last_mailbox(
    make_uow: UowFactory, world: World, mail_root: Path
) -> None:
    with make_uow() as uow:
        alias_domains.create(
            uow,
            operator,
            parse(
                AliasDomainCreate, {"alias_domain": "alias-a.example", "target_domain": "a.example"}
            ),
        )
        uow.finish()
    homes = [deliver(mail_root, f"a.example/{local}/") for local in ("user1", "postmaster")]
    newest = newest_audit_id(make_uow)

    with make_uow() as uow:
        removal = domains.remove(uow, operator, "a.example", cascade=True)
        uow.finish()

    assert not removal.deleted
    assert (removal.mailboxes_removed, removal.aliases, removal.alias_domains) == (
        2,
        1,
        ["alias-a.example"],
    )
    assert removal.removed_at is not None and removal.purge_after == removal.removed_at + GRACE
    assert domain_row(make_uow, "a.example") == (False, removal.removed_at)
    assert actions_since(make_uow, newest) == [
        ("domain.delete", "a.example"),
        ("mailbox.remove", "*@a.example"),
    ]
    with make_uow() as uow:
        removed = mailboxes.list_mailboxes(uow, operator, removed=True, domain="a.example")
        assert {m.removed_at for m in removed.items} == {removal.removed_at}
        assert len(removed.items) == 2
        assert aliases.list_aliases(uow, operator, domain="b.example").items != []
        assert domains.show(uow, operator, "a.example").aliases == 0
        assert alias_domains.list_alias_domains(uow, operator).items == []
    assert all(home.is_dir() for home in homes)  # the mail stays for the grace period

    refusals = [
        (lambda uow: mailboxes.restore(uow, operator, "user1@a.example"), "domain_removed"),
        (
            lambda uow: mailboxes.create(
                uow, operator, parse(MailboxCreate, {"address": "new@a.example"}), password=PASSWORD
            ),
            "domain_removed",
        ),
        (lambda uow: domains.remove(uow, operator, "a.example", cascade=True), "already_removed"),
    ]
    state = census(make_uow)
    for change, rule in refusals:
        with make_uow() as uow, pytest.raises(Conflict) as caught:
            change(uow)
        assert caught.value.rule == rule
    assert census(make_uow) == state

    assert purge(make_uow, later=GRACE - timedelta(minutes=1)).mailboxes == []
    assert domain_row(make_uow, "a.example") is not None

    result = purge(make_uow)

    assert result.purged == 2 and result.domains == ["a.example"]
    assert not any(home.exists() for home in homes)
    assert domain_row(make_uow, "a.example") is None
    assert actions_since(make_uow, newest)[-1] == ("domain.purge", "a.example")
    with make_uow() as uow, pytest.raises(NotFound):
        # The domain admin of a.example lost the domain with it.
        domains.get(uow, world.domain_admin, "a.example")


def test_a_removed_domain_waits_for_a_mailbox_whose_maildir_failed(
    make_uow: UowFactory, world: World, mail_root: Path, freezer: Freezer
) -> None:
    home = deliver(mail_root, "b.example/user1/")
    freezer.freeze(home / "Maildir" / "cur")
    with make_uow() as uow:
        domains.remove(uow, operator, "b.example", cascade=True)
        uow.finish()
    first = purge(make_uow)
    assert (first.failed, first.domains) == (1, [])
    assert domain_row(make_uow, "b.example") is not None

    freezer.thaw(home / "Maildir" / "cur")
    second = purge(make_uow)
    assert (second.purged, second.domains) == (1, ["b.example"])
    assert domain_row(make_uow, "b.example") is None


def test_cascade_on_a_domain_with_only_removed_mailboxes_leaves_it_to_the_purge(
    make_uow: UowFactory, world: World, mail_root: Path
) -> None:
    with make_uow() as uow:
        aliases.remove(uow, operator, "info@b.example")
        uow.finish()
    remove(make_uow, "user1@b.example")
    with make_uow() as uow, pytest.raises(Conflict) as caught:
        domains.remove(uow, operator, "b.example")
    assert caught.value.rule == "pending_purge" and "cascade" in str(caught.value)

    with make_uow() as uow:
        removal = domains.remove(uow, operator, "b.example", cascade=True)
        uow.finish()
    assert (removal.deleted, removal.mailboxes_removed, removal.mailboxes_pending) == (False, 0, 1)
    assert domain_row(make_uow, "b.example") == (False, removal.removed_at)

    assert purge(make_uow).domains == ["b.example"]
    assert domain_row(make_uow, "b.example") is None


def test_a_dry_run_cascade_and_purge_change_nothing(
    make_uow: UowFactory, world: World, mail_root: Path
) -> None:
    state = census(make_uow)
    with make_uow(dry_run=True) as uow:
        removal = domains.remove(uow, operator, "a.example", cascade=True)
        uow.finish()
    assert removal.mailboxes_removed == 2
    assert census(make_uow) == state and domain_row(make_uow, "a.example") == (True, None)

    with make_uow() as uow:
        domains.remove(uow, operator, "a.example", cascade=True)
        uow.finish()
    state = census(make_uow)
    result = purge(make_uow, dry_run=True)
    assert result.domains == ["a.example"] and result.purged == 2
    assert census(make_uow) == state and domain_row(make_uow, "a.example") is not None
