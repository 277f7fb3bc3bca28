"""GET /metrics: what the service has done, in Prometheus' text format.

Under gunicorn every worker is a process of its own, so the metrics use prometheus_client's
multiprocess mode: each worker writes its values to files in PROMETHEUS_MULTIPROC_DIR (made,
and emptied, by gunicorn.conf.py's hooks), and a scrape, answered by any one worker, adds up
the files of all of them. A worker's counters and histograms outlive it (a count must not go
down), so when one exits its files are added to one archive per kind (`fold_dead_workers`):
workers recycled every GUNICORN_MAX_REQUESTS would otherwise leave files that every scrape
reads, without end. Without that variable (the development server, the in-process tests) the
process's own registry is served.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Callable, Collection, Iterator
from functools import cache, wraps
from pathlib import Path
from typing import Any

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
from prometheus_client.mmap_dict import MmapedDict

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

REFUSALS = Counter(
    "sumservice_http_refusals",
    "Requests the server refused before Django saw them (a malformed head, a header or body"
    " timeout, a full worker), by status.",
    ["status"],
)
RATE_LIMIT_CACHE_ERRORS = Counter(
    "sumservice_rate_limit_cache_errors",
    "Times the rate limits' cache failed (Redis down or too slow); each lets requests through"
    " unlimited for a few seconds.",
)


logger = logging.getLogger(__name__)


def never_failing(count: Callable[..., None]) -> Callable[..., None]:
    """`count`, which a failure to write its value (the shared folder removed under a running
    service) cannot turn into a failed request: the value is lost, and each worker says so once."""

    @wraps(count)
    def counted(*args: Any) -> None:
        try:
            count(*args)
        except Exception as error:  # whatever prometheus_client raises, never the request's
            _lost_a_count(error)

    return counted


def _lost_a_count(error: Exception) -> None:
    global _said_lost
    if not _said_lost:
        _said_lost = True
        logger.error("Metrics are not counted: %s: %s", type(error).__name__, error)


_said_lost = False


# What the views count, through these: with SUMSERVICE_METRICS=false nothing is counted (nor
# written to the multiprocess files), as nothing is served.
@never_failing
def count_token_issued() -> None:
    if settings.SUMSERVICE["METRICS"]:
        TOKENS_ISSUED.inc()


@never_failing
def count_rate_limited(scope: str) -> None:
    if settings.SUMSERVICE["METRICS"]:
        THROTTLED.labels(scope=scope).inc()


@never_failing
def count_refusal(status: int) -> None:
    if settings.SUMSERVICE["METRICS"]:
        REFUSALS.labels(status=str(status)).inc()


@never_failing
def count_rate_limit_cache_error() -> None:
    if settings.SUMSERVICE["METRICS"]:
        RATE_LIMIT_CACHE_ERRORS.inc()


@never_failing
def observe_sum_body(size: int) -> None:
    if settings.SUMSERVICE["METRICS"]:
        SUM_BODY_BYTES.observe(size)


# Label values come from this fixed set, whatever a client sends: a label per distinct path or
# method would let anyone grow the metrics without bound.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def endpoint_name(request: HttpRequest, status: int) -> str:
    """The URL pattern's name (auth, sum, ...), `static` for a static file served (WhiteNoise's,
    answered before any URL is resolved), `none` for a path the service does not serve."""
    match = request.resolver_match
    if match is None:  # answered before URL resolution (a 413 from the body limit)
        if status < 400 and request.path.startswith(settings.STATIC_URL):
            return "static"
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
        endpoint = endpoint_name(request, response.status_code)
        method = request.method if request.method in _METHODS else "other"
        try:  # as never_failing, without its call on every request
            # A worker's first count opens its files: labels() may fail as inc() may.
            counted, timed = _series(endpoint, method, response.status_code)
            counted.inc()
            timed.observe(time.perf_counter() - started)
        except Exception as error:
            _lost_a_count(error)
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
    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)
    folder = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    # Made again if it was removed under the running service, so that a scrape answers (what
    # workers started since count; the others count into their removed files, until replaced).
    os.makedirs(folder, mode=0o700, exist_ok=True)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    with _folder_lock(folder, fcntl.LOCK_SH):
        text = generate_latest(registry)
    return HttpResponse(text, content_type=CONTENT_TYPE_LATEST)


# Kinds whose values are kept once their worker is gone; gauges are the live ones'
# (prometheus_client's mark_process_dead removes a dead worker's).
_KEPT_KINDS = ("counter", "histogram")
# Taken shared by a scrape and exclusive by a fold: a scrape between a fold's two steps would
# count a worker twice or not at all, and one that listed a file just removed would fail.
_LOCK_FILE = "folding.lock"


@contextlib.contextmanager
def _folder_lock(folder: str, kind: int) -> Iterator[None]:
    with open(os.path.join(folder, _LOCK_FILE), "a") as lock:
        fcntl.flock(lock, kind)
        yield  # unlocked as the file closes


def fold_dead_workers(folder: str, living: Collection[int]) -> bool:
    """Add the counters and histograms of the workers not `living` to the folder's archive files
    (`counter_archive.db`, `histogram_archive.db`), and remove their own files.

    Each value is a sample's running total (a histogram's per bucket), so the archive's is the
    sum of the dead workers'; prometheus_client reads it as one more process's file. Run by
    gunicorn's master, which must never wait on a worker: while a scrape reads the folder this
    folds nothing and says so (False), and the next worker to exit folds what is left.
    """
    try:
        with _folder_lock(folder, fcntl.LOCK_EX | fcntl.LOCK_NB):
            for kind in _KEPT_KINDS:
                for dead in Path(folder).glob(f"{kind}_*.db"):
                    pid = dead.name[len(kind) + 1 : -len(".db")]
                    if pid.isdigit() and int(pid) not in living:
                        _add_to_archive(dead, Path(folder) / f"{kind}_archive.db")
                        dead.unlink()
    except BlockingIOError:
        return False
    return True


def _add_to_archive(dead: Path, archive_path: Path) -> None:
    archive = MmapedDict(str(archive_path))
    try:
        for key, value, timestamp, _ in MmapedDict.read_all_values_from_file(str(dead)):
            total, _ = archive.read_value(key)
            archive.write_value(key, total + value, timestamp)
    finally:
        archive.close()
