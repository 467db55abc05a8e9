"""The console's skeleton: sessions, CSRF, headers."""

from __future__ import annotations

from tests.functional.web_helpers import Web


def test_it_sends_anonymous_visitors_to_login(web: Web) -> None:
    response = web.get("/", as_="anonymous")
    assert response.status_code == 303
    assert response.headers["location"] == "/login"


def test_it_shows_the_dashboard_to_an_admin(web: Web) -> None:
    response = web.get("/", as_="domain_admin_a")
    assert response.status_code == 200
    assert "alice" in response.text
    assert "content-security-policy" in response.headers


def test_it_refuses_a_post_without_the_session_token(web: Web) -> None:
    response = web.post("/logout", {"csrf_token": "forged"}, as_="superadmin")
    assert response.status_code == 403
