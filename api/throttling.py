"""Rate limits (DRF throttles): /auth per client address, /sum per token subject.

DRF's SimpleRateThrottle keeps each client's request times as a list in the cache and writes it
back after each request: a read-modify-write that loses requests when two workers (or replicas)
handle one client at once, so a client sending in parallel gets past the limit. These throttles
keep DRF's rates, scopes, keys, 429 and Retry-After, and count with the cache's atomic `incr`
instead (one SQLite transaction with diskcache, INCR with Redis): a sliding window estimated
from two fixed-window counters, the current one and the one before it weighted by how much of
it still lies inside the window.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time

from django.conf import settings
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from redis import ConnectionPool
from redis import exceptions as redis_errors
from rest_framework import settings as drf_settings
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

from api import metrics
from api.client_address import address_block, client_address

logger = logging.getLogger(__name__)


class SlidingWindowThrottle(SimpleRateThrottle):
    # After the cache fails, this worker lets requests through without asking it for this long:
    # a Redis that hangs costs each worker one timeout (its event loop's) per period, not one
    # per request, and the log one line.
    CACHE_RETRY_SECONDS = 5.0
    cache_unusable_until = 0.0  # time.monotonic(), this process's

    def get_rate(self) -> str | None:
        # Through the module: DRF replaces its settings object when REST_FRAMEWORK changes,
        # and the class attribute SimpleRateThrottle reads was copied at import.
        return drf_settings.api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def allow_request(self, request: Request, view: APIView) -> bool:
        # OPTIONS is a browser's CORS preflight, sent before the request it asks about: counted,
        # it would halve a browser client's budget.
        if self.rate is None or request.method == "OPTIONS":
            return True
        key = self.get_cache_key(request, view)
        if key is None or time.monotonic() < SlidingWindowThrottle.cache_unusable_until:
            return True
        self.now = self.timer()
        window, elapsed = divmod(self.now, self.duration)
        current = f"{key}:{int(window)}"
        try:
            # add() makes the counter only if it is missing; incr() then counts atomically.
            # Kept two windows: the next window still reads it as its previous one.
            self.cache.add(current, 0, timeout=2 * self.duration)
            count = self.cache.incr(current)
            previous = self.cache.get(f"{key}:{int(window) - 1}", 0)
            weight = 1 - elapsed / self.duration
            if previous * weight + count <= self.num_requests:
                return True
            # A refused request is not counted: a client that keeps trying gets in once the
            # window has moved on.
            self.cache.decr(current)
        except Exception as error:  # the cache is unreachable (Redis down): serve, not refuse
            self._cache_failed(error)
            return True
        # Refused requests of others not yet taken back may be in `count`: at most the limit
        # was let in.
        count = min(count - 1, self.num_requests)
        self.retry_after = self._seconds_until_one_more(count, previous, elapsed)
        metrics.count_rate_limited(self.scope)
        return False

    def _cache_failed(self, error: Exception) -> None:
        SlidingWindowThrottle.cache_unusable_until = time.monotonic() + self.CACHE_RETRY_SECONDS
        metrics.count_rate_limit_cache_error()
        logger.error(
            "Rate limits not applied for %g s: the cache failed (%s: %s)",
            self.CACHE_RETRY_SECONDS,
            type(error).__name__,
            error,
        )

    def _seconds_until_one_more(self, count: int, previous: int, elapsed: float) -> float:
        """How long until the estimate lets one more request in, `count` having been let in
        in this window and `previous` in the one before."""
        limit, duration = self.num_requests, self.duration
        if count < limit:
            # Within this window, once the previous one's weighted share has fallen enough.
            return (1 - (limit - count - 1) / previous) * duration - elapsed
        # In the next window, where this one's count is the share that must fall.
        return duration - elapsed + (1 - (limit - 1) / count) * duration

    def wait(self) -> float:
        return max(1, math.ceil(self.retry_after))


def check_cache() -> str | None:
    """Whether the rate limits' Redis counts, asked once at start: None if it does, or what
    fails while it cannot yet (the limits are off meanwhile, as when it stops later). A URL
    that names no server, or a Redis that refuses the service (a password it does not take,
    keys it does not let this user write, a database it lacks) would refuse every count, for
    good: ImproperlyConfigured."""
    try:
        ConnectionPool.from_url(settings.CACHE_URL)
    except ValueError as error:
        raise ImproperlyConfigured(
            f"SUMSERVICE_CACHE_URL names no Redis server the service can reach: {error}"
        ) from None
    cache = caches.create_connection("default")
    # Written as a throttle writes, in a key of its own form: a Redis user allowed those keys
    # alone may, one that may only read them may not. set, not add: the key of a start a
    # minute before must not expire between the two.
    key = SimpleRateThrottle.cache_format % {"scope": AuthRateThrottle.scope, "ident": "start"}
    try:
        cache.set(key, 0, timeout=60)
        cache.incr(key)
    except Exception as error:
        if _refuses_for_good(error):
            raise ImproperlyConfigured(
                "The rate limits' cache (SUMSERVICE_CACHE_URL) refuses the service:"
                f" {type(error).__name__}: {error}"
            ) from None
        # Down, not there yet, busy: as later, the limits wait for it.
        return f"{type(error).__name__}: {error}"
    return None


def _refuses_for_good(error: Exception) -> bool:
    """A password it does not take (or none given), keys it does not let this user count in, a
    database it lacks; not a Redis busy with a script, loading its data, full, or a replica
    until a failover, which may pass."""
    if isinstance(error, redis_errors.AuthenticationError | redis_errors.NoPermissionError):
        return True
    return isinstance(error, redis_errors.ResponseError) and "DB index" in str(error)


class AuthRateThrottle(SlidingWindowThrottle):
    """Token requests per client address (through trusted proxies), an IPv6 client's per /64:
    slows password guessing."""

    scope = "auth"

    def get_cache_key(self, request: Request, view: APIView) -> str:
        ident = address_block(client_address(request))
        return self.cache_format % {"scope": self.scope, "ident": ident}


class SumRateThrottle(SlidingWindowThrottle):
    """/sum requests per token subject. Authentication runs first, so every request here
    carries a valid token; the subject is hashed into the key, whatever characters it has."""

    scope = "sum"

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        if request.auth is None:
            return None
        subject = str(request.auth.get("sub", "")).encode()
        ident = hashlib.sha256(subject).hexdigest()
        return self.cache_format % {"scope": self.scope, "ident": ident}
