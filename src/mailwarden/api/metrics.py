"""Prometheus metrics: request counts and latencies, object counts at scrape time, and the
mail hosts' health as `mailwarden monitor` stored it last (a scrape never reaches a host; the
age of each result is a gauge of its own, so a monitor that stopped running shows).

With several worker processes (`serve --workers N`) each process writes its samples to files in
PROMETHEUS_MULTIPROC_DIR, and a scrape merges them, so any worker answers for all.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from mailwarden.db.types import utcnow
from mailwarden.health import checks
from mailwarden.health.schemas import HostHealth

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Seconds; dense below 50 ms, where the API's pages are meant to stay.
_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "mailwarden_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "mailwarden_http_request_duration_seconds",
            "Time to answer a request, by method and route template.",
            ["method", "route"],
            buckets=_BUCKETS,
            registry=self.registry,
        )

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def exposition(
        self, object_counts: dict[str, int], host_health: Sequence[HostHealth] = ()
    ) -> bytes:
        if os.environ.get(MULTIPROCESS_ENV):
            registry = CollectorRegistry()
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            requests = generate_latest(registry)
        else:
            requests = generate_latest(self.registry)
        objects = CollectorRegistry()
        objects.register(_ObjectCounts(object_counts))
        objects.register(_HostHealth(host_health, utcnow()))
        return requests + generate_latest(objects)


class _ObjectCounts(Collector):
    """Counted by the scraping request itself: the numbers are the database's, not a worker's."""

    def __init__(self, counts: dict[str, int]) -> None:
        self.counts = counts

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gauge = GaugeMetricFamily(
            "mailwarden_objects", "Objects mailwarden manages, by kind.", labels=["kind"]
        )
        for kind, value in sorted(self.counts.items()):
            gauge.add_metric([kind], value)
        yield gauge


class _HostHealth(Collector):
    """The stored check results of each host, as gauges."""

    def __init__(self, hosts: Sequence[HostHealth], now: datetime) -> None:
        self.hosts = hosts
        self.now = now

    def collect(self) -> Iterator[GaugeMetricFamily]:
        status = GaugeMetricFamily(
            "mailwarden_host_check_status",
            "Latest result of a health check: 0 ok, 1 warning, 2 critical, 3 unknown.",
            labels=["host", "check"],
        )
        age = GaugeMetricFamily(
            "mailwarden_host_check_age_seconds",
            "Seconds since the health check's latest result was taken.",
            labels=["host", "check"],
        )
        queue = GaugeMetricFamily(
            "mailwarden_host_queue_messages",
            "Messages in the Postfix queue at the latest check.",
            labels=["host"],
        )
        oldest = GaugeMetricFamily(
            "mailwarden_host_queue_oldest_seconds",
            "Age of the oldest queued message at the latest check (0: empty queue).",
            labels=["host"],
        )
        disk = GaugeMetricFamily(
            "mailwarden_host_disk_used_ratio",
            "Used share (0-1) of the file system holding the mail root, at the latest check.",
            labels=["host"],
        )
        expiry = GaugeMetricFamily(
            "mailwarden_host_tls_cert_expiry_timestamp_seconds",
            "Unix time at which the certificate of the SMTP or IMAP listener expires.",
            labels=["host", "endpoint"],
        )
        single = {checks.QUEUE: queue, checks.QUEUE_AGE: oldest, checks.DISK: disk}
        endpoints = {checks.SMTP_TLS: "smtp", checks.IMAP_TLS: "imap"}
        for host in self.hosts:
            for item in host.checks:
                status.add_metric([host.host, item.name], item.status.gauge)
                age.add_metric([host.host, item.name], (self.now - item.checked_at).total_seconds())
                if item.value is None:
                    continue
                if item.name in single:
                    single[item.name].add_metric([host.host], item.value)
                elif item.name in endpoints:
                    expires = item.checked_at.timestamp() + item.value
                    expiry.add_metric([host.host, endpoints[item.name]], expires)
        yield from (status, age, queue, oldest, disk, expiry)
