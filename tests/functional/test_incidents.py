"""The monitor's incidents on every face: GET /api/v1/health/incidents, `mailwarden incidents`
and the console's Incidents page (superadmins only), newest first, filtered by host and state,
paged. The rows below stand for what `mailwarden monitor` stored (tests/e2e/test_health.py
makes real ones by stopping Dovecot)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from mailwarden.db.types import utcnow
from mailwarden.health.models import HealthIncident
from mailwarden.hosts import service as hosts
from mailwarden.hosts.models import Host
from mailwarden.hosts.schemas import HostCreate
from mailwarden.kernel.actor import Actor, Channel
from mailwarden.kernel.schemas import parse
from mailwarden.kernel.unit_of_work import UnitOfWork
from mailwarden.settings import Settings
from tests.conftest import UowFactory
from tests.functional.api_helpers import Api
from tests.functional.cli_helpers import Cli
from tests.functional.web_helpers import Web

HOSTILE = "<script>alert(1)</script>"
OPERATOR = Actor.local_operator(Channel.SYSTEM)


def add_incidents(uow: UnitOfWork) -> None:
    """mx1: Dovecot down now (open) and a full disk yesterday (over); mx2: a queue backlog two
    days ago (over); mx3: never failed. Opened in that order, oldest first."""
    now = utcnow()
    session = uow.session
    for name in ("mx1", "mx2", "mx3"):
        hosts.create(uow, OPERATOR, parse(HostCreate, {"name": name, "transport": "local"}))
    ids: dict[str, int] = {name: id_ for name, id_ in session.execute(select(Host.name, Host.id))}
    rows: list[tuple[str, str, str, str, datetime, datetime | None]] = [
        ("mx2", "queue", "warning", "150 messages queued", now - timedelta(days=2), now),
        ("mx1", "disk", "critical", f"95% used {HOSTILE}", now - timedelta(days=1), now),
        ("mx1", "dovecot", "critical", "not running", now - timedelta(minutes=5), None),
    ]
    for host, check, status, detail, opened_at, resolved_at in rows:
        session.add(
            HealthIncident(
                host_id=ids[host],
                check_name=check,
                status=status,
                detail=detail,
                opened_at=opened_at,
                last_seen_at=resolved_at or now,
                resolved_at=resolved_at - timedelta(minutes=1) if resolved_at else None,
            )
        )


def store(make_uow: UowFactory) -> None:
    with make_uow() as uow:
        add_incidents(uow)
        uow.finish()


def test_the_api_lists_incidents_newest_first_by_host_and_state(
    api: Api, make_uow: UowFactory
) -> None:
    store(make_uow)
    path = "/api/v1/health/incidents"

    def checks(**params: str) -> list[tuple[str, str]]:
        response = api.get(path, params=params)
        assert response.status_code == 200, response.text
        return [(item["host"], item["check"]) for item in response.json()["items"]]

    assert checks() == [("mx1", "dovecot"), ("mx1", "disk"), ("mx2", "queue")]
    assert checks(state="open") == [("mx1", "dovecot")]
    assert checks(state="resolved") == [("mx1", "disk"), ("mx2", "queue")]
    assert checks(host="mx1", state="resolved") == [("mx1", "disk")]
    assert checks(host="mx3") == []

    (newest,) = api.get(path, params={"state": "open"}).json()["items"]
    assert newest["status"] == "critical"
    assert newest["resolved_at"] is None
    assert newest["detail"] == "not running"

    # Paged: every incident on exactly one page.
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params = {"limit": "1", **({"cursor": cursor} if cursor else {})}
        body = api.get(path, params=params).json()
        seen += [item["check"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == ["dovecot", "disk", "queue"]

    bad_cursor = api.get(path, params={"cursor": "abc"})
    assert bad_cursor.status_code == 422
    assert "cursor" in bad_cursor.text
    assert api.get(path, params={"state": "closed"}).status_code == 422
    unknown = api.get(path, params={"host": "mx9"})
    assert unknown.status_code == 404
    assert "mx9" in unknown.text
    assert api.get(path, as_="domain_admin_a").status_code == 403


def test_the_console_shows_incidents_escaped_with_filters_in_the_url(
    web: Web, make_uow: UowFactory
) -> None:
    store(make_uow)
    page = web.get("/incidents").text
    rows = page.split("<tbody>")[1].split("</tbody>")[0]
    assert rows.index("dovecot") < rows.index("disk") < rows.index("queue")
    assert HOSTILE not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rows
    assert '<span class="badge badge-rejected">open</span>' in rows
    assert '<a href="/hosts/mx2">mx2</a>' in rows

    only_open = web.get("/incidents", params={"state": "open"}).text
    assert "dovecot" in only_open
    assert "150 messages queued" not in only_open
    of_mx2 = web.get("/incidents", params={"host": "mx2"}).text
    assert "<h1>Incidents of mx2</h1>" in of_mx2
    assert "not running" not in of_mx2

    unknown = web.get("/incidents", params={"host": "mx9"})
    assert unknown.status_code == 422
    assert "mx9" in unknown.text
    assert "No incidents" not in unknown.text

    assert '<a href="/incidents?state=open">Open incidents</a>' in web.get("/").text
    assert 'href="/incidents?host=mx1"' in web.get("/hosts/mx1").text
    assert web.get("/incidents", as_="domain_admin_a").status_code == 403


def test_the_cli_lists_incidents_as_a_table_and_as_json(
    cli: Cli, engine: Engine, settings: Settings
) -> None:
    with UnitOfWork(Session(engine), settings) as uow:
        add_incidents(uow)
        uow.finish()

    listed = cli.json("incidents", "--json")
    assert [(item["host"], item["check"]) for item in listed] == [
        ("mx1", "dovecot"),
        ("mx1", "disk"),
        ("mx2", "queue"),
    ]
    assert [item["check"] for item in cli.json("incidents", "--open", "--json")] == ["dovecot"]
    assert [item["check"] for item in cli.json("incidents", "--resolved", "--json")] == [
        "disk",
        "queue",
    ]

    table = cli.ok("incidents", "--host", "mx1").stdout
    assert "HOST" in table and "LAST SEEN" in table
    assert "dovecot" in table and "open" in table
    assert "queue" not in table

    first = cli.ok("incidents", "--limit", "1").stdout
    assert "dovecot" in first and "disk" not in first
    everything = cli.json("incidents", "--limit", "1", "--all", "--json")
    assert [item["check"] for item in everything] == ["dovecot", "disk", "queue"]

    assert "No incidents." in cli.ok("incidents", "--host", "mx3").stdout
    assert "exclude each other" in cli.refused("incidents", "--open", "--resolved")
    assert "mx9" in cli.refused("incidents", "--host", "mx9")
    assert "cursor" in cli.refused("incidents", "--after", "x1")
