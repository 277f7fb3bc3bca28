"""What the operating features cost per request, in one process, against baselines measured in
the same run (ratios, not absolute times: the machine is shared and noisy).

    .venv/bin/python bench/ops.py [--calls N]

1. The /auth throttle's check: ours (atomic add/incr/get) on diskcache, on Redis (when
   redis-server is installed) and in memory, beside DRF's own SimpleRateThrottle on the same
   diskcache (its read-modify-write history).
2. Lost updates: 4 processes asking at once against a limit of 100, DRF's throttle and ours.
3. The request middleware (JSON log line, metrics, frame headers) on GET /healthz, against the
   same stack without it; and a whole POST /auth with its rate limit on and off.
4. POST /auth with its rate limit on and off through sumservice.asgi's application, each
   request in an asyncio task of its own, as gunicorn's worker runs them: what Django keeps per
   thread (the cache and its connections) must outlive a request there too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sumservice.settings")

import django  # noqa: E402

django.setup()

from django.test import Client  # noqa: E402
from django.test.utils import override_settings  # noqa: E402
from rest_framework.throttling import SimpleRateThrottle  # noqa: E402

from api.throttling import AuthRateThrottle  # noqa: E402
from bench.asgi import post_scope  # noqa: E402
from sumservice.asgi import application  # noqa: E402

RATES = {"DEFAULT_THROTTLE_RATES": {"auth": "1000000000/minute", "sum": None}}


class OneClient:
    """What the throttles read of a token request."""

    method = "POST"
    META = {"REMOTE_ADDR": "192.0.2.1"}


class DRFThrottle(SimpleRateThrottle):
    rate = "1000000000/minute"

    def get_cache_key(self, request, view):
        return "drf-" + request.META["REMOTE_ADDR"]


def per_call_us(throttle_class, caches: dict, calls: int) -> float:
    """Median of 5 rounds of `calls` checks, microseconds per check."""
    rounds = []
    with override_settings(
        CACHES=caches, REST_FRAMEWORK={**django.conf.settings.REST_FRAMEWORK, **RATES}
    ):
        throttle = throttle_class()
        for _ in range(5):
            started = time.perf_counter()
            for _ in range(calls):
                throttle.allow_request(OneClient(), None)
            rounds.append((time.perf_counter() - started) / calls * 1e6)
    return statistics.median(rounds)


def race(throttle_class, location: str, results) -> None:
    caches = {"default": {"BACKEND": "api.cache.SharedDiskCache", "LOCATION": location}}
    rest = {**django.conf.settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"auth": "100/minute"}}
    with override_settings(CACHES=caches, REST_FRAMEWORK=rest):
        throttle = throttle_class()
        if throttle_class is DRFThrottle:
            throttle.num_requests = 100
        results.put(sum(throttle.allow_request(OneClient(), None) for _ in range(60)))


def let_through(throttle_class) -> int:
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    location = tempfile.mkdtemp(prefix="bench-race-")
    processes = [
        context.Process(target=race, args=(throttle_class, location, results)) for _ in range(4)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    return sum(results.get() for _ in processes)


def request_us(client: Client, calls: int, send) -> float:
    rounds = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(calls):
            send(client)
        rounds.append((time.perf_counter() - started) / calls * 1e6)
    return statistics.median(rounds)


def bridged_auth_us(calls: int) -> float:
    """POST /auth through the ASGI application, each request in a task of its own."""
    body = json.dumps({"username": "alice", "password": "x"}).encode()
    scope = post_scope(
        "/auth",
        [
            (b"host", b"localhost"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
    )
    statuses = set()

    async def receive() -> dict:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            statuses.add(message["status"])

    async def rounds() -> list[float]:
        measured = []
        for _ in range(5):
            started = time.perf_counter()
            for _ in range(calls):
                await asyncio.create_task(application(dict(scope), receive, send))
            measured.append((time.perf_counter() - started) / calls * 1e6)
        return measured

    per_round = asyncio.run(rounds())
    if statuses != {200}:
        raise SystemExit(f"/auth answered {sorted(statuses)} through the bridge, not only 200")
    return statistics.median(per_round)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=500)
    calls = parser.parse_args().calls
    logging.getLogger("sumservice.requests").disabled = True  # measured, not printed
    folder = tempfile.mkdtemp(prefix="bench-ops-")
    disk = {"default": {"BACKEND": "api.cache.SharedDiskCache", "LOCATION": folder}}
    memory = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

    print(f"1. /auth throttle check, microseconds per request (median of 5 x {calls})")
    drf = per_call_us(DRFThrottle, disk, calls)
    ours = per_call_us(AuthRateThrottle, disk, calls)
    print(f"   DRF SimpleRateThrottle, diskcache   {drf:8.1f}   (baseline)")
    print(f"   ours (add/incr/get), diskcache      {ours:8.1f}   x{ours / drf:.2f}")
    in_memory = per_call_us(AuthRateThrottle, memory, calls)
    print(f"   ours, in memory (dev server)        {in_memory:8.1f}")
    try:
        from tests.redisserver import RedisServer

        with RedisServer() as redis:
            cache = {
                "default": {
                    "BACKEND": "django.core.cache.backends.redis.RedisCache",
                    "LOCATION": redis.url,
                }
            }
            on_redis = per_call_us(AuthRateThrottle, cache, calls)
            print(f"   ours, Redis on loopback             {on_redis:8.1f}")
    except AssertionError as missing:
        print(f"   ours, Redis: not measured ({missing})")

    print("2. let through by 4 processes x 60 asks, limit 100 (diskcache)")
    drf_through, ours_through = let_through(DRFThrottle), let_through(AuthRateThrottle)
    print(f"   DRF SimpleRateThrottle: {drf_through}   ours: {ours_through}")

    print("3. whole requests through Django's test client, microseconds (median of 5)")
    middleware = django.conf.settings.MIDDLEWARE
    bare = [
        m
        for m in middleware
        if not m.startswith(("api.request_log", "api.metrics", "api.middleware.Frame"))
    ]
    with override_settings(CACHES=memory):
        with override_settings(MIDDLEWARE=bare):
            without = request_us(Client(HTTP_HOST="localhost"), calls, lambda c: c.get("/healthz"))
        with_all = request_us(Client(HTTP_HOST="localhost"), calls, lambda c: c.get("/healthz"))
        print(f"   GET /healthz without log/metrics/frame middleware {without:8.1f}   (baseline)")
        ratio = with_all / without
        print(
            f"   GET /healthz with them                            {with_all:8.1f}   x{ratio:.2f}"
        )

    def auth(client: Client) -> None:
        client.post(
            "/auth", {"username": "alice", "password": "x"}, content_type="application/json"
        )

    rest = django.conf.settings.REST_FRAMEWORK
    with override_settings(CACHES=disk):
        with override_settings(
            REST_FRAMEWORK={**rest, "DEFAULT_THROTTLE_RATES": {"auth": None, "sum": None}}
        ):
            off = request_us(Client(HTTP_HOST="localhost"), calls // 5, auth)
        with override_settings(REST_FRAMEWORK={**rest, **RATES}):
            on = request_us(Client(HTTP_HOST="localhost"), calls // 5, auth)
    print(f"   POST /auth, rate limit off                        {off:8.1f}   (baseline)")
    print(f"   POST /auth, rate limit on (SharedDiskCache)       {on:8.1f}   x{on / off:.2f}")

    print("4. POST /auth through the ASGI application, a task per request, microseconds")
    with override_settings(CACHES=disk):
        with override_settings(
            REST_FRAMEWORK={**rest, "DEFAULT_THROTTLE_RATES": {"auth": None, "sum": None}}
        ):
            off = bridged_auth_us(calls // 5)
        with override_settings(REST_FRAMEWORK={**rest, **RATES}):
            on = bridged_auth_us(calls // 5)
    print(f"   rate limit off                                    {off:8.1f}   (baseline)")
    print(f"   rate limit on (SharedDiskCache)                   {on:8.1f}   x{on / off:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
