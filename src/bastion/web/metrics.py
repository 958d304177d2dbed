"""Prometheus metrics. One registry per app, so tests can build many apps in one process."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

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

    def install(self, app: FastAPI) -> None:
        @app.middleware("http")
        async def measure(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
            start = time.perf_counter()
            response = await call_next(request)
            route = request.scope.get("route")
            path = getattr(route, "path", "unmatched")
            self.latency.labels(path, request.method).observe(time.perf_counter() - start)
            self.requests.labels(path, request.method, str(response.status_code)).inc()
            return response


def _reader(source: Callable[[], dict[str, int]], name: str) -> Callable[[], float]:
    """A gauge callback reading one signal type's figure when Prometheus scrapes, not before."""
    return lambda: float(source()[name])
