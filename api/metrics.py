"""GET /metrics: what the service has done, in Prometheus' text format.

Under gunicorn every worker is a process of its own, so the metrics use prometheus_client's
multiprocess mode: each worker writes its values to files in PROMETHEUS_MULTIPROC_DIR (made,
and emptied, by gunicorn.conf.py's hooks), and a scrape, answered by any one worker, adds up
the files of all of them. Without that variable (the development server, the in-process
tests) the process's own registry is served.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from functools import cache

from django.conf import settings
from django.core.exceptions import MiddlewareNotUsed
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, resolve
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

from api.error_views import json_error

REQUESTS = Counter(
    "sumservice_http_requests",
    "HTTP requests answered, by endpoint, method and status.",
    ["endpoint", "method", "status"],
)
LATENCY = Histogram(
    "sumservice_http_request_duration_seconds",
    "Time from the request reaching Django to its response, by endpoint.",
    ["endpoint"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
TOKENS_ISSUED = Counter("sumservice_tokens_issued", "Access tokens issued by /auth.")
SUM_BODY_BYTES = Histogram(
    "sumservice_sum_request_body_bytes",
    "Sizes of the JSON documents /sum was given to sum.",
    buckets=(64, 1024, 16 * 1024, 256 * 1024, 1024**2, 4 * 1024**2, 10 * 1024**2),
)
THROTTLED = Counter(
    "sumservice_rate_limited_requests",
    "Requests refused with 429 by a rate limit, by its scope (auth, sum).",
    ["scope"],
)

# Label values come from this fixed set, whatever a client sends: a label per distinct path or
# method would let anyone grow the metrics without bound.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def endpoint_name(request: HttpRequest) -> str:
    """The URL pattern's name (auth, sum, ...): `none` for a path the service does not serve."""
    match = request.resolver_match
    if match is None:  # answered before URL resolution (a 413 from the body limit)
        try:
            match = resolve(request.path_info)
        except Resolver404:
            return "none"
    return match.url_name or "none"


class MetricsMiddleware:
    """Counts every response and times it; off (not installed) with SUMSERVICE_METRICS=false."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        if not settings.SUMSERVICE["METRICS"]:
            raise MiddlewareNotUsed
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        endpoint = endpoint_name(request)
        method = request.method if request.method in _METHODS else "other"
        counted, timed = _series(endpoint, method, response.status_code)
        counted.inc()
        timed.observe(time.perf_counter() - started)
        return response


@cache  # a few dozen entries: endpoints, methods and statuses are small fixed sets
def _series(endpoint: str, method: str, status: int) -> tuple[Counter, Histogram]:
    """A response's series, looked up once rather than through labels() per request."""
    return REQUESTS.labels(endpoint, method, str(status)), LATENCY.labels(endpoint)


def metrics_view(request: HttpRequest) -> HttpResponse:
    if not settings.SUMSERVICE["METRICS"]:
        return json_error(404, "Metrics are turned off (SUMSERVICE_METRICS).")
    if request.method not in ("GET", "HEAD"):
        response = json_error(405, f'Method "{request.method}" not allowed.')
        response["Allow"] = "GET, HEAD"
        return response
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
