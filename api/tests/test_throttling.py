"""Rate limits through Django's test client: /auth per client address, /sum per subject."""

from __future__ import annotations

import multiprocessing
import time
from typing import Any
from unittest import mock

import pytest
from django.core.cache import cache
from django.test import Client
from django.test.utils import override_settings

from api.tests.utils import issue_token, post_sum, use_unreachable_redis
from api.throttling import AuthRateThrottle, SlidingWindowThrottle

CREDENTIALS = {"username": "alice", "password": "secret"}


def post_auth(client: Client, **extra: str):
    return client.post("/auth", CREDENTIALS, content_type="application/json", **extra)


@pytest.fixture
def rates(settings: Any):
    """Set the throttle rates for a test: rates(auth="3/minute", sum=None)."""

    def set_rates(**rates: str | None) -> None:
        settings.REST_FRAMEWORK = {
            **settings.REST_FRAMEWORK,
            "DEFAULT_THROTTLE_RATES": {"auth": None, "sum": None, **rates},
        }

    return set_rates


@pytest.fixture
def clock(monkeypatch):
    """The throttles' clock, set by the test: clock.now = ..."""

    class Clock:
        now = 1_800_000_000.0  # the start of a minute, an hour and a day

    monkeypatch.setattr(SlidingWindowThrottle, "timer", lambda self: Clock.now)
    return Clock


def assert_429(response) -> int:
    assert response.status_code == 429
    assert response.json()["detail"].startswith("Request was throttled.")
    retry_after = int(response["Retry-After"])
    assert retry_after >= 1
    return retry_after


def test_the_61st_token_request_in_a_minute_is_refused(client: Client, clock) -> None:
    # The shipped default, 60/minute per client address. On the real clock Retry-After is up
    # to 61 s (the window's 60 weigh under 59 one second into the next), so a fixed moment.
    clock.now += 30.5
    for _ in range(60):
        assert post_auth(client).status_code == 200
    retry_after = assert_429(post_auth(client))
    assert retry_after == 31


def test_each_client_address_has_its_own_budget(client: Client, rates) -> None:
    rates(auth="2/minute")
    for _ in range(2):
        assert post_auth(client, REMOTE_ADDR="192.0.2.1").status_code == 200
    assert_429(post_auth(client, REMOTE_ADDR="192.0.2.1"))
    assert post_auth(client, REMOTE_ADDR="192.0.2.2").status_code == 200


def test_the_address_behind_a_trusted_proxy_is_the_client(client: Client, rates) -> None:
    rates(auth="2/minute")
    # Through the local proxy (trusted by default): each forwarded address is its own client,
    # whatever the client wrote further left.
    proxy = {"REMOTE_ADDR": "127.0.0.1"}
    for _ in range(2):
        response = post_auth(client, HTTP_X_FORWARDED_FOR="10.0.0.9, 198.51.100.7", **proxy)
        assert response.status_code == 200
    assert_429(post_auth(client, HTTP_X_FORWARDED_FOR="10.0.0.1, 198.51.100.7", **proxy))
    assert post_auth(client, HTTP_X_FORWARDED_FOR="198.51.100.8", **proxy).status_code == 200


def test_an_ipv6_client_has_one_budget_for_its_64(client: Client, rates) -> None:
    """A host is given a whole /64 and may pick any address in it for each request."""
    rates(auth="2/minute")
    for host in ("2001:db8:1:2::1", "2001:db8:1:2::2"):
        assert post_auth(client, REMOTE_ADDR=host).status_code == 200
    assert_429(post_auth(client, REMOTE_ADDR="2001:db8:1:2:ffff::3"))
    assert post_auth(client, REMOTE_ADDR="2001:db8:1:3::1").status_code == 200


def test_an_untrusted_peer_cannot_pick_its_address(client: Client, rates) -> None:
    rates(auth="2/minute")
    for n in range(2):
        forged = {"HTTP_X_FORWARDED_FOR": f"203.0.113.{n}"}
        assert post_auth(client, REMOTE_ADDR="192.0.2.50", **forged).status_code == 200
    forged = {"HTTP_X_FORWARDED_FOR": "203.0.113.99"}
    assert_429(post_auth(client, REMOTE_ADDR="192.0.2.50", **forged))


def test_trusted_proxies_are_configurable(client: Client, rates, settings: Any) -> None:
    rates(auth="1/minute")
    settings.SUMSERVICE = {**settings.SUMSERVICE, "TRUSTED_PROXIES": ["10.1.0.0/16"]}
    via_proxy = {"REMOTE_ADDR": "10.1.2.3"}
    assert post_auth(client, HTTP_X_FORWARDED_FOR="198.51.100.1", **via_proxy).status_code == 200
    assert post_auth(client, HTTP_X_FORWARDED_FOR="198.51.100.2", **via_proxy).status_code == 200
    # 127.0.0.1 is no longer trusted: its X-Forwarded-For is ignored.
    local = {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "198.51.100.3"}
    assert post_auth(client, **local).status_code == 200
    local["HTTP_X_FORWARDED_FOR"] = "198.51.100.4"
    assert_429(post_auth(client, **local))


def test_off_turns_the_token_limit_off(client: Client, rates) -> None:
    rates(auth=None)
    for _ in range(70):
        assert post_auth(client).status_code == 200


def test_sum_is_limited_per_subject_when_asked(client: Client, rates) -> None:
    rates(sum="2/minute")
    alice, bob = issue_token(client, "alice"), issue_token(client, "bob")
    for _ in range(2):
        assert post_sum(client, "[1]", alice).status_code == 200
    assert_429(post_sum(client, "[1]", alice))
    # Another token of the same subject shares the budget; another subject has its own.
    assert_429(post_sum(client, "[1]", issue_token(client, "alice")))
    assert post_sum(client, "[1]", bob).status_code == 200


def test_sum_is_not_limited_by_default(client: Client, token: str) -> None:
    for _ in range(70):
        assert post_sum(client, "[1]", token).status_code == 200


def test_a_request_without_a_token_is_401_not_counted(client: Client, rates) -> None:
    rates(sum="1/minute")
    for _ in range(3):
        assert post_sum(client, "[1]", None).status_code == 401
    assert post_sum(client, "[1]", issue_token(client)).status_code == 200


def test_only_token_requests_spend_the_token_budget(client: Client, rates) -> None:
    """A CORS preflight (OPTIONS) comes before each token request a browser sends, and other
    methods are refused (405) before any rate limit, whatever the budget left."""
    rates(auth="2/minute")
    for method in ("options", "get", "put", "delete"):
        getattr(client, method)("/auth")
    for _ in range(2):
        assert post_auth(client).status_code == 200
    assert_429(post_auth(client))
    assert client.get("/auth").status_code == 405
    assert client.options("/auth").status_code == 200


def test_a_preflight_spends_no_sum_budget(client: Client, rates) -> None:
    rates(sum="1/minute")
    token = issue_token(client)
    preflight = client.options("/sum", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert preflight.status_code == 200
    assert post_sum(client, "[1]", token).status_code == 200
    assert_429(post_sum(client, "[1]", token))
    assert client.get("/sum", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 405


def test_waiting_retry_after_is_enough_and_needed(client: Client, rates, clock) -> None:
    rates(auth="3/minute")
    clock.now += 30
    for _ in range(3):
        assert post_auth(client).status_code == 200
    retry_after = assert_429(post_auth(client))
    clock.now += retry_after - 1
    assert_429(post_auth(client))
    clock.now += 1
    assert post_auth(client).status_code == 200


def test_refusals_are_not_counted(client: Client, rates, clock) -> None:
    rates(auth="2/minute")
    for _ in range(2):
        assert post_auth(client).status_code == 200
    for _ in range(20):
        assert_429(post_auth(client))
    # Half a minute into the next window, half of this one weighs: its 2 requests count as 1.
    # Counted, the 20 refusals would weigh 10 more, and refuse the next request too.
    clock.now += 90
    assert post_auth(client).status_code == 200
    assert_429(post_auth(client))


def test_the_window_slides(client: Client, rates, clock) -> None:
    # Requests at the very end of one minute still count at the start of the next: no burst
    # of twice the rate across the boundary just after it, as plain fixed windows would allow.
    rates(auth="4/minute")
    clock.now += 59
    for _ in range(4):
        assert post_auth(client).status_code == 200
    clock.now += 2
    assert_429(post_auth(client))
    # Half a minute on, half of the previous minute's count still weighs: 2 + 1 + 1 <= 4.
    clock.now += 29
    assert post_auth(client).status_code == 200
    assert post_auth(client).status_code == 200
    assert_429(post_auth(client))


def test_the_estimate_is_looser_at_a_windows_end(client: Client, rates, clock) -> None:
    """As docs/operating.md says: their weight has nearly gone by the end of the next window,
    so nearly twice the rate fits within one period across the edge; never more than the rate
    within one window of the clock."""
    rates(auth="4/minute")
    clock.now += 59.9
    for _ in range(4):
        assert post_auth(client).status_code == 200
    assert_429(post_auth(client))
    clock.now += 59.9  # 59.9 s later, at the next window's end: 4 weigh as 0.007
    for _ in range(3):
        assert post_auth(client).status_code == 200
    assert_429(post_auth(client))


class OneClient:
    """What the throttle reads of a token request: its method and the client address."""

    method = "POST"
    META = {"REMOTE_ADDR": "192.0.2.77"}


def take_tokens(location: str, attempts: int, results) -> None:
    """In a process of its own, as a gunicorn worker: ask the /auth throttle `attempts` times
    for one client, counting in the cache at `location`; put how many were let in."""
    cache = {"default": {"BACKEND": "api.cache.SharedDiskCache", "LOCATION": location}}
    with override_settings(CACHES=cache):
        throttle = AuthRateThrottle()
        results.put(sum(throttle.allow_request(OneClient(), None) for _ in range(attempts)))


def test_counts_are_exact_across_processes(settings: Any, tmp_path, rates) -> None:
    """Workers are processes: four of them counting one client at once let in exactly the
    limit, no more (a read-modify-write of the count would lose some of them)."""
    rates(auth="100/minute")
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    location = str(tmp_path / "shared-cache")
    processes = [
        context.Process(target=take_tokens, args=(location, 60, results)) for _ in range(4)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(60)
    assert sum(results.get(timeout=5) for _ in processes) == 100


def test_an_unreachable_cache_lets_requests_through_and_is_asked_again_later(
    client: Client, settings: Any, caplog, monkeypatch
) -> None:
    """Redis down: tokens are still issued, rather than every request failing; and the cache is
    left alone for a few seconds after it failed, so that a Redis that hangs costs each worker
    one timeout (its event loop's) per period, with one error line and one count."""
    use_unreachable_redis(settings)
    for _ in range(3):
        assert post_auth(client).status_code == 200
    failures = [r for r in caplog.records if r.getMessage().startswith("Rate limits not applied")]
    assert len(failures) == 1
    assert failures[0].levelname == "ERROR"
    assert "Traceback" not in caplog.text
    # Once the period is over, the cache is asked again.
    monkeypatch.setattr(SlidingWindowThrottle, "cache_unusable_until", time.monotonic() - 1)
    assert post_auth(client).status_code == 200
    failures = [r for r in caplog.records if r.getMessage().startswith("Rate limits not applied")]
    assert len(failures) == 2


def test_a_cache_that_fails_as_a_refusal_is_taken_back_lets_it_through(
    client: Client, rates
) -> None:
    """The count was made and the estimate says no, but taking the count back fails: served, as
    for any failure of the cache, never a 500."""
    rates(auth="1/minute")
    assert post_auth(client).status_code == 200
    with mock.patch.object(cache, "decr", side_effect=ConnectionError("Redis went away")):
        assert post_auth(client).status_code == 200


def test_retry_after_ignores_refusals_not_yet_taken_back(client: Client, rates, clock) -> None:
    """Concurrent refusals are each counted, then taken back: one refused between the two must
    still be told the wait for the limit's requests alone."""
    rates(auth="3/minute")
    clock.now += 30
    for _ in range(3):
        assert post_auth(client).status_code == 200
    with mock.patch.object(cache, "decr"):  # seven refusals of others, not yet taken back
        for _ in range(7):
            assert_429(post_auth(client))
    # In the next window the previous one's 3 must weigh under 2: 20 s into it, 50 s from now.
    assert assert_429(post_auth(client)) == 50
