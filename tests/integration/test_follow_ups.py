"""Host work queued after commit: it never runs on a dry run, and one failure stops nothing."""

from __future__ import annotations

from mailwarden.kernel.errors import FollowUpFailed
from tests.conftest import UowFactory


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
