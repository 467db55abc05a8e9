"""The API's shared behaviour: authentication, problem details, dry runs, lists, limits."""

from __future__ import annotations

from tests.functional.api_helpers import Api


def test_it_refuses_a_request_without_a_key_with_a_bearer_challenge(api: Api) -> None:
    response = api.get("/api/v1/domains", as_="anonymous")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["status"] == 401


def test_it_lists_domains_for_a_superadmin(api: Api) -> None:
    response = api.get("/api/v1/domains")
    assert response.status_code == 200
    body = response.json()
    assert [d["name"] for d in body["items"]] == ["a.example", "b.example"]
    assert body["next_cursor"] is None


def test_domain_admin_sees_only_its_domains(api: Api) -> None:
    body = api.get("/api/v1/domains", as_="domain_admin_a").json()
    assert [d["name"] for d in body["items"]] == ["a.example"]
    assert api.get("/api/v1/domains/b.example", as_="domain_admin_a").status_code == 404
