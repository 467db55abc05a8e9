"""The mail queue against the running stack's Postfix, reached locally and over SSH: a message
for a domain that only the stack's unreachable relay (127.0.0.1:9) could take stays deferred;
it is listed, shown, held, released, requeued and deleted through the real CLI, the API and
the console, and hostile queue ids are refused before any command runs.

The stack is shared with the other e2e tests: every check looks at this test's own message
(found by its unique recipient), never at the whole queue.
"""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from mailwarden.admins import service as admins
from mailwarden.admins.models import Admin
from mailwarden.admins.schemas import AdminCreate
from mailwarden.api.app import create_app
from mailwarden.apikeys import service as apikeys
from mailwarden.apikeys.schemas import ApiKeyCreate
from mailwarden.audit import service as audit
from mailwarden.kernel.actor import Role
from mailwarden.kernel.schemas import parse
from mailwarden.queue import service as queue_service
from mailwarden.stack.devstack.instance import StackLayout
from mailwarden.websessions import service as websessions
from mailwarden.websessions.service import SessionKind

from .conftest import MailStack, StackHost, run_mailwarden, stack_environment
from .mail import poll

HOSTILE_IDS = [
    "ALL",
    "-",
    "--",
    "ABC; rm -rf /",
    "../x",
    "8E6B72\u00c9C005",
    "8E6B720C005\x00",
    "A" * 10_000,
    "",
    "-d",
    "8e6b720c005",
]
DEFER_TIMEOUT = 60.0
SCRIPT = "<script>alert(1)</script>"


@dataclass(frozen=True)
class Deferred:
    """This test's message: found in the queue by its recipient, deferred there."""

    host: StackHost
    queue_id: str
    sender: str
    recipient: str
    subject: str

    @property
    def stack(self) -> MailStack:
        return self.host.stack


def queue_records(stack: MailStack) -> list[dict[str, Any]]:
    """The queue as Postfix tells it, read beside the code under test."""
    postfix_dir = str(StackLayout.at(stack.dir).postfix_dir)
    done = subprocess.run(
        ["/usr/sbin/postqueue", "-c", postfix_dir, "-j"],
        capture_output=True,
        check=True,
        timeout=30,
    )
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def record_for(stack: MailStack, recipient: str) -> dict[str, Any] | None:
    for record in queue_records(stack):
        if any(r["address"] == recipient for r in record["recipients"]):
            return record
    return None


def state_of(message: Deferred) -> tuple[str, str] | None:
    """(queue id, queue name) of the message now; requeueing may give it a new id."""
    record = record_for(message.stack, message.recipient)
    return (record["queue_id"], record["queue_name"]) if record else None


def make_deferred(stack_host: StackHost, sender: str | None = None) -> Deferred:
    stack = stack_host.stack
    tag = uuid.uuid4().hex[:10]
    recipient = f"someone@closed-{tag}.example"
    sender = sender or f"queue-{tag}@sender.example"
    subject = f"Queue test {tag}"
    stack.mail.send(sender, [recipient], subject)

    def deferred() -> dict[str, Any] | None:
        record = record_for(stack, recipient)
        if record and record["queue_name"] == "deferred":
            return record
        return None

    record = poll(deferred, DEFER_TIMEOUT, f"a deferred message for {recipient}")
    return Deferred(stack_host, record["queue_id"], sender, recipient, subject)


@pytest.fixture
def deferred(stack_host: StackHost) -> Iterator[Deferred]:
    message = make_deferred(stack_host)
    yield message
    _delete_leftover(message)


def _delete_leftover(message: Deferred) -> None:
    left = state_of(message)
    if left is not None:
        postfix_dir = str(StackLayout.at(message.stack.dir).postfix_dir)
        subprocess.run(
            ["/usr/sbin/postsuper", "-c", postfix_dir, "-d", left[0]],
            capture_output=True,
            check=False,
            timeout=30,
        )


def audit_actions(stack: MailStack, host: str) -> list[str]:
    page = stack.run(
        lambda uow, actor: audit.list_entries(
            uow, actor, object_type="queue", object_key=host, limit=100
        )
    )
    return [entry.action for entry in page.items]


def delete_wherever(message: Deferred, delete: Callable[[str], list[dict[str, Any]]]) -> None:
    """Delete the message by the id it has now: after a requeue, pickup gives it a new id,
    possibly between looking it up and deleting it (then the delete says not_found, or
    in_transit while the message waits in maildrop: retry)."""

    def attempt() -> bool | None:
        now = state_of(message)
        if now is None:
            return True
        items = delete(now[0])
        return True if items[0]["outcome"] == "deleted" else None

    poll(attempt, DEFER_TIMEOUT, "the requeued message deleted")
    assert state_of(message) is None


# --- a message still in the maildrop queue ------------------------------------------------------


def pickup_processes(postfix_dir: Path) -> list[int]:
    """This instance's pickup daemons: master hands its MAIL_CONFIG to every child."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            name = (entry / "comm").read_text().strip()
            environment = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if name == "pickup" and f"MAIL_CONFIG={postfix_dir}".encode() in environment:
            found.append(int(entry.name))
    return found


def reload_postfix(postfix_dir: Path) -> None:
    subprocess.run(
        ["/usr/sbin/postfix", "-c", str(postfix_dir), "reload"],
        capture_output=True,
        check=True,
        timeout=30,
    )


@contextmanager
def pickup_stopped(stack: MailStack) -> Iterator[Path]:
    """The stack's Postfix without its pickup service, so that mail dropped into maildrop stays
    there (the stack is this worker's alone, one test at a time); restored afterwards."""
    postfix_dir = StackLayout.at(stack.dir).postfix_dir
    master_cf = postfix_dir / "master.cf"
    saved = master_cf.read_text()
    try:
        subprocess.run(
            ["/usr/sbin/postconf", "-c", str(postfix_dir), "-M#", "pickup/unix"],
            capture_output=True,
            check=True,
            timeout=30,
        )
        reload_postfix(postfix_dir)
        poll(
            lambda: True if not pickup_processes(postfix_dir) else None,
            DEFER_TIMEOUT,
            "pickup to stop after the reload",
        )
        yield postfix_dir
    finally:
        master_cf.write_text(saved)
        reload_postfix(postfix_dir)


@pytest.mark.parametrize("stack_host", ["local"], indirect=True)
def test_a_message_still_in_maildrop_is_reported_in_transit_and_left_alone(
    stack_host: StackHost,
) -> None:
    """postsuper does not act on maildrop, and pickup gives such a message a new id: deleting
    it by its maildrop id must not report a delete while the message lives on."""
    stack, host = stack_host.stack, stack_host.name
    tag = uuid.uuid4().hex[:10]
    message = Deferred(
        stack_host,
        queue_id="",
        sender=f"maildrop-{tag}@sender.example",
        recipient=f"someone@closed-{tag}.example",
        subject=f"Maildrop test {tag}",
    )
    with pickup_stopped(stack) as postfix_dir:
        subprocess.run(
            ["/usr/sbin/sendmail", "-C", str(postfix_dir), "-f", message.sender, message.recipient],
            input=f"Subject: {message.subject}\n\nStill in maildrop.\n".encode(),
            capture_output=True,
            check=True,
            timeout=30,
        )
        queue_id, queue_name = poll(
            lambda: state_of(message), DEFER_TIMEOUT, "the message listed in maildrop"
        )
        assert queue_name == "maildrop"

        for dry_run in (True, False):
            result = stack.run(
                lambda uow, actor: queue_service.delete(uow, actor, host, [queue_id]),
                dry_run=dry_run,
            )
            (item,) = result.items
            assert (item.before, item.after, item.outcome) == ("maildrop", None, "in_transit")
        assert state_of(message) == (queue_id, "maildrop"), "nothing was done to it"
        assert "queue.delete" not in audit_actions(stack, host)

    # With pickup back, the message gets a new id; then it can be deleted for real.
    moved = poll(
        lambda: now if (now := state_of(message)) and now[1] != "maildrop" else None,
        DEFER_TIMEOUT,
        "pickup to take the message",
    )
    assert moved[0] != queue_id
    delete_wherever(
        message,
        lambda queue_id: [
            item.model_dump()
            for item in stack.run(
                lambda uow, actor: queue_service.delete(uow, actor, host, [queue_id])
            ).items
        ],
    )


# --- CLI --------------------------------------------------------------------------------------


def test_cli_lists_shows_holds_releases_requeues_and_deletes_a_deferred_message(
    deferred: Deferred,
) -> None:
    stack, host = deferred.stack, deferred.host.name
    environment = stack_environment(stack.database_url, stack.dir)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return run_mailwarden(environment, "queue", *args)

    listed = cli("list", "--host", host, "--recipient", deferred.recipient, "--json")
    assert listed.returncode == 0, listed.stderr
    (item,) = json.loads(listed.stdout)
    assert item["id"] == deferred.queue_id
    assert item["queue"] == "deferred"
    assert item["sender"] == deferred.sender
    assert item["recipients"][0]["address"] == deferred.recipient
    assert "127.0.0.1" in item["recipients"][0]["reason"]
    assert item["size"] > 0 and item["age_seconds"] >= 0
    # Filters: another queue, another sender, a reason that is not there.
    for option, value in (("--queue", "hold"), ("--sender", "nobody-"), ("--older-than", "1d")):
        other = cli("list", "--host", host, "--recipient", deferred.recipient, option, value)
        assert other.returncode == 0, other.stderr
        assert deferred.queue_id not in other.stdout
    table = cli("list", "--host", host, "--sender", deferred.sender, "--queue", "deferred")
    assert table.returncode == 0, table.stderr
    assert deferred.queue_id in table.stdout and "deferred" in table.stdout

    shown = cli("show", deferred.queue_id, "--host", host, "--json")
    assert shown.returncode == 0, shown.stderr
    headers = {h["name"]: h["value"] for h in json.loads(shown.stdout)["headers"]}
    assert headers["Subject"] == deferred.subject
    assert "Hello from the e2e suite" not in shown.stdout  # never the body

    dry = cli("hold", deferred.queue_id, "--host", host, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would_hold" in dry.stdout
    assert state_of(deferred) == (deferred.queue_id, "deferred")

    for action, expected_queue, outcome in (
        ("hold", "hold", "held"),
        ("release", "deferred", "released"),
    ):
        done = cli(action, deferred.queue_id, "--host", host, "--json")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["items"][0]["outcome"] == outcome
        assert state_of(deferred) == (deferred.queue_id, expected_queue)

    # One id in the queue and one not: each is reported, the batch is not refused whole.
    missing = "ABCDEF12345"
    requeued = cli("requeue", deferred.queue_id, missing, "--host", host, "--json")
    assert requeued.returncode == 1
    outcomes = {i["id"]: i["outcome"] for i in json.loads(requeued.stdout)["items"]}
    assert outcomes == {deferred.queue_id: "requeued", missing: "not_found"}

    def delete(queue_id: str) -> list[dict[str, Any]]:
        done = cli("delete", queue_id, "--host", host, "--json")
        items: list[dict[str, Any]] = json.loads(done.stdout)["items"]
        return items

    delete_wherever(deferred, delete)
    empty = cli("list", "--host", host, "--recipient", deferred.recipient, "--json")
    assert json.loads(empty.stdout) == []

    actions = audit_actions(stack, host)
    for action in ("queue.hold", "queue.release", "queue.requeue", "queue.delete"):
        assert action in actions


# Ids are refused before any host is reached, so one transport proves it; the API test below
# runs over both, and every id that passes is proven over SSH by the flow tests above.
@pytest.mark.parametrize("stack_host", ["local"], indirect=True)
def test_cli_refuses_hostile_ids_and_runs_nothing(deferred: Deferred) -> None:
    stack, host = deferred.stack, deferred.host.name
    environment = stack_environment(stack.database_url, stack.dir)
    audited = audit_actions(stack, host)
    for hostile in HOSTILE_IDS:
        if "\x00" in hostile:
            continue  # no process argument can carry a NUL: the API test sends it
        # Each process takes a second or two: every id with hold, a few with delete.
        for action in ("hold", "delete") if hostile in ("ALL", "-", "--") else ("hold",):
            refused = run_mailwarden(
                environment, "queue", action, "--host", host, "--", deferred.queue_id, hostile
            )
            assert refused.returncode == 1, (hostile[:20], refused.stdout, refused.stderr)
            assert "ids" in refused.stderr, refused.stderr
            assert state_of(deferred) == (deferred.queue_id, "deferred"), hostile[:20]
    assert audit_actions(stack, host) == audited
    flushed = run_mailwarden(environment, "queue", "flush", "--host", host, "--dry-run")
    assert flushed.returncode == 0, flushed.stderr
    assert "would be retried" in flushed.stdout


# --- API --------------------------------------------------------------------------------------


def superadmin_key(stack: MailStack) -> tuple[str, str]:
    """(username, API key) of a fresh superadmin of the stack's database."""
    username = f"queue-{uuid.uuid4().hex[:8]}"
    stack.run(
        lambda uow, actor: admins.create(
            uow,
            actor,
            parse(AdminCreate, {"username": username, "role": Role.SUPERADMIN.value}),
            password="a long enough password",
        )
    )
    created = stack.run(
        lambda uow, actor: apikeys.create(uow, actor, parse(ApiKeyCreate, {"admin": username}))
    )
    return username, created.key


def test_api_lists_shows_holds_releases_requeues_and_deletes_a_deferred_message(
    deferred: Deferred,
) -> None:
    stack, host = deferred.stack, deferred.host.name
    _, key = superadmin_key(stack)
    base = f"/api/v1/hosts/{host}/queue"
    with TestClient(create_app(stack.settings)) as client:
        client.headers["Authorization"] = f"Bearer {key}"

        listed = client.get(base, params={"recipient": deferred.recipient, "queue": "deferred"})
        assert listed.status_code == 200, listed.text
        (item,) = listed.json()["items"]
        assert (item["id"], item["sender"]) == (deferred.queue_id, deferred.sender)
        held_only = client.get(base, params={"recipient": deferred.recipient, "queue": "hold"})
        assert held_only.json()["items"] == []

        shown = client.get(f"{base}/{deferred.queue_id}")
        assert shown.status_code == 200, shown.text
        assert {"name": "Subject", "value": deferred.subject} in shown.json()["headers"]
        assert client.get(f"{base}/ABCDEF99999").status_code == 404

        ids = {"ids": [deferred.queue_id]}
        dry = client.post(f"{base}/hold", params={"dry_run": "true"}, json=ids)
        assert dry.status_code == 200, dry.text
        assert dry.json()["result"]["items"][0]["outcome"] == "would_hold"
        assert dry.json()["plan"], "a dry run shows its plan"
        assert state_of(deferred) == (deferred.queue_id, "deferred")

        for action, expected_queue, outcome in (
            ("hold", "hold", "held"),
            ("release", "deferred", "released"),
            ("requeue", None, "requeued"),
        ):
            done = client.post(f"{base}/{action}", json=ids)
            assert done.status_code == 200, done.text
            assert done.json()["items"][0]["outcome"] == outcome
            if expected_queue is not None:
                assert state_of(deferred) == (deferred.queue_id, expected_queue)

        def delete(queue_id: str) -> list[dict[str, Any]]:
            done = client.post(f"{base}/delete", json={"ids": [queue_id]})
            assert done.status_code == 200, done.text
            items: list[dict[str, Any]] = done.json()["items"]
            return items

        delete_wherever(deferred, delete)
        flushed = client.post(f"{base}/flush")
        assert flushed.status_code == 200, flushed.text
    assert {"queue.hold", "queue.release", "queue.requeue", "queue.delete", "queue.flush"} <= set(
        audit_actions(stack, host)
    )


def test_api_refuses_hostile_ids_and_runs_nothing(deferred: Deferred) -> None:
    stack, host = deferred.stack, deferred.host.name
    _, key = superadmin_key(stack)
    base = f"/api/v1/hosts/{host}/queue"
    audited = audit_actions(stack, host)
    with TestClient(create_app(stack.settings)) as client:
        client.headers["Authorization"] = f"Bearer {key}"
        for hostile in HOSTILE_IDS:
            for action in ("hold", "delete"):
                refused = client.post(
                    f"{base}/{action}", json={"ids": [deferred.queue_id, hostile]}
                )
                assert refused.status_code == 422, (hostile[:20], refused.text)
                assert refused.headers["content-type"].startswith("application/problem+json")
                assert "ids" in refused.text
        refused = client.post(f"{base}/hold", json={"ids": [deferred.queue_id] * 501})
        assert refused.status_code == 422
        assert client.post(f"{base}/ALL", json={"ids": [deferred.queue_id]}).status_code == 422
        assert client.get(f"{base}/ALL").status_code == 422
        assert client.get(base, params={"cursor": "not a cursor"}).status_code == 422
    assert state_of(deferred) == (deferred.queue_id, "deferred")
    assert audit_actions(stack, host) == audited


# --- console ----------------------------------------------------------------------------------


def console_session(stack: MailStack, username: str) -> tuple[str, str]:
    """(cookie token, CSRF token) of a console session of `username`."""

    def start(uow: Any, actor: Any) -> tuple[str, str]:
        admin_id = uow.session.scalar(select(Admin.id).where(Admin.username == username))
        opened = websessions.start(uow, SessionKind.ADMIN, admin_id)
        return opened.token, opened.csrf_token

    token, csrf = stack.run(start)
    return token, csrf


@pytest.mark.parametrize("stack_host", ["local"], indirect=True)
def test_console_lists_escapes_and_holds_through_a_preview(stack_host: StackHost) -> None:
    stack = stack_host.stack
    # A sender the queue page must show as text: Postfix takes a quoted local part.
    message = make_deferred(stack_host, sender=f'"{SCRIPT}"@hostile-{uuid.uuid4().hex[:6]}.example')
    try:
        username, _ = superadmin_key(stack)
        token, csrf = console_session(stack, username)
        with TestClient(create_app(stack.settings)) as client:
            client.cookies.set("mw_console", token)
            page = client.get(
                "/queue", params={"host": stack_host.name, "recipient": message.recipient}
            )
            assert page.status_code == 200, page.text
            assert message.queue_id in page.text
            assert SCRIPT not in page.text
            assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text

            detail = client.get(f"/queue/{stack_host.name}/{message.queue_id}")
            assert detail.status_code == 200
            assert message.subject in detail.text and SCRIPT not in detail.text

            form = {"action": "hold", "ids": [message.queue_id], "csrf_token": csrf}
            refused = client.post(
                f"/queue/{stack_host.name}/change", data={**form, "csrf_token": "wrong"}
            )
            assert refused.status_code == 403
            preview = client.post(
                f"/queue/{stack_host.name}/change", data={**form, "intent": "preview"}
            )
            assert preview.status_code == 200, preview.text
            assert "would hold" in preview.text
            assert 'value="apply"' in preview.text
            assert state_of(message) == (message.queue_id, "deferred")

            applied = client.post(
                f"/queue/{stack_host.name}/change", data={**form, "intent": "apply"}
            )
            assert applied.status_code == 200, applied.text
            assert re.search(r"badge-held", applied.text)
            assert state_of(message) == (message.queue_id, "hold")
    finally:
        _delete_leftover(message)
