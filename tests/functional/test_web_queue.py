"""The console's mail queue pages without a Postfix: who may see them, CSRF, refused ids, and
a failing host said on the page. The pages on a real queue (listing, escaping, a bulk hold
through its preview) are proven against the devstack in tests/e2e/test_queue.py."""

from __future__ import annotations

from mailwarden.hosts import service as hosts
from mailwarden.hosts.schemas import HostCreate
from mailwarden.kernel.actor import Actor, Channel
from mailwarden.kernel.schemas import parse
from tests.conftest import UowFactory
from tests.functional.web_helpers import Web

OPERATOR = Actor.local_operator(Channel.SYSTEM)
HOST = "mx-web"


def add_host_without_postfix(make_uow: UowFactory) -> None:
    data = {
        "name": HOST,
        "transport": "local",
        "postfix_config_dir": "/nonexistent/mailwarden-functional/postfix",
    }
    with make_uow() as uow:
        hosts.create(uow, OPERATOR, parse(HostCreate, data))
        uow.finish()


def test_it_says_when_no_host_is_registered(web: Web) -> None:
    page = web.get("/queue")
    assert page.status_code == 200
    assert "No host is registered" in page.text


def test_it_shows_only_superadmins_the_queue_link_and_pages(web: Web, make_uow: UowFactory) -> None:
    add_host_without_postfix(make_uow)
    assert 'href="/queue"' in web.get("/", as_="superadmin").text
    assert 'href="/queue"' not in web.get("/", as_="domain_admin_a").text
    for path in ("/queue", f"/queue?host={HOST}", f"/queue/{HOST}/ABCDEF12345"):
        assert web.get(path, as_="domain_admin_a").status_code == 403, path
    for path in (f"/queue/{HOST}/change", f"/queue/{HOST}/flush"):
        refused = web.post(path, {"action": "hold", "ids": "ABCDEF12345"}, as_="domain_admin_a")
        assert refused.status_code == 403, path


def test_it_refuses_a_change_without_the_session_token(web: Web, make_uow: UowFactory) -> None:
    add_host_without_postfix(make_uow)
    form = {"action": "hold", "ids": "ABCDEF12345", "intent": "apply"}
    refused = web.post(f"/queue/{HOST}/change", form, csrf=False)
    assert refused.status_code == 403
    assert "Form expired" in refused.text
    refused = web.post(f"/queue/{HOST}/change", {**form, "csrf_token": "not-the-token"})
    assert refused.status_code == 403


def test_it_refuses_hostile_ids_before_reaching_the_host(web: Web, make_uow: UowFactory) -> None:
    add_host_without_postfix(make_uow)
    for hostile in ("ALL", "-", "../x", "ABC; rm -rf /", "<script>alert(1)</script>"):
        form = {"action": "delete", "ids": ["ABCDEF12345", hostile], "intent": "preview"}
        refused = web.post(f"/queue/{HOST}/change", form)
        # 422 and the rule: the ids were refused before any command (the host would say 502).
        assert refused.status_code == 422, (hostile, refused.text)
        assert "not a Postfix queue id" in refused.text
        assert "<script>alert" not in refused.text
    unknown = web.post(
        f"/queue/{HOST}/change", {"action": "explode", "ids": "ABCDEF12345", "intent": "preview"}
    )
    assert unknown.status_code == 422
    nothing = web.post(f"/queue/{HOST}/change", {"action": "hold", "intent": "preview"})
    assert nothing.status_code == 422
    assert "Select at least one message" in nothing.text


def test_it_says_on_the_page_when_the_host_fails(web: Web, make_uow: UowFactory) -> None:
    add_host_without_postfix(make_uow)
    page = web.get(f"/queue?host={HOST}&queue=deferred&sender=%3Cscript%3Ealert(1)")
    assert page.status_code == 502
    assert "postqueue" in page.text and "main.cf" in page.text
    assert "<script>alert" not in page.text
    assert "&lt;script&gt;alert(1)" in page.text  # the filter, kept in its field, escaped
    detail = web.get(f"/queue/{HOST}/ABCDEF12345")
    assert detail.status_code == 502
    preview = web.post(
        f"/queue/{HOST}/change", {"action": "hold", "ids": "ABCDEF12345", "intent": "preview"}
    )
    assert preview.status_code == 502
    flush = web.post(f"/queue/{HOST}/flush", {"intent": "preview"})
    assert flush.status_code == 502
    bad_filter = web.get(f"/queue?host={HOST}&older_than=soon")
    assert bad_filter.status_code == 422
    missing = web.get("/queue?host=no-such-host")
    assert missing.status_code == 422
