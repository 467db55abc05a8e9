"""The stored health of the mail hosts on its faces: /metrics, GET /api/v1/health, and the
console dashboard's "Mail hosts" card (superadmins only). None of them reaches a host: the
rows below stand for what `mailwarden monitor` stored (tests/e2e/test_health.py runs it)."""

from __future__ import annotations

from datetime import timedelta

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from mailwarden.db.types import utcnow
from mailwarden.health.models import HealthResult
from mailwarden.hosts import service as hosts
from mailwarden.hosts.models import Host
from mailwarden.hosts.schemas import HostCreate
from mailwarden.kernel.actor import Actor, Channel
from mailwarden.kernel.schemas import parse
from tests.conftest import UowFactory
from tests.functional.api_helpers import Api
from tests.functional.web_helpers import Web

OPERATOR = Actor.local_operator(Channel.SYSTEM)
DAY = 86400.0


def store_results(make_uow: UowFactory, *, age_seconds: float = 90.0) -> None:
    """Host mx1 with stored results: Dovecot critical, a queue of 7, a certificate with 10
    days left; host mx2 registered but never checked."""
    checked_at = utcnow() - timedelta(seconds=age_seconds)
    rows = [
        ("postfix", "ok", None, "running"),
        ("dovecot", "critical", None, "not running: master socket refused"),
        ("queue", "ok", 7.0, "7 messages queued"),
        ("queue_age", "ok", 300.0, "the oldest message arrived 5 min ago"),
        ("disk", "warning", 0.85, "85% used"),
        ("smtp_tls", "warning", 10 * DAY, "expires in 10.0 days"),
        ("imap_tls", "unknown", None, "TLS not offered"),
    ]
    with make_uow() as uow:
        for name in ("mx1", "mx2"):
            hosts.create(uow, OPERATOR, parse(HostCreate, {"name": name, "transport": "local"}))
        host_id = uow.session.scalar(select(Host.id).where(Host.name == "mx1"))
        for check, status, value, detail in rows:
            uow.session.add(
                HealthResult(
                    host_id=host_id,
                    check_name=check,
                    status=status,
                    value=value,
                    detail=detail,
                    checked_at=checked_at,
                )
            )
        uow.finish()


def samples(exposition: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    }


def test_metrics_expose_the_stored_health_of_each_host(api: Api, make_uow: UowFactory) -> None:
    store_results(make_uow, age_seconds=90)
    before = utcnow()
    response = api.get("/metrics")
    assert response.status_code == 200
    found = samples(response.text)

    def value(name: str, **labels: str) -> float:
        return found[(name, tuple(sorted(labels.items())))]

    assert value("mailwarden_host_check_status", host="mx1", check="postfix") == 0
    assert value("mailwarden_host_check_status", host="mx1", check="disk") == 1
    assert value("mailwarden_host_check_status", host="mx1", check="dovecot") == 2
    assert value("mailwarden_host_check_status", host="mx1", check="imap_tls") == 3
    assert value("mailwarden_host_queue_messages", host="mx1") == 7
    assert value("mailwarden_host_queue_oldest_seconds", host="mx1") == 300
    assert value("mailwarden_host_disk_used_ratio", host="mx1") == 0.85
    age = value("mailwarden_host_check_age_seconds", host="mx1", check="queue")
    assert 90 <= age < 90 + 60
    expiry = value("mailwarden_host_tls_cert_expiry_timestamp_seconds", host="mx1", endpoint="smtp")
    expected = before.timestamp() - 90 + 10 * DAY
    assert abs(expiry - expected) < 60
    # No result for the certificate that was not offered, and none for a host never checked.
    assert not any(labels == (("endpoint", "imap"), ("host", "mx1")) for _, labels in found)
    assert not any(("host", "mx2") in labels for _, labels in found)


def test_the_api_lists_the_stored_health_by_host(api: Api, make_uow: UowFactory) -> None:
    store_results(make_uow)
    response = api.get("/api/v1/health")
    assert response.status_code == 200
    body = response.json()
    assert [item["host"] for item in body["items"]] == ["mx1", "mx2"]
    mx1, mx2 = body["items"]
    assert mx1["status"] == "critical"
    assert {item["name"]: item["value"] for item in mx1["checks"]}["queue"] == 7
    assert mx2 == {"host": "mx2", "status": "unknown", "checked_at": None, "checks": []}
    page = api.get("/api/v1/health", params={"limit": 1}).json()
    assert [item["host"] for item in page["items"]] == ["mx1"]
    rest = api.get("/api/v1/health", params={"limit": 1, "cursor": page["next_cursor"]}).json()
    assert [item["host"] for item in rest["items"]] == ["mx2"]
    assert rest["next_cursor"] is None
    assert api.get("/api/v1/health", as_="domain_admin_a").status_code == 403


def test_the_dashboard_shows_the_mail_hosts_to_superadmins_only(
    web: Web, make_uow: UowFactory
) -> None:
    store_results(make_uow, age_seconds=300)
    page = web.get("/").text
    assert 'id="hosts-title">Mail hosts</h2>' in page
    assert '<th scope="row" data-label="Host">mx1</th>' in page
    assert '<span class="badge badge-rejected">critical</span>' in page
    assert "dovecot (critical): not running: master socket refused" in page
    assert "disk (warning): 85% used" in page
    assert "5 min ago" in page
    assert "never checked" in page  # mx2
    assert "style=" not in page.split('id="hosts-title"')[1].split("</section>")[0]
    other = web.get("/", as_="domain_admin_a").text
    assert "Mail hosts" not in other
    assert "mx1" not in other
