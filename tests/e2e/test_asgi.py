"""The bridge between gunicorn's asyncio worker and Django (sumservice/asgi.py), end to end:
request bodies, chunked or not, reach the service whole and within the size limit.

Cost: ~5 s (the over-limit bodies are ~11 MiB each)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import requests

from sumservice.asgi import BufferedWSGIApplication
from tests.e2e.clients import token
from tests.liveserver import LiveServer

MIB = 1024 * 1024
LIMIT = 10 * MIB
SUM_10 = "4a44dc15364204a80fe80e9039455cc1608281820fe2b24f1e5233ade6af1dd5"


def post_sum(server: LiveServer, data: bytes | Iterator[bytes]) -> requests.Response:
    return requests.post(
        server.url + "/sum",
        data=data,
        headers={"Authorization": f"Bearer {token(server)}", "Content-Type": "application/json"},
        timeout=60,
    )


def test_a_chunked_body_is_read_whole(server: LiveServer) -> None:
    answer = post_sum(server, iter([b"[1,", b"2,", b"3,4", b"]"]))  # requests sends it chunked
    assert answer.request.headers["Transfer-Encoding"] == "chunked"
    assert answer.status_code == 200
    assert answer.json() == {"sha256": SUM_10, "sum": "10"}


def test_a_chunked_body_of_exactly_the_limit_is_accepted(server: LiveServer) -> None:
    body = b"[" + b" " * (LIMIT - 3) + b"7]"
    answer = post_sum(server, (body[start : start + MIB] for start in range(0, LIMIT, MIB)))
    assert answer.status_code == 200, answer.text[:200]
    assert answer.json()["sum"] == "7"


def test_a_chunked_body_over_the_limit_is_413(server: LiveServer) -> None:
    body = b"[" + b" " * (LIMIT - 2) + b"7]"  # one byte over
    answer = post_sum(server, (body[start : start + MIB] for start in range(0, len(body), MIB)))
    assert answer.status_code == 413
    assert answer.headers["Content-Type"] == "application/json"
    assert "limit is 10485760 bytes" in answer.json()["detail"]
    assert requests.get(server.url + "/healthz", timeout=5).status_code == 200


def test_a_body_over_the_limit_is_413_with_content_length(server: LiveServer) -> None:
    answer = post_sum(server, b"[" + b" " * LIMIT + b"]")
    assert answer.status_code == 413
    assert "10485762 bytes" in answer.json()["detail"]


def test_a_large_body_is_answered_beside_small_ones(server: LiveServer) -> None:
    """Over the inline size a request runs in the worker's thread; its answer is the same."""
    numbers = b",".join(b"%d" % n for n in range(200_000))
    answer = post_sum(server, b"[" + numbers + b"]")
    assert answer.status_code == 200
    assert answer.json()["sum"] == str(sum(range(200_000)))


@pytest.mark.parametrize("size", [3, 64])  # answered inline, and in the worker's thread
def test_the_body_is_let_go_once_answered(size: int) -> None:
    """Django's and DRF's request objects outlive a request in reference cycles until the
    collector runs; the bridge closes the input it made, so they no longer hold the body."""
    seen: list[dict] = []

    def wsgi(environ: dict, start_response):
        seen.append(environ)
        body = environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b'{"length": %d}' % len(body)]

    app = BufferedWSGIApplication(wsgi, max_body_bytes=1024, inline_body_bytes=32, threads=1)
    body = b"[" + b"1" * (size - 2) + b"]"
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/sum",
        "raw_path": b"/sum",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"content-length", str(size).encode())],
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
    }
    asyncio.run(app(scope, receive, send))
    app.executor.shutdown()

    assert sent[-1]["body"] == b'{"length": %d}' % size
    assert seen[0]["wsgi.input"].closed
