"""What the app does once loaded: no per-request housekeeping where there is nothing to keep."""

from __future__ import annotations

import pytest
from django.core.cache import close_caches
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, reset_queries

from api.cache import closes_nothing


def test_djangos_housekeeping_does_not_run_around_requests() -> None:
    # No database, and caches with nothing to close. disconnect() says whether it was connected.
    assert not request_started.disconnect(reset_queries)
    assert not request_started.disconnect(close_old_connections)
    assert not request_finished.disconnect(close_old_connections)
    assert not request_finished.disconnect(close_caches)


@pytest.mark.parametrize(
    "backend",
    [
        "django.core.cache.backends.locmem.LocMemCache",
        "django.core.cache.backends.redis.RedisCache",
        "api.cache.SharedDiskCache",
    ],
)
def test_the_services_caches_close_nothing(backend: str) -> None:
    assert closes_nothing(backend)


@pytest.mark.parametrize(
    "backend",
    [
        "django.core.cache.backends.memcached.PyMemcacheCache",
        "diskcache.DjangoCache",  # closes its SQLite connections
    ],
)
def test_a_cache_that_closes_connections_is_closed_after_each_request(backend: str) -> None:
    assert not closes_nothing(backend)
