"""Mail traffic of a host, charted from what `mailwarden logs ingest` keeps (superadmins).

The host and the range are in the URL (bookmarkable). Charts are SVG drawn on the server;
senders, recipients and reject reasons come from the mail log and are hostile text like any
other: the template escapes them in the page and in the SVG.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from mailwarden.api.context import runtime_of
from mailwarden.hosts import service as hosts
from mailwarden.kernel.permissions import Permission, require
from mailwarden.logs import service
from mailwarden.logs.schemas import TopKind, TopList, TrafficPoint, TrafficSeries

from ..charts import NARROW_HEIGHT, NARROW_WIDTH, BarChart, LineChart, bar_chart, line_chart
from ..rendering import render
from ..sessions import AdminViewer

router = APIRouter(include_in_schema=False)

Range = Literal["24h", "7d", "30d", "90d"]
RANGES: Final[dict[str, tuple[str, timedelta, Literal["hour", "day"]]]] = {
    "24h": ("24 hours", timedelta(hours=24), "hour"),
    "7d": ("7 days", timedelta(days=7), "hour"),
    "30d": ("30 days", timedelta(days=30), "day"),
    "90d": ("90 days", timedelta(days=90), "day"),
}
SERIES: Final = ("received", "delivered", "deferred", "bounced", "rejected")
TOP_LISTS: Final[tuple[tuple[TopKind, str], ...]] = (
    ("sender", "Top senders"),
    ("recipient", "Top recipients"),
    ("sender_domain", "Top sending domains"),
    ("recipient_domain", "Top recipient domains"),
)
HOST_PICKER_SIZE: Final = 100


@dataclass(frozen=True, slots=True)
class TrafficView:
    series: TrafficSeries
    chart: LineChart
    rows: list[TrafficPoint]
    tops: list[tuple[str, TopList]]
    reasons: TopList
    reasons_chart: BarChart
    # The same charts drawn for a phone's width (the stylesheet shows one or the other).
    narrow_chart: LineChart
    narrow_reasons_chart: BarChart


def _label(moment: datetime, bucket: str) -> str:
    return moment.strftime("%m-%d %H:00" if bucket == "hour" else "%Y-%m-%d")


def _view(request: Request, viewer: Any, host: str, span: Range) -> TrafficView:
    _, length, bucket = RANGES[span]
    until = datetime.now().replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    since = until - length
    with runtime_of(request).unit_of_work(dry_run=True) as uow:
        series = service.traffic(uow, viewer.actor, host, since=since, until=until, bucket=bucket)
        tops = [
            (title, service.top(uow, viewer.actor, host, kind=kind, since=since, until=until))
            for kind, title in TOP_LISTS
        ]
        reasons = service.top(
            uow, viewer.actor, host, kind="reject_reason", since=since, until=until
        )
    labels = [_label(point.start, bucket) for point in series.points]
    values = {name: [getattr(point, name) for point in series.points] for name in SERIES}
    entries = [(entry.entry, entry.count) for entry in reasons.entries]
    return TrafficView(
        series,
        line_chart(labels, values),
        series.points,
        tops,
        reasons,
        bar_chart(entries),
        line_chart(labels, values, width=NARROW_WIDTH, height=NARROW_HEIGHT, x_tick_count=3),
        bar_chart(entries, width=NARROW_WIDTH),
    )


@router.get("/traffic")
def traffic(
    request: Request,
    viewer: AdminViewer,
    host: Annotated[str, Query(max_length=63)] = "",
    span: Annotated[Range, Query(alias="range")] = "24h",
) -> Response:
    require(viewer.actor, Permission.LOGS_READ)
    with runtime_of(request).unit_of_work(dry_run=True) as uow:
        names = [
            item.name for item in hosts.list_hosts(uow, viewer.actor, limit=HOST_PICKER_SIZE).items
        ]
    chosen = host or (names[0] if names else "")
    view = _view(request, viewer, chosen, span) if chosen else None
    context = {
        "title": f"Traffic of {chosen}" if chosen else "Traffic",
        "hosts": names,
        "host": chosen,
        "span": span,
        "ranges": [(key, label) for key, (label, _, _) in RANGES.items()],
        "series_names": SERIES,
        "view": view,
    }
    return render(request, "traffic/show.html", context, viewer=viewer)
