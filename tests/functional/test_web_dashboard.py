"""The console's dashboard: counts, quota use and recent changes, within the actor's scope."""

from __future__ import annotations

import re

from mailwarden.inventory import service as inventory
from mailwarden.kernel.actor import Actor
from mailwarden.kernel.audit import AuditEntry
from mailwarden.kernel.schemas import parse
from mailwarden.mailboxes import service as mailboxes
from mailwarden.mailboxes.models import QuotaUsage
from mailwarden.mailboxes.schemas import MailboxCreate
from tests.conftest import UowFactory
from tests.factories.world import PASSWORD, World
from tests.functional.web_helpers import Web

OPERATOR = Actor.local_operator()
MIB = 1024**2
SCRIPT = "<script>alert(1)</script>"
ATTRIBUTE = "\"'><img src=x onerror=alert(1)>"
FIGURE = re.compile(r'<span class="figure">(\d+)</span> <a href="/(\w+)">')


def figures(page: str) -> dict[str, int]:
    return {kind: int(count) for count, kind in FIGURE.findall(page)}


def test_a_superadmin_sees_the_counts_of_every_domain(web: Web) -> None:
    response = web.get("/")
    assert response.status_code == 200
    assert figures(response.text) == {"domains": 2, "mailboxes": 3, "aliases": 2}


def test_a_domain_admin_sees_the_counts_of_its_own_domains(web: Web) -> None:
    response = web.get("/", as_="domain_admin_a")
    assert response.status_code == 200
    assert figures(response.text) == {"domains": 1, "mailboxes": 2, "aliases": 1}
    assert "b.example" not in response.text
    bob = web.get("/", as_="domain_admin_b").text
    assert figures(bob) == {"domains": 1, "mailboxes": 1, "aliases": 1}
    assert "a.example" not in bob


def test_scoped_counts_leave_out_removed_mailboxes(world: World, make_uow: UowFactory) -> None:
    with make_uow() as uow:
        mailboxes.remove(uow, OPERATOR, "user1@a.example")
        uow.finish()
    with make_uow() as uow:
        assert inventory.scoped_counts(uow, world.domain_admin) == {
            "domains": 1,
            "mailboxes": 1,
            "aliases": 1,
        }
        assert inventory.scoped_counts(uow, world.superadmin)["mailboxes"] == 2


def test_quota_use_is_drawn_per_domain(web: Web, make_uow: UowFactory) -> None:
    with make_uow() as uow:
        uow.session.add(QuotaUsage(username="user1@a.example", bytes=512 * MIB, messages=9))
        uow.finish()
    page = web.get("/", as_="domain_admin_a").text
    # a.example: two mailboxes of 1 GiB each under a 10 GiB domain quota.
    assert '<progress value="25" max="100"' in page
    assert "512 MiB of 2 GiB" in page
    assert '<progress value="20" max="100"' in page
    assert "2 GiB of 10 GiB" in page
    assert 'href="/mailboxes?domain=a.example">2</a>' in page
    with make_uow() as uow:
        uses = inventory.domain_quota_use(uow, OPERATOR)
    assert [(u.name, u.mailboxes, u.used_bytes) for u in uses] == [
        ("a.example", 2, 512 * MIB),
        ("b.example", 1, 0),
    ]


def test_recent_changes_show_the_last_ten_entries(web: Web, make_uow: UowFactory) -> None:
    with make_uow() as uow:
        data = parse(MailboxCreate, {"address": "newest@b.example"})
        mailboxes.create(uow, OPERATOR, data, password=PASSWORD)
        uow.finish()
    page = web.get("/").text
    recent = page.split('id="recent-title"')[1]
    # The world wrote ten entries; the eleventh is the newest and comes first.
    assert recent.count('data-label="When"') == 10
    assert recent.index("mailbox newest@b.example") < recent.index("admin bob")
    assert "domain a.example" not in recent
    assert "The whole audit log" in recent
    alice = web.get("/", as_="domain_admin_a").text.split('id="recent-title"')[1]
    assert "mailbox user1@a.example" in alice
    assert "user1@b.example" not in alice


def test_a_hostile_audit_entry_is_escaped(web: Web, make_uow: UowFactory) -> None:
    with make_uow() as uow:
        uow.session.add(
            AuditEntry(
                actor=SCRIPT,
                actor_role="superadmin",
                channel="cli",
                action=ATTRIBUTE[:64],
                object_type="mailbox",
                object_key=f"{SCRIPT}{ATTRIBUTE}",
                domain="a.example",
            )
        )
        uow.finish()
    for persona in ("superadmin", "domain_admin_a"):
        page = web.get("/", as_=persona).text
        assert SCRIPT not in page
        assert ATTRIBUTE not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
        assert "&#34;&#39;&gt;&lt;img src=x onerror=alert(1)&gt;" in page


def test_a_hostile_mailbox_name_never_reaches_the_dashboard_raw(
    web: Web, make_uow: UowFactory
) -> None:
    with make_uow() as uow:
        data = parse(MailboxCreate, {"address": "evil@a.example", "name": SCRIPT + ATTRIBUTE})
        mailboxes.create(uow, OPERATOR, data, password=PASSWORD)
        uow.finish()
    page = web.get("/", as_="domain_admin_a").text
    assert "mailbox evil@a.example" in page
    assert figures(page)["mailboxes"] == 3
    assert SCRIPT not in page
    assert ATTRIBUTE not in page


def test_the_dashboard_is_for_admins_only(web: Web) -> None:
    for persona in ("anonymous", "mailbox_a"):
        response = web.get("/", as_=persona)
        assert response.status_code == 303
        assert response.headers["location"] == "/login"
