"""What the app does once loaded: which path sums, and no per-request housekeeping where there is
nothing to keep."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.apps import apps
from django.conf import settings
from django.core.cache import close_caches
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, reset_queries

HOUSEKEEPING = [
    (request_started, reset_queries),
    (request_started, close_old_connections),
    (request_finished, close_old_connections),
    (request_finished, close_caches),
]


def test_djangos_housekeeping_does_not_run_around_requests() -> None:
    # No database, and caches with nothing to close. Connected as Django connects them when
    # imported (Django's test client connects some of them again after each request).
    for signal, receiver in HOUSEKEEPING:
        signal.connect(receiver)
    apps.get_app_config("api").ready()
    # disconnect() says whether a receiver was still connected.
    assert [signal.disconnect(receiver) for signal, receiver in HOUSEKEEPING] == [False] * 4


@pytest.mark.parametrize(
    ("limits", "logged"),
    [
        ({}, "Summing with the compiled kernel"),
        (
            {"MAX_NUMBER_LENGTH": 2_000_000},
            "Summing with the pure-Python path: SUMSERVICE_MAX_NUMBER_LENGTH or"
            " SUMSERVICE_MAX_EXPONENT is beyond the compiled kernel's limit of 1048576",
        ),
        (
            {"MAX_EXPONENT": 1_048_577},
            "Summing with the pure-Python path: SUMSERVICE_MAX_NUMBER_LENGTH or"
            " SUMSERVICE_MAX_EXPONENT is beyond the compiled kernel's limit of 1048576",
        ),
    ],
)
def test_the_start_names_the_path_that_sums_under_the_configured_limits(
    limits: dict[str, int], logged: str, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        pytest.MonkeyPatch.context() as patch,
        caplog.at_level(logging.INFO, logger="api.summing"),
    ):
        patch.setattr(settings, "SUMSERVICE", {**settings.SUMSERVICE, **limits})
        apps.get_app_config("api").ready()
    assert [record.getMessage() for record in caplog.records] == [logged]


@pytest.mark.parametrize(
    ("backend", "closed_after_each_request"),
    [
        ("django.core.cache.backends.locmem.LocMemCache", False),
        ("django.core.cache.backends.redis.RedisCache", False),  # a pool, kept
        ("api.cache.SharedDiskCache", False),
        ("django.core.cache.backends.memcached.PyMemcacheCache", True),
        ("diskcache.DjangoCache", True),  # closes its SQLite connections
    ],
)
def test_caches_are_closed_after_each_request_only_where_closing_does_something(
    settings: Any, backend: str, closed_after_each_request: bool
) -> None:
    settings.CACHES = {"default": {"BACKEND": backend, "LOCATION": "unused"}}
    request_finished.connect(close_caches)  # as Django connects it, before the apps are ready
    try:
        apps.get_app_config("api").ready()
        assert request_finished.disconnect(close_caches) is closed_after_each_request
    finally:
        request_finished.disconnect(close_caches)
