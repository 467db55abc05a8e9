"""Console pages of aliases and alias domains: list, search, create, edit, remove; scope,
escaping, CSRF."""

from __future__ import annotations

import re
from html import unescape

from mailwarden.alias_domains import service as alias_domains
from mailwarden.alias_domains.schemas import AliasDomainCreate, AliasDomainPublic
from mailwarden.aliases import service as aliases
from mailwarden.aliases.schemas import AliasCreate, AliasPublic
from mailwarden.kernel.errors import NotFound
from mailwarden.kernel.schemas import parse
from tests.conftest import UowFactory
from tests.factories.world import World
from tests.functional.web_helpers import Web

SCRIPT = "<script>alert(1)</script>"
ATTRIBUTE = "\"'><img src=x onerror=alert(1)>"
FRAGMENT = {"HX-Request": "true", "HX-Target": "results"}
_NEXT = re.compile(r'href="([^"]*)" rel="next"')


def add_alias(make_uow: UowFactory, world: World, address: str, *targets: str) -> None:
    with make_uow() as uow:
        data = parse(AliasCreate, {"address": address, "targets": list(targets)})
        aliases.create(uow, world.superadmin, data)
        uow.finish()


def alias(make_uow: UowFactory, world: World, address: str) -> AliasPublic | None:
    with make_uow(dry_run=True) as uow:
        try:
            return aliases.get(uow, world.superadmin, address)
        except NotFound:
            return None


def add_alias_domain(make_uow: UowFactory, world: World, name: str, target: str) -> None:
    with make_uow() as uow:
        data = parse(AliasDomainCreate, {"alias_domain": name, "target_domain": target})
        alias_domains.create(uow, world.superadmin, data)
        uow.finish()


def alias_domain(make_uow: UowFactory, world: World, name: str) -> AliasDomainPublic | None:
    with make_uow(dry_run=True) as uow:
        try:
            return alias_domains.get(uow, world.superadmin, name)
        except NotFound:
            return None


def next_link(html: str) -> str:
    found = _NEXT.search(html)
    assert found, "the page has no next-page link"
    return unescape(found.group(1))


def listed_aliases(html: str) -> list[str]:
    return [unescape(a) for a in re.findall(r'<a href="/aliases/[^"]+">([^<]+)</a>', html)]


def listed_alias_domains(html: str) -> list[str]:
    return re.findall(r'<td data-label="Alias domain">([^<]+)</td>', html)


# --- aliases: list -----------------------------------------------------------------------------


def test_it_lists_searches_and_pages_aliases(web: Web, world: World, make_uow: UowFactory) -> None:
    add_alias(make_uow, world, "sales@a.example", "user1@a.example", "team@elsewhere.example")
    add_alias(make_uow, world, "@b.example", "user1@b.example")

    first = web.get("/aliases?limit=2")
    assert first.status_code == 200
    assert listed_aliases(first.text) == ["@b.example", "info@a.example"]
    assert "catch-all" in first.text
    second = web.get(next_link(first.text))
    assert listed_aliases(second.text) == ["info@b.example", "sales@a.example"]
    assert "team@elsewhere.example" in second.text
    assert 'rel="next"' not in second.text

    by_target = web.get("/aliases?q=elsewhere", headers=FRAGMENT)
    assert by_target.status_code == 200
    assert "<html" not in by_target.text
    assert listed_aliases(by_target.text) == ["sales@a.example"]
    by_domain = web.get("/aliases?domain=b.example")
    assert listed_aliases(by_domain.text) == ["@b.example", "info@b.example"]


# --- aliases: create ---------------------------------------------------------------------------


def test_it_creates_an_alias_after_a_preview(web: Web, world: World, make_uow: UowFactory) -> None:
    form = {
        "address": "Team@a.example",
        "targets": "user1@a.example, postmaster@a.example\r\nfriend@elsewhere.example\r\n",
        "active": "on",
        "intent": "preview",
    }
    preview = web.post("/aliases/new", form)
    assert preview.status_code == 200
    assert "Preview: nothing has been changed yet" in preview.text
    assert "friend@elsewhere.example" in preview.text
    assert alias(make_uow, world, "team@a.example") is None

    applied = web.post("/aliases/new", form | {"intent": "apply"})
    assert applied.status_code == 303
    assert applied.headers["location"] == "/aliases/team@a.example?notice=created"
    created = alias(make_uow, world, "team@a.example")
    assert created is not None
    assert created.targets == [
        "friend@elsewhere.example",
        "postmaster@a.example",
        "user1@a.example",
    ]
    assert created.active


def test_it_shows_alias_field_errors_in_place(web: Web, world: World, make_uow: UowFactory) -> None:
    bad_address = web.post(
        "/aliases/new", {"address": "no address", "targets": "user1@a.example", "intent": "apply"}
    )
    assert bad_address.status_code == 422
    assert 'id="address-error"' in bad_address.text

    bad_target = web.post(
        "/aliases/new",
        {"address": "new@a.example", "targets": "user1@a.example\n|/bin/sh", "intent": "apply"},
    )
    assert bad_target.status_code == 422
    assert 'id="targets-error"' in bad_target.text
    assert "|/bin/sh" in bad_target.text
    assert alias(make_uow, world, "new@a.example") is None


# --- aliases: edit and remove ------------------------------------------------------------------


def test_it_edits_targets_and_state(web: Web, world: World, make_uow: UowFactory) -> None:
    page = web.get("/aliases/info@a.example", as_="domain_admin_a")
    assert page.status_code == 200
    assert 'name="remove_targets" value="user1@a.example"' in page.text

    change = {
        "remove_targets": "user1@a.example",
        "add_targets": "postmaster@a.example, desk@elsewhere.example",
        "intent": "preview",
    }
    preview = web.post("/aliases/info@a.example", change, as_="domain_admin_a")
    assert preview.status_code == 200
    assert "desk@elsewhere.example" in preview.text
    unchanged = alias(make_uow, world, "info@a.example")
    assert unchanged is not None and unchanged.targets == ["user1@a.example"]

    applied = web.post(
        "/aliases/info@a.example", change | {"intent": "apply"}, as_="domain_admin_a"
    )
    assert applied.status_code == 303
    changed = alias(make_uow, world, "info@a.example")
    assert changed is not None
    assert changed.targets == ["desk@elsewhere.example", "postmaster@a.example"]
    # The box was not ticked: the alias is inactive now.
    assert not changed.active

    emptied = web.post(
        "/aliases/info@a.example",
        {"remove_targets": changed.targets, "active": "on", "intent": "apply"},
        as_="domain_admin_a",
    )
    assert emptied.status_code == 422
    assert 'id="add_targets-error"' in emptied.text


def test_it_removes_an_alias_after_a_preview(web: Web, world: World, make_uow: UowFactory) -> None:
    confirm = web.get("/aliases/info@a.example/delete", as_="domain_admin_a")
    assert confirm.status_code == 200
    assert 'value="apply"' not in confirm.text

    preview = web.post(
        "/aliases/info@a.example/delete", {"intent": "preview"}, as_="domain_admin_a"
    )
    assert preview.status_code == 200
    assert 'value="apply"' in preview.text
    assert alias(make_uow, world, "info@a.example") is not None

    applied = web.post("/aliases/info@a.example/delete", {"intent": "apply"}, as_="domain_admin_a")
    assert applied.status_code == 303
    assert applied.headers["location"] == "/aliases?notice=deleted"
    assert alias(make_uow, world, "info@a.example") is None


# --- aliases: isolation, escaping, CSRF --------------------------------------------------------


def test_alice_never_sees_aliases_of_b_example(
    web: Web, world: World, make_uow: UowFactory
) -> None:
    for path in ("/aliases", "/aliases?q=info", "/aliases?q=user1"):
        response = web.get(path, as_="domain_admin_a")
        assert response.status_code == 200, path
        assert "b.example" not in response.text, path
    searched = web.get("/aliases?q=b.example", as_="domain_admin_a")
    assert "info@b.example" not in searched.text
    assert listed_aliases(searched.text) == []
    filtered = web.get("/aliases?domain=b.example", headers=FRAGMENT, as_="domain_admin_a")
    assert "info@b.example" not in filtered.text
    assert listed_aliases(filtered.text) == []

    for path in ("/aliases/info@b.example", "/aliases/info@b.example/delete"):
        assert web.get(path, as_="domain_admin_a").status_code == 404, path
    removed = web.post("/aliases/info@b.example/delete", {"intent": "apply"}, as_="domain_admin_a")
    assert removed.status_code == 404
    created = web.post(
        "/aliases/new",
        {"address": "x@b.example", "targets": "user1@a.example", "intent": "apply"},
        as_="domain_admin_a",
    )
    assert created.status_code == 422
    assert alias(make_uow, world, "info@b.example") is not None
    assert alias(make_uow, world, "x@b.example") is None


def test_it_escapes_hostile_alias_input(web: Web) -> None:
    response = web.post(
        "/aliases/new",
        {"address": ATTRIBUTE + "@a.example", "targets": SCRIPT, "intent": "preview"},
    )
    assert response.status_code == 422
    assert SCRIPT not in response.text
    assert "<img src=x" not in response.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in response.text
    assert "&lt;img src=x onerror=alert(1)&gt;" in response.text


def test_it_escapes_hostile_search_text(web: Web) -> None:
    response = web.get("/aliases", params={"q": SCRIPT}, headers=FRAGMENT)
    assert SCRIPT not in response.text
    page = web.get("/aliases", params={"q": SCRIPT})
    assert SCRIPT not in page.text
    assert "&lt;script&gt;" in page.text


def test_it_refuses_an_alias_change_without_the_session_token(
    web: Web, world: World, make_uow: UowFactory
) -> None:
    response = web.post(
        "/aliases/info@a.example/delete", {"intent": "apply"}, csrf=False, as_="domain_admin_a"
    )
    assert response.status_code == 403
    assert alias(make_uow, world, "info@a.example") is not None


# --- alias domains -----------------------------------------------------------------------------


def test_it_lists_searches_and_pages_alias_domains(
    web: Web, world: World, make_uow: UowFactory
) -> None:
    for name, target in (
        ("a-one.example", "a.example"),
        ("a-two.example", "a.example"),
        ("b-one.example", "b.example"),
    ):
        add_alias_domain(make_uow, world, name, target)

    first = web.get("/alias-domains?limit=2")
    assert first.status_code == 200
    assert listed_alias_domains(first.text) == ["a-one.example", "a-two.example"]
    second = web.get(next_link(first.text))
    assert listed_alias_domains(second.text) == ["b-one.example"]

    found = web.get("/alias-domains?q=two", headers=FRAGMENT)
    assert "<html" not in found.text
    assert listed_alias_domains(found.text) == ["a-two.example"]
    by_target = web.get("/alias-domains?target=b.example")
    assert listed_alias_domains(by_target.text) == ["b-one.example"]

    alices = web.get("/alias-domains?q=one", as_="domain_admin_a")
    assert listed_alias_domains(alices.text) == ["a-one.example"]
    assert "b.example" not in alices.text and "b-one" not in alices.text
    assert 'href="/alias-domains/new' not in alices.text


def test_it_creates_an_alias_domain_after_a_preview(
    web: Web, world: World, make_uow: UowFactory
) -> None:
    form = {"alias_domain": "a.example.net", "target_domain": "a.example", "intent": "preview"}
    preview = web.post("/alias-domains/new", form)
    assert preview.status_code == 200
    assert "Preview: nothing has been changed yet" in preview.text
    assert alias_domain(make_uow, world, "a.example.net") is None

    applied = web.post("/alias-domains/new", form | {"intent": "apply"})
    assert applied.status_code == 303
    created = alias_domain(make_uow, world, "a.example.net")
    assert created is not None and created.target_domain == "a.example"

    clash = web.post("/alias-domains/new", form | {"alias_domain": "b.example"})
    assert clash.status_code == 422
    assert 'id="alias_domain-error"' in clash.text


def test_alias_domains_are_the_superadmins(web: Web, world: World, make_uow: UowFactory) -> None:
    add_alias_domain(make_uow, world, "a.example.net", "a.example")
    form = {"alias_domain": "a.example.org", "target_domain": "a.example", "intent": "apply"}
    created = web.post("/alias-domains/new", form, as_="domain_admin_a")
    assert created.status_code == 403
    assert alias_domain(make_uow, world, "a.example.org") is None
    removed = web.post(
        "/alias-domains/a.example.net/delete", {"intent": "apply"}, as_="domain_admin_a"
    )
    assert removed.status_code == 403
    assert alias_domain(make_uow, world, "a.example.net") is not None
    assert web.get("/alias-domains/a.example.net/delete", as_="domain_admin_b").status_code == 404


def test_it_removes_an_alias_domain_after_a_preview(
    web: Web, world: World, make_uow: UowFactory
) -> None:
    add_alias_domain(make_uow, world, "a.example.net", "a.example")
    confirm = web.get("/alias-domains/a.example.net/delete")
    assert confirm.status_code == 200
    assert 'value="apply"' not in confirm.text
    preview = web.post("/alias-domains/a.example.net/delete", {"intent": "preview"})
    assert 'value="apply"' in preview.text
    assert alias_domain(make_uow, world, "a.example.net") is not None
    applied = web.post("/alias-domains/a.example.net/delete", {"intent": "apply"})
    assert applied.status_code == 303
    assert applied.headers["location"] == "/alias-domains?notice=deleted"
    assert alias_domain(make_uow, world, "a.example.net") is None
