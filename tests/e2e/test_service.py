"""End to end: a real gunicorn with two workers, spoken to over HTTP like a user would."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import requests

from api.error_views import HOST_NOT_SERVED
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
