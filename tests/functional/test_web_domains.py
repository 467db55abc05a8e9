"""Console pages of domains: list, detail, create, edit, remove; scope, escaping, CSRF."""

from __future__ import annotations

import re
from html import unescape
from typing import Any

import pytest

from mailwarden.domains import service as domains
from mailwarden.domains.schemas import DomainCreate, DomainPublic
from mailwarden.kernel.errors import NotFound
from mailwarden.kernel.schemas import parse
from tests.conftest import UowFactory
from tests.factories.world import World
from tests.functional.web_helpers import Web

GIB = 1024**3
SCRIPT = "<script>alert(1)</script>"
ATTRIBUTE = "\"'><img src=x onerror=alert(1)>"
_NEXT = re.compile(r'href="([^"]*)" rel="next"')


def add_domain(make_uow: UowFactory, world: World, name: str, **fields: Any) -> None:
    with make_uow() as uow:
        domains.create(uow, world.superadmin, parse(DomainCreate, {"name": name, **fields}))
        uow.finish()


def stored(make_uow: UowFactory, world: World, name: str) -> DomainPublic | None:
    with make_uow(dry_run=True) as uow:
        try:
            return domains.show(uow, world.superadmin, name).domain
        except NotFound:
            return None


def next_link(html: str) -> str:
    found = _NEXT.search(html)
    assert found, "the page has no next-page link"
    return unescape(found.group(1))


def listed(html: str) -> list[str]:
    return re.findall(r'<a href="/domains/([^"/]+)">', html)


def new_domain(**fields: str) -> dict[str, str]:
    return {
        "name": "new.example",
        "description": "New shop",
        "max_mailboxes": "10",
        "max_aliases": "0",
        "quota": "5G",
        "mailbox_quota": "512M",
        "active": "on",
        "intent": "apply",
    } | fields


# --- list --------------------------------------------------------------------------------------


def test_it_lists_searches_and_pages_domains(web: Web, world: World, make_uow: UowFactory) -> None:
    for name in ("c1.example", "c2.example", "c3.example"):
        add_domain(make_uow, world, name)

    first = web.get("/domains?limit=2")
    assert first.status_code == 200
    assert listed(first.text) == ["a.example", "b.example"]
    second = web.get(next_link(first.text))
    assert listed(second.text) == ["c1.example", "c2.example"]
    assert "First page" in second.text
    last = web.get(next_link(second.text))
    assert listed(last.text) == ["c3.example"]
    assert 'rel="next"' not in last.text

    found = web.get("/domains?q=c2")
    assert listed(found.text) == ["c2.example"]
    descending = web.get("/domains?sort=-name&limit=1")
    assert listed(descending.text) == ["c3.example"]


def test_it_answers_the_search_box_with_the_results_only(web: Web) -> None:
    response = web.get("/domains?q=a.ex", headers={"HX-Request": "true", "HX-Target": "results"})
    assert response.status_code == 200
    assert "<html" not in response.text
    assert listed(response.text) == ["a.example"]


def test_it_filters_by_state_and_reports_a_bad_cursor(
    web: Web, world: World, make_uow: UowFactory
) -> None:
    add_domain(make_uow, world, "off.example", active=False)
    inactive = web.get("/domains?active=no")
    assert listed(inactive.text) == ["off.example"]
    broken = web.get("/domains?after=not%20a%20domain")
    assert broken.status_code == 422
    assert 'class="form-error"' in broken.text


# --- detail ------------------------------------------------------------------------------------


def test_it_shows_a_domain_with_its_usage(web: Web) -> None:
    response = web.get("/domains/a.example", as_="domain_admin_a")
    assert response.status_code == 200
    # a.example: 2 mailboxes of 5 with 1 GiB each, of a 10 GiB domain quota.
    assert "2 of 5" in response.text
    assert "2 GiB allocated of 10 GiB" in response.text
    assert '<progress value="20" max="100"' in response.text
    assert 'href="/mailboxes?domain=a.example"' in response.text
    assert 'href="/aliases?domain=a.example"' in response.text
    # Removing a domain is the superadmin's: alice is not offered it.
    assert "/domains/a.example/delete" not in response.text
    assert "/domains/a.example/delete" in web.get("/domains/a.example").text


# --- create ------------------------------------------------------------------------------------


def test_it_creates_a_domain_after_a_preview(web: Web, world: World, make_uow: UowFactory) -> None:
    preview = web.post("/domains/new", new_domain(intent="preview"))
    assert preview.status_code == 200
    assert "Preview: nothing has been changed yet" in preview.text
    assert "new.example" in preview.text
    assert stored(make_uow, world, "new.example") is None

    applied = web.post("/domains/new", new_domain())
    assert applied.status_code == 303
    assert applied.headers["location"] == "/domains/new.example?notice=created"
    domain = stored(make_uow, world, "new.example")
    assert domain is not None
    assert (domain.quota_bytes, domain.default_mailbox_quota_bytes) == (5 * GIB, 512 * 1024**2)
    assert (domain.max_mailboxes, domain.description, domain.active) == (10, "New shop", True)
    assert "Created." in web.get(applied.headers["location"]).text


def test_it_shows_field_errors_in_place(web: Web, world: World, make_uow: UowFactory) -> None:
    bad_name = web.post("/domains/new", new_domain(name="not a domain"))
    assert bad_name.status_code == 422
    assert 'id="name-error"' in bad_name.text
    assert re.search(r'id="f-name"[^>]*aria-invalid="true"', bad_name.text, re.DOTALL)
    assert 'value="not a domain"' in bad_name.text

    bad_quota = web.post("/domains/new", new_domain(quota="5X", max_mailboxes="many"))
    assert bad_quota.status_code == 422
    assert 'id="quota-error"' in bad_quota.text
    assert 'id="max_mailboxes-error"' in bad_quota.text
    assert stored(make_uow, world, "new.example") is None


# --- edit --------------------------------------------------------------------------------------


def test_a_domain_admin_edits_the_description_only(
    web: Web, world: World, make_uow: UowFactory
) -> None:
    form = web.get("/domains/a.example/edit", as_="domain_admin_a")
    assert form.status_code == 200
    assert 'name="description"' in form.text
    assert 'name="max_mailboxes"' not in form.text

    change = {"description": "Shop", "shown": "registration_open", "intent": "preview"}
    preview = web.post("/domains/a.example/edit", change, as_="domain_admin_a")
    assert preview.status_code == 200
    assert "Shop" in preview.text
    assert stored(make_uow, world, "a.example").description == ""  # type: ignore[union-attr]

    applied = web.post(
        "/domains/a.example/edit", change | {"intent": "apply"}, as_="domain_admin_a"
    )
    assert applied.status_code == 303
    assert applied.headers["location"] == "/domains/a.example?notice=updated"
    domain = stored(make_uow, world, "a.example")
    assert domain is not None
    assert (domain.description, domain.max_mailboxes) == ("Shop", 5)


def test_a_superadmin_changes_limits_in_human_sizes(
    web: Web, world: World, make_uow: UowFactory
) -> None:
    form = web.get("/domains/a.example/edit")
    # Sizes are shown exactly, so saving the form unchanged changes nothing.
    assert 'value="10G"' in form.text
    unchanged = {
        "description": "",
        "transport": "",
        "max_mailboxes": "5",
        "max_aliases": "5",
        "quota": "10G",
        "mailbox_quota": "1G",
        "registration_pending_limit": "20",
        "shown": ["active", "backup_mx", "registration_open"],
        "active": "on",
        "intent": "preview",
    }
    assert "this would change nothing" in web.post("/domains/a.example/edit", unchanged).text

    changed = unchanged | {"quota": "20G", "max_mailboxes": "8", "intent": "apply"}
    assert web.post("/domains/a.example/edit", changed).status_code == 303
    domain = stored(make_uow, world, "a.example")
    assert domain is not None
    assert (domain.quota_bytes, domain.max_mailboxes, domain.active) == (20 * GIB, 8, True)

    too_small = changed | {"quota": "1G"}
    refused = web.post("/domains/a.example/edit", too_small)
    assert refused.status_code == 422
    assert 'id="quota-error"' in refused.text
    assert stored(make_uow, world, "a.example").quota_bytes == 20 * GIB  # type: ignore[union-attr]


# --- superadmin-only actions -------------------------------------------------------------------


def test_a_domain_admin_cannot_create_remove_or_administer_a_domain(
    web: Web, world: World, make_uow: UowFactory
) -> None:
    page = web.get("/domains", as_="domain_admin_a")
    assert 'href="/domains/new"' not in page.text

    created = web.post("/domains/new", new_domain(), as_="domain_admin_a")
    assert created.status_code == 403
    assert "Not allowed" in created.text
    assert stored(make_uow, world, "new.example") is None

    removed = web.post(
        "/domains/a.example/delete", {"intent": "apply", "cascade": "on"}, as_="domain_admin_a"
    )
    assert removed.status_code == 403
    domain = stored(make_uow, world, "a.example")
    assert domain is not None and domain.removed_at is None

    forged = web.post(
        "/domains/a.example/edit", {"max_mailboxes": "500", "intent": "apply"}, as_="domain_admin_a"
    )
    assert forged.status_code == 403
    assert stored(make_uow, world, "a.example").max_mailboxes == 5  # type: ignore[union-attr]


# --- remove ------------------------------------------------------------------------------------


def test_it_removes_an_empty_domain_after_a_preview(
    web: Web, world: World, make_uow: UowFactory
) -> None:
    add_domain(make_uow, world, "gone.example")
    confirm = web.get("/domains/gone.example/delete")
    assert confirm.status_code == 200
    assert 'value="preview"' in confirm.text
    assert 'value="apply"' not in confirm.text

    preview = web.post("/domains/gone.example/delete", {"intent": "preview"})
    assert preview.status_code == 200
    assert "Preview: nothing has been changed yet" in preview.text
    assert 'value="apply"' in preview.text
    assert stored(make_uow, world, "gone.example") is not None

    applied = web.post("/domains/gone.example/delete", {"intent": "apply"})
    assert applied.status_code == 303
    assert applied.headers["location"] == "/domains?notice=deleted"
    assert stored(make_uow, world, "gone.example") is None


def test_a_domain_with_content_needs_the_cascade(
    web: Web, world: World, make_uow: UowFactory
) -> None:
    refused = web.post("/domains/b.example/delete", {"intent": "preview"})
    assert refused.status_code == 422
    assert "remove them first or use cascade" in refused.text

    preview = web.post("/domains/b.example/delete", {"intent": "preview", "cascade": "on"})
    assert preview.status_code == 200
    assert 'name="cascade" value="on"' in preview.text
    assert stored(make_uow, world, "b.example").active  # type: ignore[union-attr]

    applied = web.post("/domains/b.example/delete", {"intent": "apply", "cascade": "on"})
    assert applied.status_code == 303
    assert applied.headers["location"] == "/domains?notice=removing"
    domain = stored(make_uow, world, "b.example")
    assert domain is not None
    assert domain.removed_at is not None and not domain.active


# --- isolation, escaping, CSRF -----------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/domains", "/domains?q=b", "/domains?q=example&sort=-created_at"],
)
def test_alice_never_sees_b_example_in_lists(web: Web, path: str) -> None:
    response = web.get(path, as_="domain_admin_a")
    assert response.status_code == 200
    assert "b.example" not in response.text


def test_alice_gets_not_found_for_b_example(web: Web, world: World, make_uow: UowFactory) -> None:
    for path in ("/domains/b.example", "/domains/b.example/edit", "/domains/b.example/delete"):
        response = web.get(path, as_="domain_admin_a")
        assert response.status_code == 404, path
        assert "Not found" in response.text
    edited = web.post(
        "/domains/b.example/edit", {"description": "mine", "intent": "apply"}, as_="domain_admin_a"
    )
    assert edited.status_code == 404
    assert stored(make_uow, world, "b.example").description == ""  # type: ignore[union-attr]


def test_it_escapes_a_hostile_description(web: Web, world: World, make_uow: UowFactory) -> None:
    add_domain(make_uow, world, "hostile.example", description=SCRIPT + ATTRIBUTE)
    for path in ("/domains?q=hostile", "/domains/hostile.example", "/domains/hostile.example/edit"):
        html = web.get(path).text
        assert SCRIPT not in html, path
        assert "<img src=x" not in html, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, path
        assert "&lt;img src=x onerror=alert(1)&gt;" in html, path


def test_it_refuses_a_change_without_the_session_token(
    web: Web, world: World, make_uow: UowFactory
) -> None:
    response = web.post("/domains/new", new_domain(csrf_token="forged"))
    assert response.status_code == 403
    assert stored(make_uow, world, "new.example") is None
