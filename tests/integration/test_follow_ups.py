"""Host work queued after commit: it never runs on a dry run, and one failure stops nothing."""

from __future__ import annotations

from pathlib import Path

from mailwarden.kernel.errors import FollowUpFailed
from mailwarden.mailboxes import service as mailboxes
from mailwarden.settings import Settings
from tests.conftest import UowFactory
from tests.factories.world import World
from tests.support.services import require_tool


def test_every_follow_up_runs_and_every_failure_is_reported(make_uow: UowFactory) -> None:
    ran: list[str] = []

    def refused() -> None:
        ran.append("refused")
        raise FollowUpFailed("sieve upload for a@example.org", "connection refused")

    def crashed() -> None:
        ran.append("crashed")
        raise PermissionError(13, "Permission denied", "/var/vmail/example.org/a")

    with make_uow() as uow:
        for operation in (refused, crashed, lambda: ran.append("last")):
            uow.after_commit(operation)
        uow.finish()

    assert ran == ["refused", "crashed", "last"]
    reasons = [failure.reason for failure in uow.follow_up_failures]
    assert reasons[0] == "connection refused"
    assert reasons[1].startswith("PermissionError: ") and "/var/vmail/example.org/a" in reasons[1]
    assert "crashed" in uow.follow_up_failures[1].what


def test_a_dry_run_runs_no_follow_up(make_uow: UowFactory) -> None:
    ran: list[str] = []
    with make_uow(dry_run=True) as uow:
        uow.after_commit(lambda: ran.append("host work"))
        uow.finish()
    assert ran == []
    assert uow.follow_up_failures == []


def test_a_kick_that_cannot_reach_dovecot_is_reported_and_the_removal_stands(
    make_uow: UowFactory, world: World, settings: Settings, tmp_path: Path
) -> None:
    require_tool("doveadm", "dovecot-core")
    with make_uow() as uow:
        uow.settings = settings.model_copy(update={"doveadm_config": tmp_path / "missing.conf"})
        mailboxes.remove(uow, world.superadmin, "user1@a.example")
        uow.finish()
    [failure] = uow.follow_up_failures
    assert failure.what == "ending the open sessions of user1@a.example"
    assert "doveadm kick exited" in failure.reason
    with make_uow() as uow:
        assert mailboxes.get(uow, world.superadmin, "user1@a.example").removed_at is not None
