"""Prometheus metrics: request counts and latencies, and object counts at scrape time.

With several worker processes (`serve --workers N`) each process writes its samples to files in
PROMETHEUS_MULTIPROC_DIR, and a scrape merges them, so any worker answers for all.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

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

    def exposition(self, object_counts: dict[str, int]) -> bytes:
        if os.environ.get(MULTIPROCESS_ENV):
            registry = CollectorRegistry()
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            requests = generate_latest(registry)
        else:
            requests = generate_latest(self.registry)
        objects = CollectorRegistry()
        objects.register(_ObjectCounts(object_counts))
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
