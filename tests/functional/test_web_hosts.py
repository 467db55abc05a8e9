"""The console's host pages: list, detail with "check now", add (local and SSH, the SSH
server's fingerprint shown in the preview and pinned on apply), edit paths, remove with a
preview. Superadmins only; hostile text in paths comes out escaped.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from mailwarden.hosts import service as hosts
from mailwarden.hosts.schemas import HostCreate
from mailwarden.kernel.actor import Actor, Channel
from mailwarden.kernel.errors import NotFound
from mailwarden.kernel.schemas import parse
from tests.conftest import UowFactory
from tests.functional.web_helpers import Web
from tests.support.sshd import SshServer

OPERATOR = Actor.local_operator(Channel.SYSTEM)
HOSTILE = "<script>alert(1)</script>\"'><img src=x onerror=alert(1)>"
RAW = re.compile(r"<script>alert|<img src=x")


def add_host(make_uow: UowFactory, name: str = "mx1", **fields: Any) -> None:
    with make_uow() as uow:
        data = parse(HostCreate, {"name": name, "transport": "local", **fields})
        hosts.create(uow, OPERATOR, data)
        uow.finish()


def stored(make_uow: UowFactory, name: str) -> Any:
    with make_uow() as uow:
        return hosts.get(uow, OPERATOR, name)


def test_the_list_links_every_host_and_the_nav_has_hosts(web: Web, make_uow: UowFactory) -> None:
    add_host(make_uow, "mx1")
    add_host(make_uow, "mx2", postfix_config_dir="/etc/postfix-out")

    page = web.get("/hosts")

    assert page.status_code == 200
    assert 'href="/hosts/mx1"' in page.text and 'href="/hosts/mx2"' in page.text
    assert "/etc/postfix-out" in page.text
    assert '<a href="/hosts" aria-current="page">Hosts</a>' in page.text
    assert 'href="/hosts"' not in web.get("/", as_="domain_admin_a").text


@pytest.mark.parametrize(
    "path", ["/hosts", "/hosts/new", "/hosts/mx1", "/hosts/mx1/edit", "/hosts/mx1/remove"]
)
def test_domain_admins_are_refused(web: Web, make_uow: UowFactory, path: str) -> None:
    add_host(make_uow)

    assert web.get(path, as_="domain_admin_a").status_code == 403


def test_domain_admins_cannot_post_either(web: Web, make_uow: UowFactory) -> None:
    add_host(make_uow)

    answers = [
        web.post("/hosts/new", {"name": "mx2", "intent": "apply"}, as_="domain_admin_a"),
        web.post("/hosts/mx1/check", as_="domain_admin_a"),
        web.post("/hosts/mx1/remove", {"intent": "apply"}, as_="domain_admin_a"),
    ]

    assert [answer.status_code for answer in answers] == [403, 403, 403]
    assert stored(make_uow, "mx1").name == "mx1"


def test_a_post_without_the_csrf_token_is_refused(web: Web, make_uow: UowFactory) -> None:
    add_host(make_uow)

    response = web.post("/hosts/mx1/remove", {"intent": "apply"}, csrf=False)

    assert response.status_code == 403
    assert stored(make_uow, "mx1").name == "mx1"


def test_add_a_local_host_preview_then_apply(web: Web, make_uow: UowFactory) -> None:
    values = {
        "name": "mx1",
        "transport": "local",
        "log_paths": "/var/log/mail.log\n/var/log/dovecot.log\n",
        "smtp_port": "2525",
    }

    preview = web.post("/hosts/new", values | {"intent": "preview"})
    with make_uow() as uow, pytest.raises(NotFound):
        hosts.get(uow, OPERATOR, "mx1")
    applied = web.post("/hosts/new", values | {"intent": "apply"})

    assert preview.status_code == 200
    assert "Preview: nothing has been changed yet" in preview.text
    assert applied.status_code == 303
    assert applied.headers["location"] == "/hosts/mx1?notice=created"
    host = stored(make_uow, "mx1")
    assert host.log_paths == ["/var/log/mail.log", "/var/log/dovecot.log"]
    assert host.smtp_port == 2525


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        ({"name": "Mx 1"}, "name", "lower-case letters"),
        ({"name": "mx1", "mail_root": "vmail"}, "mail_root", "absolute path"),
        ({"name": "mx1", "smtp_port": "70000"}, "smtp_port", "65535"),
        ({"name": "mx1", "smtp_port": "25; id"}, "smtp_port", "a port is a number"),
        ({"name": "mx1", "transport": "ssh", "ssh_target": "root@;rm"}, "ssh_target", "no host"),
    ],
)
def test_bad_values_are_shown_at_their_field(
    web: Web, make_uow: UowFactory, values: dict[str, str], field: str, message: str
) -> None:
    form = {"transport": "local", **values, "intent": "apply"}
    if form["transport"] == "ssh":
        form["ssh_key_file"] = "/nonexistent/key"

    response = web.post("/hosts/new", form)

    assert response.status_code == 422
    error = re.search(
        rf'<small id="{field}-error" class="field-error">([^<]*)</small>', response.text
    )
    assert error is not None, response.text
    assert message in error.group(1)


def test_an_ssh_host_shows_the_presented_key_and_pins_it(
    web: Web, make_uow: UowFactory, ssh_server: SshServer
) -> None:
    values = {
        "name": "mx2",
        "transport": "ssh",
        "ssh_target": f"{ssh_server.user}@{ssh_server.host}:{ssh_server.port}",
        "ssh_key_file": str(ssh_server.client_key),
    }

    preview = web.post("/hosts/new", values | {"intent": "preview"})
    pinned = re.search(r'name="pinned_fingerprint" value="([^"]+)"', preview.text)
    # A pinned key other than the one the server presents: the apply is refused.
    swapped = web.post(
        "/hosts/new",
        values | {"intent": "apply", "pinned_fingerprint": "SHA256:" + "D" * 43},
    )
    applied = web.post(
        "/hosts/new",
        values | {"intent": "apply", "pinned_fingerprint": pinned.group(1) if pinned else ""},
    )

    assert preview.status_code == 200
    assert f"presented the key <code>{ssh_server.host_key_fingerprint}</code>" in preview.text
    assert pinned is not None and pinned.group(1) == ssh_server.host_key_fingerprint
    assert swapped.status_code == 422
    assert "not added" in swapped.text
    assert applied.status_code == 303
    assert stored(make_uow, "mx2").host_key_fingerprint == ssh_server.host_key_fingerprint


def test_check_now_shows_each_result(web: Web, make_uow: UowFactory) -> None:
    add_host(make_uow, log_paths=["/nonexistent/mail.log"])

    detail = web.get("/hosts/mx1")
    checked = web.post("/hosts/mx1/check")

    assert 'action="/hosts/mx1/check"' in detail.text and "Check now" in detail.text
    assert checked.status_code == 200
    assert "Check: something failed" in checked.text
    assert "log /nonexistent/mail.log" in checked.text
    assert "connection" in checked.text


def test_edit_previews_then_saves(web: Web, make_uow: UowFactory) -> None:
    add_host(make_uow)
    form = web.get("/hosts/mx1/edit")
    values = {"mail_root": "/srv/vmail", "log_paths": "/var/log/mail.log"}

    preview = web.post("/hosts/mx1/edit", values | {"intent": "preview"})
    unchanged = stored(make_uow, "mx1").mail_root
    saved = web.post("/hosts/mx1/edit", values | {"intent": "apply"})

    assert 'value="/var/vmail"' in form.text
    assert preview.status_code == 200 and "/srv/vmail" in preview.text
    assert unchanged == "/var/vmail"
    assert saved.status_code == 303
    assert stored(make_uow, "mx1").mail_root == "/srv/vmail"


def test_remove_previews_then_removes(web: Web, make_uow: UowFactory) -> None:
    add_host(make_uow)

    confirm = web.get("/hosts/mx1/remove")
    removed = web.post("/hosts/mx1/remove", {"intent": "apply"})

    assert "Preview: nothing has been changed yet" in confirm.text
    assert removed.status_code == 303
    assert removed.headers["location"] == "/hosts?notice=deleted"
    with make_uow() as uow, pytest.raises(NotFound):
        hosts.get(uow, OPERATOR, "mx1")


def test_hostile_paths_are_escaped_on_every_host_page(web: Web, make_uow: UowFactory) -> None:
    add_host(make_uow, mail_root=f"/srv/{HOSTILE}", log_paths=[f"/var/log/{HOSTILE}"])

    pages = [
        web.get("/hosts"),
        web.get("/hosts/mx1"),
        web.get("/hosts/mx1/edit"),
        web.get("/hosts/mx1/remove"),
        web.post("/hosts/mx1/check"),
        web.post("/hosts/new", {"name": "mx2", "mail_root": HOSTILE, "intent": "preview"}),
    ]

    for page in pages:
        assert page.status_code < 500
        assert not RAW.search(page.text), page.url
    assert sum("&lt;script&gt;alert(1)&lt;/script&gt;" in page.text for page in pages) >= 5
