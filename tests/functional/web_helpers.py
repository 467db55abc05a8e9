"""A browser-like HTTP client on the console and portal, logged in as the world's personas.

Sessions are opened through the websessions service (as a login would), so tests of a page do
not repeat the login form; the login form has tests of its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Connection, select

from mailwarden.admins.models import Admin
from mailwarden.mailboxes.models import Mailbox
from mailwarden.settings import Settings
from mailwarden.websessions import service as websessions
from mailwarden.websessions.service import SessionKind
from tests.conftest import UowFactory
from tests.functional.api_helpers import api_rebound, shared_app

# Persona -> (kind, admin username or mailbox address).
WEB_PERSONAS: dict[str, tuple[SessionKind, str]] = {
    "superadmin": (SessionKind.ADMIN, "root"),
    "domain_admin_a": (SessionKind.ADMIN, "alice"),
    "domain_admin_b": (SessionKind.ADMIN, "bob"),
    "mailbox_a": (SessionKind.MAILBOX, "user1@a.example"),
    "mailbox_b": (SessionKind.MAILBOX, "user1@b.example"),
}
COOKIE = {SessionKind.ADMIN: "mw_console", SessionKind.MAILBOX: "mw_portal"}
_CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]*)"')


def csrf_in(html: str) -> str:
    """The CSRF token of the first form in a page."""
    found = _CSRF_INPUT.search(html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


@dataclass
class Web:
    """`web.get(path, as_="superadmin")`; `web.post(...)` adds the session's CSRF token."""

    client: TestClient
    make_uow: UowFactory
    sessions: dict[str, tuple[str, str]] = field(default_factory=dict)

    def login(self, persona: str) -> tuple[str, str]:
        """(cookie token, CSRF token) of a fresh session of `persona`."""
        if persona not in self.sessions:
            kind, name = WEB_PERSONAS[persona]
            with self.make_uow() as uow:
                if kind is SessionKind.ADMIN:
                    principal = uow.session.scalar(select(Admin.id).where(Admin.username == name))
                else:
                    principal = uow.session.scalar(
                        select(Mailbox.id).where(Mailbox.address == name)
                    )
                assert principal is not None, f"no {kind.value} {name} in the world"
                opened = websessions.start(uow, kind, principal)
                uow.finish()
            self.sessions[persona] = (opened.token, opened.csrf_token)
        return self.sessions[persona]

    def _cookies(self, persona: str | None) -> dict[str, str]:
        if persona is None or persona == "anonymous":
            return {}
        token, _ = self.login(persona)
        return {COOKIE[WEB_PERSONAS[persona][0]]: token}

    def request(
        self, method: str, path: str, *, as_: str | None = "superadmin", **kwargs: Any
    ) -> Any:
        self.client.cookies.clear()
        for name, value in self._cookies(as_).items():
            self.client.cookies.set(name, value)
        kwargs.setdefault("follow_redirects", False)
        return self.client.request(method, path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(
        self,
        path: str,
        data: dict[str, Any] | None = None,
        *,
        as_: str | None = "superadmin",
        csrf: bool = True,
        **kwargs: Any,
    ) -> Any:
        data = dict(data or {})
        if csrf and as_ not in (None, "anonymous"):
            data.setdefault("csrf_token", self.login(as_)[1])
        return self.request("POST", path, as_=as_, data=data, **kwargs)


@contextmanager
def web_on(connection: Connection, settings: Settings, make_uow: UowFactory) -> Iterator[Web]:
    """The shared app bound to the test's transaction, with a Web client for the personas."""
    with api_rebound(shared_app(), connection, settings, {}) as api:
        yield Web(api.client, make_uow)
