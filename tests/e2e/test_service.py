"""End to end: a real gunicorn with two workers, spoken to over HTTP like a user would."""

from __future__ import annotations

import socket
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from api.error_views import HOST_NOT_SERVED
from api.keys import load_key_file
from tests.forge import Forger, unverified_part
from tests.liveserver import LiveServer
from tests.utils import get_token, post_sum, request_log, sha256

LIMIT = 10 * 1024 * 1024


def test_one_token_is_accepted_by_every_worker(server: LiveServer) -> None:
    token = get_token(server)
    # Requests that keep a worker busy for a while, sent four at a time: while one worker sums,
    # the other must take the next connection, so both verify the one token.
    depth = 300_000
    body = b"[" * depth + b"6, 4" + b"]" * depth
    with ThreadPoolExecutor(max_workers=4) as pool:
        responses = list(pool.map(lambda _: post_sum(server, body, token), range(12)))
    for response in responses:
        assert response.json() == {"sha256": sha256("10"), "sum": "10"}
    # These requests' own lines, by their ids: the server and its log serve other tests too.
    ids = {response.headers["X-Request-ID"] for response in responses}
    answered = {line["pid"] for line in request_log(server) if line["request_id"] in ids}
    assert answered == server.worker_pids()


def test_a_token_survives_a_restart() -> None:
    with LiveServer() as restarted:
        token = get_token(restarted)
        restarted.restart()
        response = post_sum(restarted, b"[1,2,3,4]", token)
        assert response.status_code == 200
        assert response.json()["sha256"] == sha256("10")


def test_a_token_from_another_key_is_refused(server: LiveServer) -> None:
    with LiveServer() as other:  # its own state folder, so its own key
        foreign = get_token(other)
    response = post_sum(server, b"[1]", foreign)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_nasty_inputs_get_their_answer_and_every_worker_survives(
    server: LiveServer,
) -> None:
    assert "Summing with the compiled kernel" in server.log()
    nasty_inputs_get_their_answer_and_every_worker_survives(server)


def test_nasty_inputs_on_the_pure_python_path() -> None:
    with LiveServer(env={"SUMSERVICE_SUM_KERNEL": "off"}) as server:
        assert "Summing with the pure-Python path" in server.log()
        nasty_inputs_get_their_answer_and_every_worker_survives(server)


def nasty_inputs_get_their_answer_and_every_worker_survives(server: LiveServer) -> None:
    token = get_token(server)
    workers = server.worker_pids()
    depth = 1_000_000
    cases = [
        (b"[" * depth + b"1" + b"]" * depth, 200, "1"),
        (b"[7]" + b" " * (LIMIT - 3), 200, "7"),  # exactly the limit
        # The 413's and 422's messages are tested where they are made (api/tests/test_middleware.py,
        # api/tests/test_summing.py).
        (b"[7]" + b" " * (LIMIT - 2), 413, None),
        (b"[" + b"9" * 10_001 + b"]", 422, None),
        (b"[1e10001]", 422, None),
        (b'["\xff\xfe"]', 400, "not UTF-8"),
        (b"[1, 2", 400, "Invalid JSON"),
        (b"[NaN]", 400, "NaN is not a JSON number"),
        (b"{" * depth, 400, "Invalid JSON"),
    ]
    for body, status, expected in cases:
        response = post_sum(server, body, token)
        assert response.status_code == status, (body[:20], response.text[:200])
        if status == 200:
            assert response.json() == {"sha256": sha256(expected), "sum": expected}
        else:
            detail = response.json()["detail"]
            assert detail and (expected is None or expected in detail), detail
    # No worker died or was replaced, and all of them still answer.
    assert server.worker_pids() == workers
    for _ in range(10):
        assert post_sum(server, b"[1,2,3,4]", token).json()["sha256"] == sha256("10")
    assert "Traceback" not in server.log()


def test_nasty_token_requests_are_400(server: LiveServer) -> None:
    # Nested far past the parser's recursion limit, within /auth's 64 KiB; and invalid UTF-8.
    for body in [b"[" * 60_000, b'{"username": "' + b"\xff" * 10 + b'", "password": "x"}']:
        response = requests.post(
            server.url + "/auth",
            data=body,
            headers={"Content-Type": "application/json"},
            timeout=30,
        )
        assert response.status_code == 400, response.text[:200]
        assert response.json()["detail"].startswith("JSON parse error")
    big = requests.post(server.url + "/auth", data=b"[" * 1_000_000, timeout=30)
    assert big.status_code == 413
    assert big.json()["detail"]
    assert "Traceback" not in server.log()


def test_a_host_not_served_is_a_json_400_and_one_log_line(server: LiveServer) -> None:
    """Any client can send any Host: each is a client's error in the request log, not a
    traceback in the server's log."""
    for _ in range(3):
        response = requests.get(
            server.url + "/healthz", headers={"Host": "evil.example"}, timeout=10
        )
        assert response.status_code == 400
        assert response.json() == {"detail": HOST_NOT_SERVED}
        assert response.headers["Content-Length"] == str(len(response.content))
    assert "Traceback" not in server.log()
    assert "evil.example" not in server.log()


def test_every_error_is_json(server: LiveServer) -> None:
    for method, path in [("GET", "/sum"), ("GET", "/nowhere"), ("PUT", "/auth")]:
        response = requests.request(method, server.url + path, timeout=10)
        assert response.headers["Content-Type"] == "application/json", (method, path)
        assert response.json()["detail"]


def test_each_setting_changes_what_clients_see(tmp_path) -> None:
    """The documented knobs, each set to other than its default, as a client meets them."""
    env = {
        "SUMSERVICE_ACCESS_TOKEN_LIFETIME": "600",
        "SUMSERVICE_AUDIENCE": "other-api",
        "SUMSERVICE_JWT_ALGORITHM": "RS256",
        "SUMSERVICE_JWT_LEEWAY": "30",
        "SUMSERVICE_MAX_BODY_BYTES": "1000",
        "SUMSERVICE_AUTH_MAX_BODY_BYTES": "500",
        "SUMSERVICE_MAX_NUMBER_LENGTH": "50",
        "SUMSERVICE_MAX_EXPONENT": "50",
        # Not loopback: a client's X-Forwarded-For is not believed from 127.0.0.1.
        "SUMSERVICE_TRUSTED_PROXIES": "10.0.0.0/8",
        "GUNICORN_KEEPALIVE": "1",
    }
    with LiveServer(env=env, workers=1) as server:
        answer = requests.post(
            server.url + "/auth",
            json={"username": "alice", "password": "secret"},
            headers={"X-Forwarded-For": "203.0.113.7"},
            timeout=10,
        )
        assert answer.status_code == 200
        assert answer.json()["expires_in"] == 600
        token = answer.json()["access_token"]
        claims = unverified_part(token, 1)
        assert (claims["aud"], claims["exp"] - claims["iat"]) == ("other-api", 600)
        assert unverified_part(token, 0)["alg"] == "RS256"
        assert request_log(server)[-1]["client"] == "127.0.0.1"

        # A token 10 s past its expiry is within the 30 s leeway; 60 s past it is not.
        key = load_key_file(server.state_dir / "keys" / "signing-key.pem", "RS256")
        forger = Forger(key, server.url, "other-api")
        now = int(time.time())
        late = forger.token(iat=now - 610, exp=now - 10)
        assert post_sum(server, b"[1]", late).status_code == 200
        expired = forger.token(iat=now - 660, exp=now - 60)
        assert post_sum(server, b"[1]", expired).status_code == 401

        # The number limits, through /sum.
        assert post_sum(server, b"[1e50]", token).status_code == 200
        assert post_sum(server, b"[1e51]", token).status_code == 422
        assert post_sum(server, b"[" + b"1" * 50 + b"]", token).status_code == 200
        too_long = post_sum(server, b"[" + b"1" * 51 + b"]", token)
        assert too_long.status_code == 422 and "50" in too_long.json()["detail"]

        # The body limits.
        assert post_sum(server, b"[1]" + b" " * 997, token).status_code == 200
        over = post_sum(server, b"[1]" + b" " * 998, token)
        assert over.status_code == 413 and "1000 bytes" in over.json()["detail"]
        credentials = b'{"username": "alice", "password": "secret"}'
        auth_over = requests.post(
            server.url + "/auth",
            data=credentials + b" " * (501 - len(credentials)),
            headers={"Content-Type": "application/json"},
            timeout=10,
        )
        assert auth_over.status_code == 413 and "500 bytes" in auth_over.json()["detail"]

        # An idle kept-alive connection is closed after 1 s.
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
            answered = time.monotonic()
            assert sock.recv(1) == b""
            assert 0.5 < time.monotonic() - answered < 3  # the default would be 5 s
