"""Prometheus metrics. One registry per app, so tests can build many apps in one process."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bastion.classifiers.services import FAILURES
from bastion.matching.matcher import Matcher


class Metrics:
    def __init__(self, matcher: Matcher) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("bastion_http_requests_total", "HTTP requests", ["route", "method", "status"],
                                registry=self.registry)
        self.latency = Histogram("bastion_http_request_seconds", "HTTP request latency", ["route", "method"],
                                 registry=self.registry,
                                 buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10))
        index_entries = Gauge("bastion_index_entries", "Live entries per signal-type index", ["signal_type"],
                              registry=self.registry)
        index_bytes = Gauge("bastion_index_bytes", "Memory held per signal-type index", ["signal_type"],
                            registry=self.registry)
        lag = Gauge("bastion_index_applied_change_id", "Last bank change applied by this process",
                    registry=self.registry)
        for name in matcher.indexes:
            index_entries.labels(name).set_function(_reader(matcher.sizes, name))
            index_bytes.labels(name).set_function(_reader(matcher.memory, name))
        lag.set_function(lambda: float(matcher.freshness.applied_change_id))
        self.registry.register(_ClassifierFailures())

    def install(self, app: FastAPI) -> None:
        app.add_middleware(_Measure, metrics=self)


class _Measure:
    """Counts and times every HTTP request by route template. Plain ASGI: no extra task or body copy per request,
    unlike ``@app.middleware("http")``, which costs about a millisecond on every upload."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # an exception escaping the app is answered 500 by the server

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            path = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.latency.labels(path, scope["method"]).observe(time.perf_counter() - start)
            self.metrics.requests.labels(path, scope["method"], str(status)).inc()


def _reader(source: Callable[[], dict[str, int]], name: str) -> Callable[[], float]:
    """A gauge callback reading one signal type's figure when Prometheus scrapes, not before."""
    return lambda: float(source()[name])


class _ClassifierFailures(Collector):
    """``bastion_classifier_failures_total{classifier}``: uploads a classifier gave no score (outage, bad answer)."""

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily("bastion_classifier_failures", "Uploads a classifier could not score",
                                     labels=["classifier"])
        for name, count in sorted(FAILURES.snapshot().items()):
            family.add_metric([name], count)
        yield family
