"""Rate limits end to end: counts shared by every gunicorn worker of an instance (the embedded
default, no server to run), and by every instance that names one Redis server."""

from __future__ import annotations

import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
import requests

from tests.liveserver import LiveServer, free_port, stop_together
from tests.redisserver import RedisServer
from tests.utils import pids_that_answered, post_sum

CREDENTIALS = {"username": "alice", "password": "secret"}


def post_auth(server: LiveServer) -> requests.Response:
    return requests.post(server.url + "/auth", json=CREDENTIALS, timeout=10)


def assert_429(response: requests.Response, limit: int) -> None:
    assert response.status_code == 429
    assert response.headers["Content-Type"] == "application/json"
    assert response.json()["detail"].startswith("Request was throttled.")
    # At most a minute and 1/limit of one: the sliding window's estimate of the last minute
    # counts the previous minute's requests as spread evenly over it (docs: rate limits).
    assert 1 <= int(response.headers["Retry-After"]) <= 60 + 60 / limit


def test_the_61st_token_request_in_a_minute_is_429_on_every_worker() -> None:
    # The shipped default: 60 per minute per client address, counted by both workers together.
    with LiveServer(workers=2) as server, ThreadPoolExecutor(max_workers=4) as pool:
        statuses = [r.status_code for r in pool.map(lambda _: post_auth(server), range(60))]
        assert statuses == [200] * 60
        assert len(pids_that_answered(server, "/auth")) == 2
        refused = list(pool.map(lambda _: post_auth(server), range(4)))
    for response in refused:
        assert_429(response, 60)


def test_shared_folder_variables_set_to_nothing_still_share_the_counts() -> None:
    """`${SUMSERVICE_CACHE_DIR:-}` in a Compose file: set to nothing, which counts as unset, so
    the workers get the private shared folders rather than a cache each."""
    env = {
        "SUMSERVICE_CACHE_DIR": "",
        "PROMETHEUS_MULTIPROC_DIR": "",
        "SUMSERVICE_AUTH_RATE": "5/minute",
    }
    with LiveServer(workers=2, env=env) as server, ThreadPoolExecutor(max_workers=4) as pool:
        statuses = [r.status_code for r in pool.map(lambda _: post_auth(server), range(12))]
        assert sorted(statuses) == [200] * 5 + [429] * 7
        assert len(pids_that_answered(server, "/auth")) == 2
        assert requests.get(server.url + "/metrics", timeout=5).status_code == 200


@pytest.fixture(scope="module")
def redis_server():
    with RedisServer() as redis:
        yield redis


@pytest.fixture(scope="module")
def two_instances(redis_server: RedisServer):
    """Two gunicorn instances (as two replicas) sharing one Redis, with small limits."""
    env = {
        "SUMSERVICE_CACHE_URL": redis_server.url,
        "SUMSERVICE_AUTH_RATE": "5/minute",
        "SUMSERVICE_SUM_RATE": "4/minute",
        # One issuer, as replicas behind one address: each accepts the tokens of the other.
        "SUMSERVICE_ISSUER": "http://sum.test",
    }
    with LiveServer(env=env) as first, LiveServer(env=env, state_dir=first.state_dir) as second:
        yield first, second
        stop_together([first, second])


def test_instances_sharing_redis_share_one_budget(two_instances) -> None:
    first, second = two_instances
    statuses = [post_auth(server).status_code for server in (first, second, first, second, first)]
    assert statuses == [200] * 5
    assert_429(post_auth(second), 5)
    assert_429(post_auth(first), 5)


def test_sum_is_limited_per_subject_across_instances(two_instances) -> None:
    first, second = two_instances
    # Tokens for two subjects, from a client address the /auth budget has not spent.
    forwarded = {"X-Forwarded-For": "198.51.100.20"}
    tokens = {}
    for subject in ("carol", "dave"):
        response = requests.post(
            first.url + "/auth",
            json={"username": subject, "password": "x"},
            headers=forwarded,
            timeout=10,
        )
        tokens[subject] = response.json()["access_token"]
    answers = [post_sum(s, b"[1]", tokens["carol"]) for s in (first, second, first, second)]
    assert [a.status_code for a in answers] == [200] * 4
    assert_429(post_sum(second, b"[1]", tokens["carol"]), 4)
    assert post_sum(second, b"[1]", tokens["dave"]).status_code == 200


def test_a_worker_counts_over_the_connection_to_redis_it_keeps(redis_server) -> None:
    """A rate-limited request costs a round trip to Redis, not a new connection to it."""
    env = {"SUMSERVICE_CACHE_URL": redis_server.url, "SUMSERVICE_AUTH_RATE": "1000/minute"}
    stats = redis.Redis.from_url(redis_server.url)
    with LiveServer(workers=1, env=env) as server, requests.Session() as session:
        assert post_auth(server).status_code == 200  # the worker connects
        before = stats.info("stats")["total_connections_received"]
        statuses = [
            session.post(server.url + "/auth", json=CREDENTIALS, timeout=10).status_code
            for _ in range(20)
        ]
        after = stats.info("stats")["total_connections_received"]
    assert statuses == [200] * 20
    assert after == before


def test_a_redis_that_hangs_holds_up_no_worker_for_long() -> None:
    """A Redis that stops answering (SIGSTOP) costs each worker one short timeout, in which its
    event loop waits; then the limits are left off for a few seconds, so that the other
    requests on the same workers keep being answered, and the log has a line, not one per
    request."""
    with RedisServer() as redis:
        env = {"SUMSERVICE_CACHE_URL": redis.url}
        with LiveServer(workers=2, env=env) as server, ThreadPoolExecutor(8) as pool:
            assert post_auth(server).status_code == 200  # counted in Redis
            redis.process.send_signal(signal.SIGSTOP)
            try:
                tokens = [pool.submit(post_auth, server) for _ in range(40)]
                waits = []
                for _ in range(10):
                    started = time.monotonic()
                    assert requests.get(server.url + "/healthz", timeout=10).status_code == 200
                    waits.append(time.monotonic() - started)
                statuses = [future.result().status_code for future in tokens]
            finally:
                redis.process.send_signal(signal.SIGCONT)
            log = server.log()
    assert statuses == [200] * 40
    assert max(waits) < 1, waits
    assert 1 <= log.count("Rate limits not applied") <= 4
    assert "Traceback" not in log


@pytest.mark.parametrize(
    ("url", "refusal"),
    [
        ("redis://:not-this-one@127.0.0.1:{port}/0", "AuthenticationError"),
        ("redis://127.0.0.1:{port}/0", "AuthenticationError"),  # no password given
        ("redis://:the-one-it-takes@127.0.0.1:{port}/99", "DB index is out of range"),
    ],
    ids=["a-password-it-refuses", "no-password", "a-database-it-lacks"],
)
def test_a_redis_that_refuses_the_service_stops_the_start(url: str, refusal: str) -> None:
    """It answers, and would refuse every count: the limits would be off for good."""
    with RedisServer() as redis_server:
        redis.Redis.from_url(redis_server.url).config_set("requirepass", "the-one-it-takes")
        env = {"SUMSERVICE_CACHE_URL": url.format(port=redis_server.port)}
        message = LiveServer(env=env, workers=1).refused_start()
    assert "The rate limits' cache (SUMSERVICE_CACHE_URL) refuses the service" in message
    assert refusal in message and "not-this-one" not in message and "the-one" not in message


def test_a_cache_url_that_names_no_server_stops_the_start() -> None:
    url = "redis://:not-this-one@127.0.0.1:63x9/0"
    message = LiveServer(env={"SUMSERVICE_CACHE_URL": url}, workers=1).refused_start()
    assert "SUMSERVICE_CACHE_URL names no Redis server the service can reach: Port" in message
    assert "not-this-one" not in message


@pytest.mark.parametrize(
    ("keys", "served"),
    [
        (["sumservice:1:throttle_*"], True),
        (["sumservice:1:throttle_auth_*", "sumservice:1:throttle_sum_*"], True),
        (["elsewhere:*"], False),
        (["%R~sumservice:1:throttle_*"], False),  # may read them, not count in them
    ],
    ids=["the-throttles-keys", "each-scopes-keys", "other-keys", "read-only"],
)
def test_a_redis_user_is_allowed_the_rate_limits_keys_or_refused_at_start(
    keys: list[str], served: bool
) -> None:
    """A least-privilege Redis user, allowed the throttles' keys alone, serves; one that may
    not count in them would refuse every count."""
    with RedisServer() as redis_server:
        redis.Redis.from_url(redis_server.url).acl_setuser(
            "limits", enabled=True, passwords=["+its-secret"], keys=keys, commands=["+@all"]
        )
        env = {
            "SUMSERVICE_CACHE_URL": f"redis://limits:its-secret@127.0.0.1:{redis_server.port}/0",
            "SUMSERVICE_AUTH_RATE": "3/minute",
        }
        if not served:
            refused = LiveServer(env=env, workers=1).refused_start()
            assert "refuses the service: NoPermissionError" in refused
            return
        with LiveServer(env=env, workers=1) as server:
            statuses = [post_auth(server).status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]


def test_a_redis_that_does_not_answer_at_start_is_waited_for() -> None:
    """Not there yet at start (started after the service): a warning, and the limits apply
    once it answers."""
    port = free_port()
    env = {
        "SUMSERVICE_CACHE_URL": f"redis://127.0.0.1:{port}/0",
        "SUMSERVICE_AUTH_RATE": "3/minute",
    }
    with LiveServer(env=env, workers=1) as server:
        assert "The rate limits' cache (SUMSERVICE_CACHE_URL) cannot count yet" in server.log()
        with RedisServer(port=port):
            statuses = [post_auth(server).status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]


def test_a_bad_rate_stops_the_start_with_a_message() -> None:
    refused = LiveServer(env={"SUMSERVICE_AUTH_RATE": "lots"}).refused_start()
    assert "SUMSERVICE_AUTH_RATE must be N/period" in refused
