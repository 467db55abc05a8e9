"""Stored hourly traffic through the API and the console's charts (hostile log text escaped)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from sqlalchemy import select

from mailwarden.hosts import service as hosts
from mailwarden.hosts.models import Host
from mailwarden.hosts.schemas import HostCreate
from mailwarden.kernel.actor import Actor, Channel
from mailwarden.kernel.schemas import parse
from mailwarden.logs.models import TrafficHour, TrafficTop
from tests.conftest import UowFactory
from tests.functional.api_helpers import Api
from tests.functional.web_helpers import Web

OPERATOR = Actor.local_operator(Channel.SYSTEM)
HOST = "traffic-mx"
# A sender a mail log really can carry: Postfix logs the envelope sender as sent.
HOSTILE_SENDER = '"><script>alert(1)</script>@evil.example'
HOSTILE_REASON = "RCPT: <img src=x onerror=alert(1)> blocked"
RAW = re.compile(r"<script>alert|<img src=x")
NOW_HOUR = datetime.now().replace(minute=0, second=0, microsecond=0)


def add_traffic(make_uow: UowFactory, name: str = HOST) -> None:
    """A local host with three hours of traffic: 2 and 3 hours ago, and 2 days ago."""
    with make_uow() as uow:
        hosts.create(
            uow,
            OPERATOR,
            parse(HostCreate, {"name": name, "transport": "local", "log_paths": ["/nowhere.log"]}),
        )
        row_id = uow.session.scalar(select(Host.id).where(Host.name == name))
        assert row_id is not None
        for hours_ago, received, rejected in ((2, 5, 1), (3, 7, 0), (48, 11, 4)):
            hour = NOW_HOUR - timedelta(hours=hours_ago)
            row = TrafficHour(host_id=row_id, hour=hour)
            for counter in (
                "delivered",
                "forwarded",
                "deferred",
                "deferrals",
                "bounced",
                "reject_warnings",
                "held",
                "discarded",
                "bytes_received",
                "bytes_delivered",
            ):
                setattr(row, counter, 0)
            row.received, row.delivered, row.rejected = received, received - 1, rejected
            uow.session.add(row)
            uow.session.add_all(
                [
                    TrafficTop(
                        host_id=row_id, kind="sender", hour=hour, entry=HOSTILE_SENDER, count=3
                    ),
                    TrafficTop(
                        host_id=row_id,
                        kind="sender",
                        hour=hour,
                        entry=f"quiet{hours_ago}@a.example",
                        count=1,
                    ),
                    TrafficTop(
                        host_id=row_id,
                        kind="reject_reason",
                        hour=hour,
                        entry=HOSTILE_REASON,
                        count=rejected,
                    ),
                ]
            )
        uow.finish()


def test_the_api_gives_a_series_with_every_hour_and_day_sums(
    api: Api, make_uow: UowFactory
) -> None:
    add_traffic(make_uow)
    since = (NOW_HOUR - timedelta(hours=4)).isoformat()
    until = NOW_HOUR.isoformat()

    hourly = api.get(f"/api/v1/hosts/{HOST}/traffic", params={"since": since, "until": until})
    daily = api.get(
        f"/api/v1/hosts/{HOST}/traffic",
        params={"since": (NOW_HOUR - timedelta(days=3)).isoformat(), "bucket": "day"},
    )

    assert hourly.status_code == 200, hourly.text
    points = hourly.json()["points"]
    assert [p["received"] for p in points] == [0, 7, 5, 0]
    assert points[1]["start"] == (NOW_HOUR - timedelta(hours=3)).isoformat()
    assert daily.status_code == 200
    assert sum(p["received"] for p in daily.json()["points"]) == 23
    assert sum(p["rejected"] for p in daily.json()["points"]) == 5


def test_the_api_ranks_top_entries_over_a_range(api: Api, make_uow: UowFactory) -> None:
    add_traffic(make_uow)

    recent = api.get(f"/api/v1/hosts/{HOST}/traffic/top", params={"kind": "sender"})
    week = api.get(
        f"/api/v1/hosts/{HOST}/traffic/top",
        params={
            "kind": "sender",
            "since": (NOW_HOUR - timedelta(days=7)).isoformat(),
            "limit": "2",
        },
    )

    assert recent.status_code == 200
    assert recent.json()["entries"][0] == {"entry": HOSTILE_SENDER, "count": 6}
    assert week.json()["entries"] == [
        {"entry": HOSTILE_SENDER, "count": 9},
        {"entry": "quiet2@a.example", "count": 1},
    ]


def test_the_api_refuses_bad_ranges_and_unknown_hosts(api: Api, make_uow: UowFactory) -> None:
    add_traffic(make_uow)
    path = f"/api/v1/hosts/{HOST}/traffic"

    backwards = api.get(path, params={"since": NOW_HOUR.isoformat(), "until": "2020-01-01T00:00"})
    too_long = api.get(path, params={"since": "2020-01-01T00:00", "bucket": "hour"})
    unknown_kind = api.get(f"{path}/top", params={"kind": "password"})
    missing = api.get("/api/v1/hosts/nowhere/traffic")

    assert backwards.status_code == 422
    assert too_long.status_code == 422
    assert unknown_kind.status_code == 422
    assert missing.status_code == 404
    assert api.get(path, as_="domain_admin_a").status_code == 403


def test_the_console_charts_the_traffic_and_escapes_log_text(
    web: Web, make_uow: UowFactory
) -> None:
    add_traffic(make_uow)

    page = web.get(f"/traffic?host={HOST}&range=7d", as_="superadmin")

    assert page.status_code == 200
    html = page.text
    assert not RAW.search(html)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;@evil.example" in html
    # The SVG chart: a labelled image with one line per series and a table with the values.
    # Drawn twice, for wide screens and for phones (the stylesheet shows one), each labelled.
    for layout, suffix in (("chart-wide", ""), ("chart-narrow", "-narrow")):
        assert re.search(
            rf'<svg class="chart traffic-chart {layout}" role="img" '
            rf'aria-labelledby="traffic-chart-title{suffix} traffic-chart-desc{suffix}"',
            html,
        )
        title = f'<title id="traffic-chart-title{suffix}">Mail traffic of traffic-mx per hour'
        assert title in html
    assert html.count('<polyline class="series series-') == 2 * 5
    assert "received 23" in html
    # The reject reasons' bars carry the hostile reason as escaped text.
    assert "RCPT: &lt;img src=x onerror=alert(1)&gt; blocked</text>" in html
    assert 'aria-current="page">7 days</a>' in html
    assert 'style="' not in html.split("<main", 1)[1]


def test_the_console_offers_every_range_and_a_page_without_hosts(web: Web) -> None:
    empty = web.get("/traffic", as_="superadmin")

    assert empty.status_code == 200
    assert "No host is registered" in empty.text


def test_only_superadmins_see_the_traffic_page(web: Web, make_uow: UowFactory) -> None:
    add_traffic(make_uow)

    assert web.get("/traffic", as_="domain_admin_a").status_code == 403
    assert 'href="/traffic"' in web.get("/", as_="superadmin").text
    assert 'href="/traffic"' not in web.get("/", as_="domain_admin_a").text
    for span in ("24h", "30d", "90d"):
        page = web.get(f"/traffic?range={span}", as_="superadmin")
        assert page.status_code == 200, span
        assert "Mail traffic of traffic-mx" in page.text
    assert web.get("/traffic?range=1y", as_="superadmin").status_code == 400
