"""The console's audit log: filters in the URL, keyset pages, domain scoping, hostile text."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mailwarden.admins import service as admins
from mailwarden.admins.schemas import AdminCreate, AdminUpdate
from mailwarden.aliases import service as aliases
from mailwarden.aliases.schemas import AliasCreate
from mailwarden.kernel.schemas import parse
from mailwarden.kernel.unit_of_work import UnitOfWork
from mailwarden.logins.audit import LoginKind, record_failed_login
from tests.conftest import UowFactory
from tests.factories.world import PASSWORD, World
from tests.functional.web_helpers import Web

HOSTILE = "<script>alert(1)</script>"
HOSTILE_ATTRIBUTE = "\"'><img src=x onerror=alert(1)>"
ALICES = "<code>from-alice@a.example</code>"
BOBS = "<code>from-bob@b.example</code>"
CAROLS = "<code>carol</code>"


def run(make_uow: UowFactory, call: Callable[[UnitOfWork], Any]) -> Any:
    with make_uow() as uow:
        result = call(uow)
        uow.finish()
    return result


@pytest.fixture
def history(world: World, make_uow: UowFactory) -> None:
    """Alice adds an alias in a.example, Bob one in b.example, root adds carol (no domain)."""

    def write(uow: UnitOfWork) -> None:
        aliases.create(
            uow,
            world.domain_admin,
            parse(AliasCreate, {"address": "from-alice@a.example", "targets": ["user1@a.example"]}),
        )
        aliases.create(
            uow,
            world.outsider,
            parse(AliasCreate, {"address": "from-bob@b.example", "targets": ["user1@b.example"]}),
        )
        admins.create(
            uow,
            world.superadmin,
            parse(AdminCreate, {"username": "carol", "role": "superadmin"}),
            password=PASSWORD,
        )

    run(make_uow, write)


def failed_logins(make_uow: UowFactory, *names: str) -> None:
    def write(uow: UnitOfWork) -> None:
        for name in names:
            record_failed_login(
                uow,
                name,
                LoginKind.ADMIN,
                channel="web",
                client_address="192.0.2.7",
                reason="unknown user",
            )

    run(make_uow, write)


def day(offset: int) -> str:
    return (datetime.now(UTC) + timedelta(days=offset)).date().isoformat()


@pytest.mark.usefixtures("history")
def test_it_shows_entries_newest_first(web: Web) -> None:
    response = web.get("/audit")
    assert response.status_code == 200
    page = response.text
    assert page.index(CAROLS) < page.index(BOBS) < page.index(ALICES)
    # Who, from where and how: actor, role and channel of each entry.
    assert re.search(r"alice\s*<small class=\"audit-meta\">domain-admin · ", page)
    assert "<code>alias.create</code>" in page


@pytest.mark.usefixtures("history")
@pytest.mark.parametrize(
    ("filters", "shown", "hidden"),
    [
        ({"actor": "alice"}, [ALICES], [BOBS, CAROLS]),
        ({"actor": "ALICE"}, [ALICES], [BOBS, CAROLS]),
        ({"action": "admin.create"}, [CAROLS], [ALICES, BOBS]),
        ({"object_type": "alias"}, [ALICES, BOBS], [CAROLS]),
        ({"object_type": "alias", "object_key": "from-bob@b.example"}, [BOBS], [ALICES, CAROLS]),
        ({"object_key": "carol"}, [CAROLS], [ALICES, BOBS]),
        ({"since": day(-1), "until": day(1)}, [ALICES, BOBS, CAROLS], []),
        ({"since": day(0), "until": day(0)}, [ALICES, BOBS, CAROLS], []),
        ({"since": day(1)}, [], [ALICES, BOBS, CAROLS]),
        ({"until": day(-1)}, [], [ALICES, BOBS, CAROLS]),
    ],
    ids=lambda value: "-".join(value) if isinstance(value, dict) else "",
)
def test_each_filter_narrows_the_entries(
    web: Web, filters: dict[str, str], shown: list[str], hidden: list[str]
) -> None:
    response = web.get("/audit", params=filters)
    assert response.status_code == 200
    for text in shown:
        assert text in response.text
    for text in hidden:
        assert text not in response.text
    # The filters stay in the form, so the page is the bookmark.
    for name, value in filters.items():
        assert f'name="{name}"' in response.text
        assert f'value="{value}"' in response.text
    if not shown:
        assert "No audit entries match these filters." in response.text


@pytest.mark.usefixtures("history")
def test_it_answers_htmx_with_the_entries_only(web: Web) -> None:
    response = web.get("/audit?actor=bob", headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert "<html" not in response.text
    assert BOBS in response.text
    assert ALICES not in response.text


@pytest.mark.usefixtures("history")
def test_domain_admin_sees_only_its_domains_entries(web: Web) -> None:
    response = web.get("/audit", as_="domain_admin_a")
    assert response.status_code == 200
    assert ALICES in response.text
    assert "user1@a.example" in response.text
    assert BOBS not in response.text
    assert CAROLS not in response.text
    assert "b.example" not in response.text
    # Filters never reach beyond the domain admin's domains.
    by_bob = web.get("/audit?actor=bob", as_="domain_admin_a")
    assert by_bob.status_code == 200
    assert BOBS not in by_bob.text
    assert "No audit entries match these filters." in by_bob.text


def test_it_shows_a_change_as_before_and_after(
    web: Web, world: World, make_uow: UowFactory
) -> None:
    run(
        make_uow,
        lambda uow: admins.update(
            uow, world.superadmin, "alice", parse(AdminUpdate, {"add_domains": ["b.example"]})
        ),
    )
    response = web.get("/audit?action=admin.update")
    assert response.status_code == 200
    assert re.search(
        r'<th scope="row">domains</th><td class="before">a\.example</td>'
        r'<td class="after">a\.example, b\.example</td>',
        response.text,
    )
    # Unchanged fields are left out of a change.
    assert '<th scope="row">role</th>' not in response.text


def test_it_shows_hostile_entries_as_text(web: Web, make_uow: UowFactory) -> None:
    failed_logins(make_uow, HOSTILE, HOSTILE_ATTRIBUTE)
    response = web.get("/audit")
    assert response.status_code == 200
    assert HOSTILE not in response.text
    assert "<img src=x" not in response.text
    assert "<code>&lt;script&gt;alert(1)&lt;/script&gt;</code>" in response.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;\n" in response.text
    assert "&lt;img src=x onerror=alert(1)&gt;" in response.text
    assert "anonymous · web · 192.0.2.7" in response.text


def test_it_shows_hostile_filters_as_text(web: Web) -> None:
    response = web.get("/audit", params={"actor": HOSTILE_ATTRIBUTE, "object_key": HOSTILE})
    assert response.status_code == 200
    assert HOSTILE not in response.text
    assert "<img src=x" not in response.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in response.text


def test_it_pages_below_an_entry_id_keeping_the_filters(web: Web, make_uow: UowFactory) -> None:
    failed_logins(make_uow, *(f"probe-{number:02d}" for number in range(55)))
    first = web.get("/audit?action=admin.login-failed")
    assert "<code>probe-54</code>" in first.text
    assert "<code>probe-05</code>" in first.text
    assert "<code>probe-04</code>" not in first.text
    found = re.search(r'href="(/audit\?[^"]*before=\d+)"', first.text)
    assert found
    link = found.group(1).replace("&amp;", "&")
    assert "action=admin.login-failed" in link
    second = web.get(link)
    assert second.status_code == 200
    assert "<code>probe-04</code>" in second.text
    assert "<code>probe-00</code>" in second.text
    assert "<code>probe-05</code>" not in second.text
    assert 'href="/audit?action=admin.login-failed"' in second.text
    assert "Older entries" not in second.text


@pytest.mark.parametrize(
    ("filters", "field", "message"),
    [
        ({"since": "yesterday"}, "since", "YYYY-MM-DD"),
        ({"until": "2026-02-30"}, "until", "YYYY-MM-DD"),
        ({"since": "20260101"}, "since", "YYYY-MM-DD"),
        ({"since": "2026-03-02", "until": "2026-03-01"}, "until", "comes before"),
        ({"actor": "root\x00"}, "actor", "contains"),
    ],
)
def test_it_reports_a_bad_filter_in_place(
    web: Web, filters: dict[str, str], field: str, message: str
) -> None:
    response = web.get("/audit", params=filters)
    assert response.status_code == 422
    assert f'aria-invalid="true" aria-describedby="{field}-error"' in response.text
    assert message in response.text
    assert "<table" not in response.text


def test_it_reports_a_bad_filter_to_htmx_in_the_results(web: Web) -> None:
    response = web.get("/audit?since=soon", headers={"HX-Request": "true"})
    # htmx swaps no error answer, so the message comes as content.
    assert response.status_code == 200
    assert "<html" not in response.text
    assert 'role="alert"' in response.text
    assert "YYYY-MM-DD" in response.text


def test_it_reports_a_bad_cursor(web: Web) -> None:
    response = web.get("/audit?before=-3")
    assert response.status_code == 422
    assert "the cursor is a positive entry id" in response.text


def test_it_sends_anonymous_visitors_to_login(web: Web) -> None:
    response = web.get("/audit", as_="anonymous")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")
