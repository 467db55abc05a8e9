"""The console's API key pages: the token is shown once, on the page that creates the key."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mailwarden.apikeys import service as apikeys
from mailwarden.apikeys.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyPublic
from mailwarden.apikeys.service import InvalidKey
from mailwarden.kernel.actor import Actor, Channel
from mailwarden.kernel.schemas import parse
from mailwarden.kernel.unit_of_work import UnitOfWork
from tests.conftest import UowFactory
from tests.factories.world import World
from tests.functional.web_helpers import Web

OPERATOR = Actor.local_operator(Channel.SYSTEM)
TOKEN = re.compile(r"mw_[0-9a-f]{12}_[A-Za-z0-9_-]{43}")
HOSTILE = "<script>alert(1)</script>"
HOSTILE_ATTRIBUTE = "\"'><img src=x onerror=alert(1)>"


def run(make_uow: UowFactory, call: Callable[[UnitOfWork], Any]) -> Any:
    with make_uow() as uow:
        result = call(uow)
        uow.finish()
    return result


def make_key(make_uow: UowFactory, **values: Any) -> ApiKeyCreated:
    return run(make_uow, lambda uow: apikeys.create(uow, OPERATOR, parse(ApiKeyCreate, values)))  # type: ignore[no-any-return]


def keys_of(make_uow: UowFactory, admin: str) -> list[ApiKeyPublic]:
    page = run(
        make_uow,
        lambda uow: apikeys.list_keys(uow, OPERATOR, admin=admin, include_inactive=True, limit=100),
    )
    return list(page.items)


def in_days(days: int) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).date().isoformat()


def test_it_creates_a_key_and_shows_its_token_once(web: Web, make_uow: UowFactory) -> None:
    values = {
        "name": "deploy",
        "domains": "a.example",
        "read_only": "on",
        "expires_at": in_days(30),
    }
    preview = web.post("/api-keys/new", values | {"intent": "preview"}, as_="domain_admin_a")
    assert preview.status_code == 200
    assert "Preview: nothing has been changed yet" in preview.text
    assert not TOKEN.search(preview.text)
    assert keys_of(make_uow, "alice") == []

    created = web.post("/api-keys/new", values | {"intent": "apply"}, as_="domain_admin_a")
    assert created.status_code == 200
    assert created.headers["cache-control"] == "no-store"
    tokens = set(TOKEN.findall(created.text))
    assert len(tokens) == 1
    token = tokens.pop()
    [key] = keys_of(make_uow, "alice")
    assert (key.name, key.read_only, key.narrowed, key.domains) == (
        "deploy",
        True,
        True,
        ["a.example"],
    )
    assert key.expires_at is not None
    assert key.expires_at.date().isoformat() == in_days(31)
    assert key.id in created.text

    acting = run(make_uow, lambda uow: apikeys.authenticate(uow, token))
    assert (acting.username, acting.read_only, acting.api_key) == ("alice", True, key.id)

    for path in ("/api-keys", f"/api-keys/{key.id}", f"/api-keys/{key.id}/revoke"):
        page = web.get(path, as_="domain_admin_a")
        assert page.status_code == 200, path
        assert key.id in page.text
        assert token not in page.text, path
        assert not TOKEN.search(page.text), path


def test_it_lets_a_superadmin_create_a_key_for_another_admin(
    web: Web, make_uow: UowFactory
) -> None:
    response = web.post("/api-keys/new", {"admin": "bob", "name": "ci", "intent": "apply"})
    assert response.status_code == 200
    [key] = keys_of(make_uow, "bob")
    assert (key.name, key.created_by, key.narrowed) == ("ci", "root", False)


def test_it_ignores_no_admin_field_for_a_domain_admin(web: Web, make_uow: UowFactory) -> None:
    # The form has no such field for domain admins; sent anyway, the service refuses it.
    response = web.post("/api-keys/new", {"admin": "bob", "intent": "apply"}, as_="domain_admin_a")
    assert response.status_code == 422
    assert "You are not allowed to do this." in response.text
    assert keys_of(make_uow, "bob") == []
    assert 'name="admin"' not in web.get("/api-keys/new", as_="domain_admin_a").text


@pytest.mark.parametrize(
    ("expiry", "message"),
    [("2020-01-01", "must lie in the future"), ("next week", "YYYY-MM-DD"), ("2027-02-30", "")],
)
def test_it_reports_a_bad_expiry_in_place(
    web: Web, make_uow: UowFactory, expiry: str, message: str
) -> None:
    response = web.post("/api-keys/new", {"expires_at": expiry, "intent": "apply"})
    assert response.status_code == 422
    assert 'aria-invalid="true" aria-describedby="expires_at-error"' in response.text
    assert message in response.text
    assert not TOKEN.search(response.text)
    assert keys_of(make_uow, "root") == []


def test_it_refuses_to_narrow_a_key_to_a_domain_out_of_reach(
    web: Web, make_uow: UowFactory
) -> None:
    values = {"domains": "b.example", "intent": "apply"}
    response = web.post("/api-keys/new", values, as_="domain_admin_a")
    assert response.status_code == 422
    assert not TOKEN.search(response.text)
    assert keys_of(make_uow, "alice") == []


def test_it_revokes_a_key_after_a_preview(web: Web, make_uow: UowFactory) -> None:
    created = make_key(make_uow, admin="alice", name="old")
    confirm = web.get(f"/api-keys/{created.id}/revoke", as_="domain_admin_a")
    assert confirm.status_code == 200
    assert "Preview: nothing has been changed yet" in confirm.text
    assert run(make_uow, lambda uow: apikeys.authenticate(uow, created.key)).username == "alice"

    revoked = web.post(f"/api-keys/{created.id}/revoke", {"intent": "apply"}, as_="domain_admin_a")
    assert revoked.status_code == 303
    assert revoked.headers["location"] == "/api-keys?notice=revoked"
    with pytest.raises(InvalidKey):
        run(make_uow, lambda uow: apikeys.authenticate(uow, created.key))
    listed = web.get("/api-keys?notice=revoked", as_="domain_admin_a")
    assert "Revoked." in listed.text
    assert created.id not in listed.text
    assert created.id in web.get("/api-keys?all=on", as_="domain_admin_a").text


def test_it_refuses_to_revoke_a_revoked_key(web: Web, make_uow: UowFactory) -> None:
    created = make_key(make_uow, admin="alice")
    run(make_uow, lambda uow: apikeys.revoke(uow, OPERATOR, created.id))
    response = web.post(f"/api-keys/{created.id}/revoke", {"intent": "apply"})
    assert response.status_code == 422
    assert "revoked already" in response.text


def test_domain_admin_sees_only_its_own_keys(web: Web, make_uow: UowFactory) -> None:
    own = make_key(make_uow, admin="alice")
    others = make_key(make_uow, admin="bob")
    listed = web.get("/api-keys", as_="domain_admin_a")
    assert own.id in listed.text
    assert others.id not in listed.text
    assert web.get(f"/api-keys/{others.id}", as_="domain_admin_a").status_code == 404
    assert web.get(f"/api-keys/{others.id}/revoke", as_="domain_admin_a").status_code == 404
    refused = web.post(f"/api-keys/{others.id}/revoke", {"intent": "apply"}, as_="domain_admin_a")
    assert refused.status_code == 404
    assert keys_of(make_uow, "bob")[0].revoked_at is None
    assert web.get("/api-keys?admin=bob", as_="domain_admin_a").status_code == 403


def test_superadmin_sees_everyones_keys_and_filters_by_admin(
    web: Web, make_uow: UowFactory
) -> None:
    alices = make_key(make_uow, admin="alice")
    bobs = make_key(make_uow, admin="bob")
    everyone = web.get("/api-keys")
    assert alices.id in everyone.text
    assert bobs.id in everyone.text
    only_bob = web.get("/api-keys?admin=bob", headers={"HX-Request": "true"})
    assert only_bob.status_code == 200
    assert "<html" not in only_bob.text
    assert bobs.id in only_bob.text
    assert alices.id not in only_bob.text


def test_it_reports_a_bad_admin_filter_in_place(web: Web) -> None:
    response = web.get("/api-keys", params={"admin": "no body"})
    assert response.status_code == 422
    assert 'id="admin-error"' in response.text


def test_it_pages_keys(web: Web, make_uow: UowFactory) -> None:
    def add_many(uow: UnitOfWork) -> None:
        for _ in range(52):
            apikeys.create(uow, OPERATOR, parse(ApiKeyCreate, {"admin": "alice"}))

    run(make_uow, add_many)
    ids = sorted(key.id for key in keys_of(make_uow, "alice"))
    first = web.get("/api-keys", as_="domain_admin_a")
    assert ids[49] in first.text
    assert ids[50] not in first.text
    found = re.search(r'href="(/api-keys\?[^"]*after=[0-9a-f]{12})"', first.text)
    assert found
    second = web.get(found.group(1).replace("&amp;", "&"), as_="domain_admin_a")
    assert ids[50] in second.text
    assert ids[51] in second.text
    assert ids[0] not in second.text


def test_it_shows_hostile_key_names_as_text(web: Web, make_uow: UowFactory) -> None:
    first = make_key(make_uow, admin="alice", name=HOSTILE)
    second = make_key(make_uow, admin="alice", name=HOSTILE_ATTRIBUTE)
    for path in ("/api-keys", f"/api-keys/{first.id}", f"/api-keys/{second.id}"):
        page = web.get(path, as_="domain_admin_a")
        assert HOSTILE not in page.text
        assert "<img src=x" not in page.text
    listed = web.get("/api-keys", as_="domain_admin_a").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in listed
    assert "&lt;img src=x onerror=alert(1)&gt;" in listed


def test_it_refuses_a_revocation_without_the_form_token(
    web: Web, world: World, make_uow: UowFactory
) -> None:
    created = make_key(make_uow, admin="alice")
    response = web.post(
        f"/api-keys/{created.id}/revoke", {"intent": "apply"}, as_="domain_admin_a", csrf=False
    )
    assert response.status_code == 403
    assert keys_of(make_uow, "alice")[0].revoked_at is None
