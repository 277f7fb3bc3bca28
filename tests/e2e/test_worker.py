"""The serving worker (sumservice/worker.py, gunicorn.conf.py) against real clients on loopback:
keep-alive, slow and idle clients, gunicorn's own refusals, limits, timeouts and a graceful stop.

Cost: ~36 s in all, most of it the slow-client test (~12 s: 256 connections trickling for 8 s
while a probe times its requests) and the graceful stop (~5 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import http.client
import itertools
import json
import logging
import os
import re
import signal
import socket
import ssl
import sys
import threading
import time
import types
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from gunicorn.config import Config

from api.summing import canonical_sum
from bench.documents import document
from bench.run import cpu_seconds
from bench.serving import established_by_worker, wrk
from sumservice.worker import (
    COUNTS,
    MOVE_INTERVAL_SECONDS,
    OTHER_OPEN_FILES,
    STOP_KEEPALIVE_LINGER,
    TLS_SHUTDOWN_SECONDS,
    ConnectionCounts,
    PatientBodyReceiver,
    SumProtocol,
    SumWorker,
    tune_malloc,
)
from tests.deploy.deployfiles import make_tls_files
from tests.e2e.clients import Probe, Tricklers, connect, exchange, read_response, sum_request, token
from tests.liveserver import ROOT, LiveServer
from tests.utils import get_token, post_sum, request_log

MIB = 1024 * 1024


def test_a_client_reuses_its_connection_for_many_requests(server: LiveServer) -> None:
    access_token = token(server)
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.connect()
    local_address = connection.sock.getsockname()
    headers = {"Authorization": f"Bearer {access_token}", "Content-Type": "application/json"}
    for number in range(150):
        connection.request("POST", "/sum", body=f"[{number}, 1]", headers=headers)
        response = connection.getresponse()
        assert response.status == 200
        assert json.loads(response.read())["sum"] == str(number + 1)
        assert response.getheader("Connection") != "close"
        # Still the same TCP connection: http.client would silently open another one.
        assert connection.sock is not None and connection.sock.getsockname() == local_address
    connection.close()


def test_a_recycled_worker_resets_no_kept_alive_connection() -> None:
    """gunicorn recycles a worker after GUNICORN_MAX_REQUESTS: its kept-alive connections are
    told "Connection: close" on their last answer, never cut after announcing keep-alive."""
    with LiveServer(workers=1, env={"GUNICORN_MAX_REQUESTS": "40"}) as server:
        access_token = token(server)
        first_worker = server.worker_pids()
        headers = {"Authorization": f"Bearer {access_token}", "Content-Type": "application/json"}

        def client(number: int) -> list[int]:
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            statuses = []
            for _ in range(10):
                connection.request("POST", "/sum", body=f"[{number}]", headers=headers)
                response = connection.getresponse()
                response.read()
                statuses.append(response.status)
                if response.getheader("Connection") == "close":
                    connection.close()  # http.client opens a new one for the next request
            connection.close()
            return statuses

        with ThreadPoolExecutor(max_workers=16) as pool:
            statuses = [status for result in pool.map(client, range(16)) for status in result]
        assert statuses == [200] * 160
        assert "Autorestarting worker" in server.log()
        server.wait_for_workers(1, replacing=first_worker)  # and a new one took over


@pytest.mark.parametrize("close", [False, True], ids=["keep-alive", "connection-close"])
def test_no_request_fails_while_workers_recycle(close: bool, tmp_path) -> None:
    """Under load (wrk, 16 connections), workers recycling every 100 to 110 requests answer
    every request: what waits in a stopping worker's listen queue, and connections it has
    accepted but not yet set up, are served before it exits."""
    with LiveServer(workers=2, env={"GUNICORN_MAX_REQUESTS": "100"}) as server:
        body = tmp_path / "body.json"
        body.write_bytes(b"[1, 2, 3]")
        answered, deadline = 0, time.monotonic() + 60
        # Rounds of 2 s until over 600 requests, enough for at least 4 recycles however they
        # fell on the two workers: a busy machine's round may answer fewer.
        while answered <= 600:
            assert time.monotonic() < deadline, f"{answered} requests in 60 s"
            result = wrk(server.url + "/sum", body, token(server), 2, 16, close)
            errors = {"connect": 0, "read": 0, "write": 0, "status": 0, "timeout": 0}
            assert result["errors"] == errors
            answered += result["requests"]
        assert server.log().count("Autorestarting worker") >= 2


@pytest.fixture(scope="module")
def python_parser_server() -> Iterator[LiveServer]:
    """The service parsing HTTP with gunicorn's Python parser, as where gunicorn_h1c is not
    installed (no C compiler)."""
    with LiveServer(env={"GUNICORN_HTTP_PARSER": "python"}) as live:
        yield live


# The HTTP tests below run against both parsers: the default, gunicorn_h1c (./test.sh installs
# requirements-compiled.txt), and gunicorn's own.
BOTH_PARSERS = pytest.mark.parametrize(
    "served", ["server", "python_parser_server"], ids=["c-parser", "python-parser"]
)


def test_the_c_http_parser_serves_where_it_is_installed(
    server: LiveServer, python_parser_server: LiveServer
) -> None:
    assert "Parsing HTTP with gunicorn_h1c, gunicorn's C HTTP parser" in server.log()
    assert "Parsing HTTP with gunicorn's Python HTTP parser" in python_parser_server.log()
    # Which parser answers, told apart by a request line with two spaces after the target,
    # which gunicorn_h1c takes and gunicorn's Python parser refuses.
    two_spaces = b"GET /healthz  HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    assert exchange(server, two_spaces)[0] == 200
    assert exchange(python_parser_server, two_spaces)[0] == 400


def test_a_field_a_trailer_may_not_hold_is_refused_in_a_sentence(server: LiveServer) -> None:
    chunked = (
        b"POST /sum HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n3\r\n[1]\r\n0\r\nContent-Length: 3\r\n\r\n"
    )
    status, _, body = exchange(server, chunked)
    assert (status, body) == (400, {"detail": "Header field not allowed in trailer."})


@BOTH_PARSERS
def test_a_request_line_over_the_limit_is_414_in_a_sentence(served: str, request) -> None:
    raw = b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    status, _, body = exchange(request.getfixturevalue(served), raw)
    assert (status, body) == (
        414,
        {"detail": "The request line is too long: send a shorter target."},
    )


@BOTH_PARSERS
@pytest.mark.parametrize("codings", [b"gzip, chunked", b"deflate , Chunked"])
def test_a_transfer_coding_before_chunked_is_501(served: str, request, codings: bytes) -> None:
    """Not a body summed still compressed: the parsers frame it by chunked and ignore the rest.
    (A last coding other than chunked, or chunked twice, is their own 400.)"""
    server = request.getfixturevalue(served)
    raw = (
        b"POST /sum HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer " + token(server).encode() + b"\r\n"
        b"Transfer-Encoding: " + codings + b"\r\n\r\n3\r\n[1]\r\n0\r\n\r\n"
    )
    status, headers, body = exchange(server, raw)
    assert (status, headers["content-type"]) == (501, "application/json")
    assert body == {
        "detail": "A Transfer-Encoding other than chunked alone is not supported: send the body"
        " chunked, or with a Content-Length."
    }


@BOTH_PARSERS
@pytest.mark.parametrize(
    ("length", "expect"),
    [(10 * MIB + 1, True), (11_000_000, True), (50_000_000, False), (50_000_000, True)],
    ids=["just-over-expecting-100", "over-expecting-100", "far-over", "far-over-expecting-100"],
)
def test_a_body_too_large_to_read_is_refused_before_it_is_sent_and_the_close_said(
    served: str, request, length: int, expect: bool
) -> None:
    """RFC 9110 section 10.1.1: a client waiting for a 100 (Continue) before it sends a body
    that is sure to be refused gets the 413 instead, not a 100 inviting the whole upload. A
    413 answered without reading the body says the connection closes, as it does."""
    server = request.getfixturevalue(served)
    head = (
        b"POST /sum HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + f"Authorization: Bearer {token(server)}\r\nContent-Length: {length}\r\n".encode()
        + (b"Expect: 100-continue\r\n" if expect else b"")
        + b"\r\n"
    )
    with connect(server) as sock:
        sock.sendall(head)  # and no byte of the body
        stream = sock.makefile("rb")
        status, headers, body = read_response(stream)
        assert stream.read() == b""  # closed by the server
    assert (status, headers["connection"]) == (413, "close")
    assert (
        json.loads(body)["detail"]
        == f"The request body is {length} bytes; the limit is {10 * MIB} bytes."
    )


@BOTH_PARSERS
def test_a_client_that_sends_its_body_without_waiting_for_100_gets_the_413(
    served: str, request
) -> None:
    """Expect: 100-continue, and the body sent at once anyway (as http.client and requests do):
    the body is read and dropped, and the client, which reads only once it has sent it all,
    gets the 413 rather than a reset."""
    server = request.getfixturevalue(served)
    body = b" " * (10 * MIB + 1)
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    headers = {
        "Authorization": f"Bearer {token(server)}",
        "Content-Type": "application/json",
        "Expect": "100-continue",
    }
    connection.request("POST", "/sum", body=body, headers=headers)
    response = connection.getresponse()
    assert response.status == 413
    assert json.loads(response.read())["detail"].startswith("The request body is 10485761 bytes")
    connection.close()


@BOTH_PARSERS
def test_an_http_1_0_client_asking_to_keep_its_connection_is_told_it_stays_open(
    served: str, request
) -> None:
    server = request.getfixturevalue(served)
    ask = b"GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n"
    with connect(server) as sock:
        stream = sock.makefile("rb")
        for _ in range(2):  # and it does
            sock.sendall(ask)
            status, headers, _ = read_response(stream)
            assert (status, headers["connection"]) == (200, "keep-alive")
        sock.sendall(b"GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        status, headers, _ = read_response(stream)
        assert (status, headers["connection"]) == (200, "close")


@BOTH_PARSERS
def test_an_http_1_1_request_without_a_host_is_400(served: str, request) -> None:
    server = request.getfixturevalue(served)
    status, _, body = exchange(server, b"GET /healthz HTTP/1.1\r\n\r\n")
    assert (status, body) == (
        400,
        {"detail": "A Host header is required in HTTP/1.1 (RFC 9112 section 3.2)."},
    )
    status, _, body = exchange(server, b"GET /healthz HTTP/1.0\r\n\r\n")
    assert (status, body) == (200, {"status": "ok"})  # HTTP/1.0 has no Host to require


CLIENT_HEADERS = b"X-Forwarded-For: 203.0.113.9\r\nX-Request-ID: {id}\r\n"


@BOTH_PARSERS
@pytest.mark.parametrize(
    ("raw", "status", "head_read"),
    [
        (b"GET /healthz HTTP/1.1\r\n" + CLIENT_HEADERS + b"\r\n", 400, True),
        (
            b"POST /sum HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n"
            + CLIENT_HEADERS
            + b"\r\n",
            501,
            True,
        ),
        (
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + CLIENT_HEADERS + b"No colon\r\n\r\n",
            400,
            False,
        ),
    ],
    ids=["no-host", "gzip-chunked", "malformed-head"],
)
def test_the_servers_own_refusals_carry_a_request_id_and_a_date(
    served: str, request, raw: bytes, status: int, head_read: bool
) -> None:
    """As Django's answers do: the client's X-Request-ID and its address through trusted proxies
    (loopback's, by default) where its head was read, the same id in the refusal's log line,
    and the Date every origin server sends."""
    server = request.getfixturevalue(served)
    sent = f"refusal-{request.node.callspec.id}"
    answered, headers, _ = exchange(server, raw.replace(b"{id}", sent.encode()))
    assert answered == status
    assert email.utils.parsedate_to_datetime(headers["date"]).tzinfo is not None
    request_id = headers["x-request-id"]
    assert request_id == sent if head_read else re.fullmatch("[0-9a-f]{32}", request_id)
    time.sleep(0.1)
    (line,) = [line for line in request_log(server) if line["request_id"] == request_id]
    assert (line["status"], line["method"]) == (status, None)
    assert line["client"] == ("203.0.113.9" if head_read else "127.0.0.1")


@BOTH_PARSERS
def test_a_target_in_absolute_form_is_its_path_at_its_host(served: str, request) -> None:
    """As a client talking to a proxy sends it (RFC 9112 section 3.2.2): the target's authority
    is the host, whatever the Host header says, and it must be one the service answers for."""
    server = request.getfixturevalue(served)
    access_token = token(server).encode()
    absolute = (
        b"POST http://127.0.0.1/sum?x=1 HTTP/1.1\r\nHost: elsewhere.example\r\n"
        b"Content-Type: application/json\r\nAuthorization: Bearer " + access_token + b"\r\n"
        b"Content-Length: 5\r\n\r\n[1,2]"
    )
    status, _, body = exchange(server, absolute)
    assert (status, body["sum"]) == (200, "3")
    foreign = absolute.replace(b"http://127.0.0.1/sum", b"http://evil.example/sum")
    foreign = foreign.replace(b"Host: elsewhere.example", b"Host: 127.0.0.1")
    status, headers, body = exchange(server, foreign)
    assert (status, headers["content-type"]) == (400, "application/json")


def test_the_unread_extension_says_a_client_that_sent_its_whole_body_is_held_up() -> None:
    """What sumservice.asgi judges a body waiting for memory by: its client cannot send more
    once it has sent it all, however little waits unread (it is not slow, only waiting)."""
    protocol = SumProtocol.__new__(SumProtocol)
    protocol._reading_paused = False
    protocol._body_receiver = PatientBodyReceiver(types.SimpleNamespace(), protocol)
    protocol._body_receiver.feed(b"x" * 40_000)
    assert protocol._unread() == (40_000, False)  # more may come: its rate counts
    protocol._body_receiver.set_complete()
    assert protocol._unread() == (40_000, True)
    protocol._body_receiver = None
    assert protocol._unread() == (0, True)


def test_an_absolute_form_target_that_cannot_be_read_is_400(server: LiveServer) -> None:
    """Not a connection dropped with a traceback in the log."""
    for target in (b"http://[::1/sum", b"HTTP://[zz]/healthz"):
        status, headers, body = exchange(
            server, b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        )
        assert (status, body) == (400, {"detail": "Invalid request target."})
    assert "Error handling connection" not in server.log()


def test_every_status_line_has_its_reason_phrase(server: LiveServer) -> None:
    """gunicorn's table lacked some the application answers: its 406 went out as "Unknown"."""
    with connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/xml\r\n\r\n")
        status_line = sock.makefile("rb").readline()
    assert status_line == b"HTTP/1.1 406 Not Acceptable\r\n"


def test_fast_parser_setting_without_gunicorn_h1c_stops_the_start(tmp_path) -> None:
    """gunicorn itself would start, then drop every connection."""
    blocker = tmp_path / "gunicorn_h1c.py"
    blocker.write_text("raise ImportError('gunicorn_h1c is not installed here')\n")
    env = {"GUNICORN_HTTP_PARSER": "fast", "PYTHONPATH": str(tmp_path)}
    refused = LiveServer(env=env, workers=1).refused_start(timeout=20)
    assert "gunicorn exited" in refused
    assert "GUNICORN_HTTP_PARSER=fast, but gunicorn_h1c is not installed" in refused


@BOTH_PARSERS
def test_pipelined_requests_are_answered_in_order(served: str, request) -> None:
    server = request.getfixturevalue(served)
    access_token = token(server)
    with connect(server) as sock:
        sock.sendall(b"".join(sum_request(access_token, f"[{n}]".encode()) for n in range(5)))
        stream = sock.makefile("rb")
        sums = [json.loads(read_response(stream)[2])["sum"] for _ in range(5)]
    assert sums == ["0", "1", "2", "3", "4"]


@BOTH_PARSERS
def test_large_bodies_back_to_back_are_served_on_one_connection(served: str, request) -> None:
    """gunicorn_h1c keeps only 64 KiB of what follows a finished request by default, and
    gunicorn closes the connection when more came: a next request pipelined behind, or sent as
    soon as its client had the answer, while the worker had not yet taken it."""
    server = request.getfixturevalue(served)
    access_token = token(server)
    ones = b"[" + b",".join([b"1"] * 100_000) + b"]"  # 200 KB
    with connect(server) as sock:
        stream = sock.makefile("rb")
        # Three small requests and a large one, pipelined: the tail left after each small one
        # holds the next whole request.
        small = b"".join(sum_request(access_token, b"[1,2]") for _ in range(3))
        sock.sendall(small + sum_request(access_token, ones + b" " * 200_000))
        answers = [read_response(stream) for _ in range(4)]
        assert [(status, json.loads(body)["sum"]) for status, _, body in answers] == [
            (200, "3"),
            (200, "3"),
            (200, "3"),
            (200, "100000"),
        ]
        for _ in range(30):
            sock.sendall(sum_request(access_token, ones + b" " * 100_000))  # 300 KB
            status, headers, body = read_response(stream)
            assert (status, json.loads(body)["sum"]) == (200, "100000")
            assert headers.get("connection") != "close"


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n", 400),
        (b"BROKEN\r\n\r\n", 400),
        (b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n", 400),
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", 431),
        (
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
            + b"".join(b"X-%d: 1\r\n" % n for n in range(200))
            + b"\r\n",
            431,
        ),
        (b"POST /sum HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
        (b"POST /sum HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
        (b"POST /sum HTTP/1.1\r\nHost: x\r\nContent-Length: " + b"9" * 5000 + b"\r\n\r\n", 400),
    ],
    ids=[
        "header-without-colon",
        "request-line",
        "http-version",
        "uri-too-long",
        "header-too-large",
        "too-many-headers",
        "transfer-coding-not-chunked",
        "bad-chunk-size",
        "content-length-of-5000-digits",
    ],
)
@BOTH_PARSERS
def test_gunicorns_own_refusals_are_json(served: str, raw: bytes, status: int, request) -> None:
    answered, headers, body = exchange(request.getfixturevalue(served), raw)
    assert answered == status
    assert headers["content-type"] == "application/json"
    assert isinstance(body["detail"], str) and body["detail"]


@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        (b"get /healthz HTTP/1.1\r\n", 'Invalid HTTP method: "get".'),
        (b"G@T /healthz HTTP/1.1\r\n", 'Invalid HTTP method: "G@T".'),
        (b"GET /healthz HTTP/1.1\r\nX : y\r\n", 'Invalid header name: "X ".'),
        # Not echoed: a version that runs into the next header over a bare CR, with the
        # credentials it carries.
        (b"GET /healthz HTTP/1.1\rAuthorization: Bearer secret\r\n", "Invalid HTTP version."),
        (b"GET /healthz HTTP/1.1 \r\n", 'Invalid HTTP version: "HTTP/1.1 ".'),
        (b"GET /healthz HTTP/1.1\r\nNo colon\r\n", "Missing colon in header"),  # a sentence
    ],
    ids=[
        "lower-case-method",
        "method-with-at",
        "space-before-colon",
        "bare-cr",
        "trailing-space",
        "no-colon",
    ],
)
def test_the_python_parsers_refusals_say_what_they_refuse(
    python_parser_server: LiveServer, raw: bytes, detail: str
) -> None:
    answered, _, body = exchange(python_parser_server, raw + b"Host: 127.0.0.1\r\n\r\n")
    assert (answered, body) == (400, {"detail": detail})


@pytest.mark.parametrize(("served", "status"), [("server", 400), ("python_parser_server", 501)])
def test_a_transfer_coding_the_parser_does_not_know_is_refused_naming_it(
    served: str, status: int, request
) -> None:
    # gunicorn_h1c refuses it as a malformed request; gunicorn's Python parser as one it does
    # not implement (RFC 9112 section 6.1).
    raw = b"POST /sum HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: br\r\n\r\n"
    answered, headers, body = exchange(request.getfixturevalue(served), raw)
    assert answered == status
    assert headers["content-type"] == "application/json"
    assert body["detail"].startswith("Unsupported Transfer-Encoding")


WEBSOCKET_UPGRADE = (
    "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
)


@pytest.mark.parametrize(
    ("path", "status", "answer_starts"),
    [
        ("/healthz", 200, '{"status":"ok"}'),
        ("/sum", 405, '{"detail":"Method \\"GET\\" not allowed."}'),
        ("/ws", 404, '{"detail":"Not found: /ws.'),
    ],
)
@BOTH_PARSERS
def test_a_websocket_upgrade_is_answered_as_plain_http(
    served: str, path: str, status: int, answer_starts: str, request
) -> None:
    raw = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{WEBSOCKET_UPGRADE}\r\n".encode()
    answered, headers, answer = exchange(request.getfixturevalue(served), raw)
    assert answered == status
    assert json.dumps(answer, separators=(",", ":")).startswith(answer_starts)
    assert headers["content-type"] == "application/json"
    assert "upgrade" not in headers


def test_a_head_that_takes_too_long_gets_408_and_the_connection_closes() -> None:
    with LiveServer(env={"GUNICORN_HEADER_TIMEOUT": "1"}) as server, connect(server) as sock:
        sock.sendall(b"POST /sum HTTP/1.1\r\nHost: x\r\n")  # and no more
        started = time.monotonic()
        status, headers, body = read_response(sock)
        assert status == 408 and headers["content-type"] == "application/json"
        assert "within 1 s" in json.loads(body)["detail"]
        assert 0.5 < time.monotonic() - started < 5
        assert sock.recv(1) == b""  # closed


@pytest.mark.parametrize("pipelined", [False, True], ids=["after-the-answer", "with-the-request"])
def test_a_head_begun_on_a_kept_alive_connection_gets_the_header_timeout_and_its_408(
    pipelined: bool,
) -> None:
    """Its first bytes end the connection's idleness: the keep-alive timeout no longer closes
    it without a word; the header timeout answers it as on a new connection."""
    env = {"GUNICORN_KEEPALIVE": "1", "GUNICORN_HEADER_TIMEOUT": "3"}
    first, begun = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", b"GET /healthz HTTP/1.1\r\n"
    with LiveServer(env=env, workers=1) as server, connect(server) as sock:
        stream = sock.makefile("rb")
        started = time.monotonic()
        sock.sendall(first + begun if pipelined else first)
        assert read_response(stream)[0] == 200
        if not pipelined:
            started = time.monotonic()
            sock.sendall(begun)  # and no more
        status, headers, body = read_response(stream)
        assert (status, headers["content-type"]) == (408, "application/json")
        assert json.loads(body)["detail"] == "The request's headers did not arrive within 3 s."
        assert 2.5 < time.monotonic() - started < 6


def test_an_empty_line_on_a_kept_alive_connection_begins_no_request() -> None:
    """RFC 9112 section 2.2: empty lines before a request line are ignored; the connection is
    still idle, and closes at the keep-alive timeout without an answer."""
    env = {"GUNICORN_KEEPALIVE": "1", "GUNICORN_HEADER_TIMEOUT": "5"}
    with LiveServer(env=env, workers=1) as server, connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n\r\n")
        stream = sock.makefile("rb")
        assert read_response(stream)[0] == 200
        started = time.monotonic()
        assert stream.read() == b""  # closed, nothing more said
        assert time.monotonic() - started < 3


def test_a_body_that_pauses_longer_than_the_worker_timeout_is_still_awaited() -> None:
    # GUNICORN_TIMEOUT is the worker's heartbeat, not a limit on a pause within a body.
    env = {"GUNICORN_TIMEOUT": "2", "GUNICORN_BODY_TIMEOUT": "10"}
    with LiveServer(env=env) as server, connect(server) as sock:
        request = sum_request(token(server), b"[1, 2]")
        sock.sendall(request[:-3])
        time.sleep(3)
        sock.sendall(request[-3:])
        status, _, body = read_response(sock)
        assert status == 200
        assert json.loads(body)["sum"] == "3"


def test_a_body_that_stops_arriving_gets_408_at_the_body_timeout() -> None:
    env = {"GUNICORN_TIMEOUT": "2", "GUNICORN_BODY_TIMEOUT": "4"}
    with LiveServer(env=env) as server, connect(server) as sock:
        sock.sendall(sum_request("x", b"[1, 2]")[:-3])  # the last bytes never come
        started = time.monotonic()
        status, headers, body = read_response(sock)
        assert status == 408 and headers["content-type"] == "application/json"
        assert json.loads(body)["detail"] == "The request's body did not arrive within 4 s."
        assert 3.5 < time.monotonic() - started < 7
        assert sock.recv(1) == b""  # closed


def test_an_answer_says_close_when_more_came_behind_it_than_is_kept(tmp_path, monkeypatch) -> None:
    """Over TLS a read can hold more than the parser keeps behind a finished request
    (PIPELINED_BYTES): what it dropped is lost, so the answer before it announces the close,
    rather than keep-alive followed by a closed connection."""
    certificate, key = make_tls_files(tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificate))
    context = ssl.create_default_context(cafile=str(certificate))
    context.check_hostname = False
    small, large = b"[" + b"1," * 30_000 + b"1]", b"[" + b"1," * 150_000 + b"1]"
    with LiveServer(workers=1, tls=(certificate, key)) as server:
        access_token = token(server)
        pipelined = b"".join(sum_request(access_token, body) for body in (small, small, large))
        pipelined += b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        answered: list[int] = []
        # Until a read holds more than is kept (the case this is about): how much one read
        # takes depends on the machine's timing.
        while len(answered) < 10 and (not answered or min(answered) == 4):
            with context.wrap_socket(connect(server), server_hostname="127.0.0.1") as sock:
                sock.sendall(pipelined)
                stream = sock.makefile("rb")
                answers = []
                with contextlib.suppress(OSError):  # the connection's end (EOF, or TLS's)
                    while True:
                        answers.append(read_response(stream))
                assert answers and all(status == 200 for status, _, _ in answers)
                # Only the last answer before the connection ends may be, and is, the last.
                closing = [headers.get("connection") == "close" for _, headers, _ in answers]
                assert closing == [False] * (len(answers) - 1) + [True]
                answered.append(len(answers))
        assert min(answered) < 4  # a read held more than is kept: the case this is about


def test_gunicorns_tls_settings_serve_https(tmp_path, monkeypatch) -> None:
    certificate, key = make_tls_files(tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificate))
    with LiveServer(workers=1, tls=(certificate, key)) as server:
        answer = post_sum(server, b"[1, 2, 3, 4]", get_token(server))
        assert answer.status_code == 200 and answer.json()["sum"] == "10"
        with connect(server) as sock:  # plain HTTP to the TLS port: no answer, and no harm
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert sock.recv(1024) == b""
        assert requests.get(server.url + "/healthz", timeout=10).status_code == 200
        assert "Task exception was never retrieved" not in server.log()
        # Its clients gone, the stop waits for no TLS goodbye (asyncio's: 30 s).
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < STOP_KEEPALIVE_LINGER + TLS_SHUTDOWN_SECONDS + 1


def test_tls_handshakes_count_against_the_workers_connection_limit(tmp_path, monkeypatch) -> None:
    """Clients that connect and never start their handshake hold one socket each past the
    limit at most; the rest wait in the listen queue, and are taken once those go."""
    certificate, key = make_tls_files(tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificate))
    env = {"GUNICORN_WORKER_CONNECTIONS": "3"}
    with LiveServer(workers=1, tls=(certificate, key), env=env) as server:
        silent = [connect(server) for _ in range(12)]
        with ThreadPoolExecutor(1) as pool:
            answer = pool.submit(requests.get, server.url + "/healthz", timeout=30)
            time.sleep(1)
            assert list(established_by_worker(server).values()) == [4]
            assert not answer.done()  # queued behind the silent ones, not taken
            for sock in silent:
                sock.close()
            assert answer.result().status_code == 200
        assert "Cannot accept" not in server.log()


def test_a_stopping_worker_takes_no_more_queued_handshakes_than_its_limit(
    tmp_path, monkeypatch
) -> None:
    """A stopping worker takes what waits in the listen queue, within its limit: the rest stay
    queued for the worker that replaces it."""
    certificate, key = make_tls_files(tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificate))
    env = {"GUNICORN_WORKER_CONNECTIONS": "3"}
    with LiveServer(workers=1, tls=(certificate, key), env=env) as server:
        silent = [connect(server) for _ in range(30)]
        time.sleep(1)
        (stopping,) = server.worker_pids()
        os.kill(stopping, signal.SIGTERM)
        time.sleep(1)
        held = established_by_worker(server)
        assert held.get(stopping, 0) <= 4 and all(count <= 4 for count in held.values())
        for sock in silent:
            sock.close()
        assert requests.get(server.url + "/healthz", timeout=30).status_code == 200


def test_a_tls_key_that_cannot_be_loaded_stops_the_start(tmp_path, monkeypatch) -> None:
    certificate, key = make_tls_files(tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificate))
    key.write_text("not a key\n")
    server = LiveServer(workers=1, tls=(certificate, key))
    assert "gunicorn exited with" in server.refused_start()
    assert f"Cannot serve TLS with {certificate} and {key}: " in server.log()
    assert "Reason: Worker failed to boot." in server.log()


def test_connections_over_the_workers_limit_get_503() -> None:
    with LiveServer(workers=1, env={"GUNICORN_WORKER_CONNECTIONS": "3"}) as server:
        held = [connect(server) for _ in range(3)]
        time.sleep(0.3)  # accepted
        status, headers, body = exchange(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status == 503 and headers["retry-after"] == "1" and body["detail"]
        for sock in held:
            sock.close()
        time.sleep(0.3)
        assert requests.get(server.url + "/healthz", timeout=5).status_code == 200


def wait_until_every_worker_serves(server: LiveServer, workers: int, timeout: float = 30) -> None:
    """The server answers once one worker has loaded the application; the others may still be
    loading it (longer on a busy machine), and take no connection until they serve."""
    deadline = time.monotonic() + timeout
    while True:
        answer = requests.get(server.url + "/healthz", headers={"Connection": "close"}, timeout=10)
        assert answer.status_code == 200
        serving = {line["pid"] for line in request_log(server) if line["path"] == "/healthz"}
        if len(serving) >= workers:
            return
        assert time.monotonic() < deadline, f"{len(serving)} of {workers} workers serve"
        time.sleep(0.05)


def gunicorn_with_open_files(soft: int, hard: int) -> list[str]:
    return [
        *("prlimit", f"--nofile={soft}:{hard}", "--"),
        *(sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py"),
    ]


def test_a_worker_raises_its_open_files_limit_for_its_connections() -> None:
    command = gunicorn_with_open_files(64, 4096)
    with LiveServer(workers=1, command=command) as server:
        (worker,) = server.worker_pids()
        assert open_files_limit(worker) == (1000 + OTHER_OPEN_FILES, 4096)
        assert "Workers may open" not in server.log()


def test_a_worker_out_of_open_files_waits_for_them_rather_than_spinning() -> None:
    with LiveServer(workers=1, command=gunicorn_with_open_files(64, 64)) as server:
        (worker,) = server.worker_pids()
        assert open_files_limit(worker) == (64, 64)
        held = [connect(server) for _ in range(80)]  # more than the worker can open
        try:
            time.sleep(0.5)
            before = cpu_seconds(worker)
            time.sleep(2)
            spent = cpu_seconds(worker) - before
        finally:
            for sock in held:
                sock.close()
        assert spent < 0.5
        log = server.log()
        assert f"Workers may open 64 files, fewer than the {1000 + OTHER_OPEN_FILES} that" in log
        assert "Cannot accept a connection: Too many open files; next try in 1 s." in log
        deadline = time.monotonic() + 10
        while not probe_answers(server):  # once the worker's files are free again
            assert time.monotonic() < deadline, "no answer 10 s after the files were freed"
            time.sleep(0.2)


def open_files_limit(pid: int) -> tuple[int, int]:
    line = next(
        line
        for line in Path(f"/proc/{pid}/limits").read_text().splitlines()
        if line.startswith("Max open files")
    )
    soft, hard = line.split()[3:5]
    return int(soft), int(hard)


def probe_answers(server: LiveServer) -> bool:
    try:
        return requests.get(server.url + "/healthz", timeout=1).status_code == 200
    except requests.RequestException:
        return False


def test_connections_are_spread_over_every_worker() -> None:
    with LiveServer(workers=2) as server:
        wait_until_every_worker_serves(server, 2)
        access_token = token(server)
        connections = [
            http.client.HTTPConnection("127.0.0.1", server.port, timeout=10) for _ in range(16)
        ]
        for connection in connections:
            connection.request("GET", "/healthz")
            connection.getresponse().read()
        for connection in connections:
            connection.request(
                "POST",
                "/sum",
                body="[1]",
                headers={"Authorization": f"Bearer {access_token}"},
            )
            assert connection.getresponse().status == 415  # no Content-Type: cheap, logged
        for connection in connections:
            connection.close()
        deadline = time.monotonic() + 10
        while len(pids := answering_pids(server)) < 16 and time.monotonic() < deadline:
            time.sleep(0.1)  # the request log lines of the last answers
        counts = {pid: pids.count(pid) for pid in set(pids)}
        # Opened one after the other: each goes to the worker holding fewer, unless that one
        # cannot take it within a few milliseconds (a busy machine), so not always 8 and 8.
        assert len(counts) == 2 and min(counts.values()) >= 3, counts


def test_kept_alive_clients_even_out_after_a_worker_held_them_all() -> None:
    """While a worker restarts (a recycle, a crash), its kept-alive clients reconnect to the
    others and would stay there: a worker holding more than its share announces "Connection:
    close" on some answers, at most one per MOVE_INTERVAL_SECONDS, those clients reconnect to
    the worker holding fewer, and once the two are even no answer closes its connection."""
    with LiveServer(workers=2) as server:
        wait_until_every_worker_serves(server, 2)
        first, second = sorted(server.worker_pids())
        connections = [
            http.client.HTTPConnection("127.0.0.1", server.port, timeout=10) for _ in range(8)
        ]
        closed = 0

        def ask_each(label: str) -> list[int]:
            """One request on each connection; the pids of the workers that answered."""
            nonlocal closed
            for number, connection in enumerate(connections):
                connection.request("GET", "/healthz", headers={"X-Request-ID": f"{label}-{number}"})
                response = connection.getresponse()
                assert response.status == 200 and response.read() == b'{"status":"ok"}'
                closed += response.getheader("Connection") == "close"  # http.client reconnects
            wanted = [f"{label}-{number}" for number in range(8)]
            deadline = time.monotonic() + 10
            while (
                not set(wanted)
                <= (
                    pids := {line["request_id"]: line["pid"] for line in request_log(server)}
                ).keys()
            ):
                assert time.monotonic() < deadline, "the answers' log lines"
                time.sleep(0.02)
            return [pids[request_id] for request_id in wanted]

        os.kill(second, signal.SIGSTOP)  # alive but not accepting: first takes every connection
        try:
            started = time.monotonic()
            assert ask_each("stopped") == [first] * 8
            took = time.monotonic() - started
        finally:
            os.kill(second, signal.SIGCONT)
        # Its clients come back to it while the other takes none: paced, not one per answer.
        assert closed <= 1 + took / MOVE_INTERVAL_SECONDS
        deadline = time.monotonic() + 20
        for round_ in itertools.count():
            pids = ask_each(f"round-{round_}")
            if sorted(pids.count(pid) for pid in (first, second)) == [4, 4]:
                break
            assert time.monotonic() < deadline, pids
        assert closed >= 4  # the excess moved
        settled = closed
        time.sleep(2 * MOVE_INTERVAL_SECONDS)
        assert ask_each("settled-0").count(first) == 4
        assert ask_each("settled-1").count(first) == 4
        assert closed == settled
        for connection in connections:
            connection.close()


def unstarted_worker() -> SumWorker:
    """A SumWorker with just what taking a connection needs (not gunicorn's set-up), holding a
    slot in the shared counts and an event loop of its own, not yet running."""

    class Unstarted(SumWorker):
        def __init__(self) -> None:
            pass

    worker = Unstarted()
    worker.cfg, worker.log, worker.asgi = Config(), logging.getLogger(__name__), None
    worker.nr_conns, worker.worker_connections, worker._connecting = 0, 10, {}
    worker.protocols, worker._waiting_for_room = set(), set()
    worker.alive = True
    worker._slot = COUNTS.claim(os.getpid())
    worker.loop = asyncio.new_event_loop()
    return worker


@contextlib.contextmanager
def connection_taken_by(worker: SumWorker) -> Iterator[socket.socket]:
    """The client end of a connection the unstarted worker has just taken; afterwards its loop's
    tasks are cancelled, the loop closed and the worker's slot released."""
    accepted, client = socket.socketpair()
    try:
        worker._take(accepted)
        yield client
    finally:
        client.close()
        for task in asyncio.all_tasks(worker.loop):
            task.cancel()
        worker.loop.run_until_complete(asyncio.sleep(0))
        worker.loop.close()
        COUNTS.release(worker._slot)


def test_a_connection_counts_from_its_accept() -> None:
    """wrk opens its connections back to back: gunicorn counts one from connection_made, a loop
    turn or two after the accept, and the worker that took the first would still look empty and
    take the next ones too. The other workers see it from the accept on."""

    worker = unstarted_worker()
    other = COUNTS.claim(os.getppid())  # another worker, as the shared counts see it
    try:
        with connection_taken_by(worker) as client:
            assert COUNTS.fewest_elsewhere(other) == 1  # before the loop has run at all
            worker.loop.run_until_complete(asyncio.wait(list(worker._connecting.values())))
            assert COUNTS.fewest_elsewhere(other) == 1  # set up: counted once
            client.close()
            worker.loop.run_until_complete(asyncio.sleep(0.1))
            assert COUNTS.fewest_elsewhere(other) == 0
    finally:
        COUNTS.release(other)


def test_a_silent_connection_taken_while_stopping_gets_the_stops_wait() -> None:
    """A stopping worker takes what waits in the listen queue after it has told its other
    connections; one of those that has sent nothing yet is closed after the stop's 2 s wait
    too, not held open for the header timeout."""

    worker = unstarted_worker()
    worker.alive = False  # stopping
    with connection_taken_by(worker) as client:
        worker.loop.run_until_complete(asyncio.wait(list(worker._connecting.values())))
        worker.loop.run_until_complete(asyncio.sleep(STOP_KEEPALIVE_LINGER + 0.5))
        client.settimeout(1)
        assert client.recv(1) == b""  # closed by the worker, with nothing sent


def test_a_connection_whose_set_up_fails_is_no_longer_counted() -> None:
    """The other workers would otherwise see this one holding it until its next connection."""

    worker = unstarted_worker()
    other = COUNTS.claim(os.getppid())  # another worker, as the shared counts see it
    loop = worker.loop
    datagram = socket.socket(type=socket.SOCK_DGRAM)  # not a stream: its set-up fails
    try:
        worker._take(datagram)
        assert COUNTS.fewest_elsewhere(other) == 1
        loop.run_until_complete(asyncio.wait(list(worker._connecting.values())))
        assert COUNTS.fewest_elsewhere(other) == 0
    finally:
        datagram.close()
        loop.close()
        COUNTS.release(worker._slot)
        COUNTS.release(other)


def answering_pids(server: LiveServer) -> list[int]:
    return [
        line["pid"]
        for line in request_log(server)
        if line["method"] == "POST" and line["path"] == "/sum"
    ]


def test_start_sh_takes_a_worker_count_set_to_nothing_as_unset() -> None:
    """As every variable: gunicorn, which reads WEB_CONCURRENCY itself, would stop on it."""
    default = 2 * (os.cpu_count() or 1) + 1
    with LiveServer(workers=1, env={"WEB_CONCURRENCY": " "}, command=["./start.sh"]) as server:
        assert len(server.wait_for_workers(default)) == default


def test_slow_clients_cost_the_others_nothing_on_start_sh_defaults() -> None:
    """256 connections trickle a request (half their head, half their body) at one byte a
    second on ./start.sh's own configuration; meanwhile small /sum requests on new connections
    are answered, 99 % within 1 s and none failing; afterwards every worker is the same."""
    with LiveServer(workers=None, command=["./start.sh"]) as server:
        workers = server.wait_for_workers(2 * (os.cpu_count() or 1) + 1)  # start.sh's default
        access_token = token(server)
        head = b"POST /sum HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        body = sum_request(access_token, b"[" + b"1," * 500 + b"1]")
        with (
            Tricklers(server, 128, head, b"X-Slow: " + b"a" * 100) as heads,
            Tricklers(server, 128, body[: body.index(b"\r\n\r\n") + 4], b"1," * 100) as bodies,
        ):
            probe = Probe(server, access_token).run(seconds=8)
            still_open = len(heads.sockets) + len(bodies.sockets)
        assert still_open == 256, "the slow connections were closed early: they cost nothing"
        assert not probe.failures, probe.failures[:5]
        assert len(probe.latencies) >= 50
        assert probe.share_within(1.0) >= 0.99, sorted(probe.latencies)[-10:]
        assert server.worker_pids() == workers
        assert requests.get(server.url + "/healthz", timeout=5).status_code == 200


def test_clients_that_never_close_cost_the_others_nothing(server: LiveServer) -> None:
    """Clients that read their answer and then hold the connection (kept alive, or after
    `Connection: close`) without ever closing it."""
    access_token = token(server)
    workers = server.worker_pids()
    idle = []
    for number in range(40):
        sock = connect(server)
        sock.sendall(sum_request(access_token, close=number % 2 == 0))
        assert read_response(sock)[0] == 200
        idle.append(sock)  # never closed by the client until the end
    probe = Probe(server, access_token).run(seconds=3)
    for sock in idle:
        sock.close()
    assert not probe.failures, probe.failures[:5]
    assert probe.share_within(1.0) >= 0.99, sorted(probe.latencies)[-10:]
    assert server.worker_pids() == workers


def test_a_client_that_never_reads_its_answers_is_dropped_at_the_send_timeout() -> None:
    """Pipelining requests for a large file and reading nothing, a client would hold its
    connection (and the answers waiting for it) for good; past GUNICORN_SEND_TIMEOUT with its
    send buffer full, it is dropped. Read at last, the connection ends before its answers do."""
    bundle = b"/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js"
    requests_sent = 20  # ~1.4 MB each: more than the socket buffers hold
    with LiveServer(workers=1, env={"GUNICORN_SEND_TIMEOUT": "1"}) as server:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", server.port))
        with sock:
            sock.sendall(
                (b"GET " + bundle + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n") * requests_sent
            )
            time.sleep(3)
            received = read_until_closed(sock)
        log = server.log()
    assert received.count(b"HTTP/1.1 200 OK") < requests_sent
    assert "Dropped a client that read under 16384 bytes of its answer in 1 s." in log


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_a_client_that_reads_slowly_is_not_dropped(tmp_path, monkeypatch, tls: bool) -> None:
    """A large answer is written in one piece, so a slow client reading it steadily keeps the
    send buffer full for as long as it reads: what counts is that it reads (over TLS too,
    whose write buffer does not shrink as the socket's drains). The server's kernel send
    buffer is made small, as a slow WAN path's is (loopback's takes the whole file at once);
    two answers are asked for at once, as a second one fills the TLS layer's buffer."""
    config = tmp_path / "small_send_buffer.conf.py"
    config.write_text(
        "import runpy, socket\n"
        f"globals().update(runpy.run_path({str(ROOT / 'gunicorn.conf.py')!r}))\n"
        "take = SumWorker._take\n"
        "def _take(self, connection):\n"
        "    connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 32768)\n"
        "    return take(self, connection)\n"
        "SumWorker._take = _take\n"
    )
    command = [sys.executable, "-m", "gunicorn", "--config", str(config)]
    bundle = "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js"
    env = {"GUNICORN_SEND_TIMEOUT": "1"}
    files = make_tls_files(tmp_path) if tls else None
    if files:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(files[0]))  # LiveServer's own requests
    with LiveServer(workers=1, env=env, command=command, tls=files) as server:
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        if files:
            context = ssl.create_default_context(cafile=str(files[0]))
            context.check_hostname = False
            sock = context.wrap_socket(sock, server_hostname="127.0.0.1")
        with sock:
            sock.sendall(f"GET {bundle} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode() * 2)
            stream = SlowReader(sock.makefile("rb"), 16384, 0.05)
            answers = [read_response(stream) for _ in range(2)]
        log = server.log()
    # ~10 s at 16 KiB per 50 ms, each answer whole
    for status, headers, body in answers:
        assert status == 200
        assert len(body) == int(headers["content-length"]) > 1_000_000
    assert "Dropped a client" not in log


class SlowReader:
    """A file read at most `size` bytes at a time, `pause` seconds apart."""

    def __init__(self, stream, size: int, pause: float) -> None:
        self.stream, self.size, self.pause = stream, size, pause

    def readline(self) -> bytes:
        return self.stream.readline()

    def read(self, wanted: int) -> bytes:
        parts = []
        while wanted > 0:
            part = self.stream.read(min(wanted, self.size))
            if not part:
                break
            parts.append(part)
            wanted -= len(part)
            time.sleep(self.pause)
        return b"".join(parts)


def read_until_closed(sock: socket.socket) -> bytes:
    sock.settimeout(10)
    received = bytearray()
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(1 << 20):
            received += chunk
    return bytes(received)


def test_a_body_in_tiny_chunks_holds_up_no_one() -> None:
    """A chunked body of 2-byte chunks (3 MB of them in 21 MB on the wire) is summed right,
    while /sum answers other clients of its only worker meanwhile: the parser is fed a
    chunked body a piece at a time (its cost was the square of each read's size, and other
    requests waited 3.5 to 4.6 s) and the chunks waiting are handed over together (0.3 to
    0.5 s at most here on an idle machine; up to 1 s beside the rest of the suite)."""
    chunks = 3_000_000
    with LiveServer(workers=1) as server:
        access_token = token(server)
        head = (
            b"POST /sum HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {access_token}\r\n".encode()
            + b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        )
        body = b"1\r\n[\r\n" + b"2\r\n1,\r\n" * chunks + b"2\r\n1]\r\n0\r\n\r\n"
        answers: list[tuple[int, dict, bytes]] = []

        def upload() -> None:
            with connect(server, timeout=60) as sock:
                sock.sendall(head + body)
                answers.append(read_response(sock))

        uploader = threading.Thread(target=upload)
        uploader.start()
        probe = Probe(server, access_token)
        while uploader.is_alive():
            probe.run(seconds=0.1)
        uploader.join()
    ((status, _, answer),) = answers
    assert (status, json.loads(answer)["sum"]) == (200, str(chunks + 1))
    assert probe.latencies and not probe.failures, probe.failures[:5]
    assert max(probe.latencies) < 2, sorted(probe.latencies)[-5:]


def test_sigterm_answers_every_request_in_flight_and_exits_within_the_graceful_timeout() -> None:
    """20 clients each POST a 1 MiB document; SIGTERM comes while they are being served (or
    wait in the listen queue): every one gets its right answer, and the master exits in time."""
    graceful = 20
    body = document("int", MIB)
    expected = canonical_sum(body)
    server = LiveServer(workers=2, env={"GUNICORN_GRACEFUL_TIMEOUT": str(graceful)}).start()
    access_token = token(server)
    connected = threading.Barrier(21)

    def post() -> tuple[int, dict]:
        # Connected before SIGTERM (a client connecting after it is refused, rightly), then
        # sending its body while the server stops.
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        connection.connect()
        connected.wait()
        connection.request(
            "POST",
            "/sum",
            body=body,
            headers={"Authorization": f"Bearer {access_token}", "Content-Type": "application/json"},
        )
        answer = connection.getresponse()
        return answer.status, json.loads(answer.read())

    try:
        with ThreadPoolExecutor(max_workers=20) as pool:
            futures = [pool.submit(post) for _ in range(20)]
            connected.wait()
            time.sleep(0.05)  # the bodies are on their way
            assert server.process is not None
            stopped = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            answers = [future.result() for future in futures]
            server.process.wait(timeout=graceful + 10)
            exited_after = time.monotonic() - stopped
    finally:
        server.close(signal.SIGKILL)
    assert [status for status, _ in answers] == [200] * 20
    assert {answer["sum"] for _, answer in answers} == {expected}
    assert exited_after < graceful
    assert server.process.returncode == 0
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=2).close()


def test_sigterm_answers_the_requests_pipelined_behind_those_in_flight() -> None:
    """10 clients each send a 3 MB document and two small ones behind it, all at once; SIGTERM
    comes while the large ones are summed: the small ones, already received, are answered
    too (gunicorn answered the first with `Connection: close` and dropped the rest)."""
    large = b"[" + b"1," * 1_500_000 + b"1]"
    server = LiveServer(workers=2).start()
    access_token = token(server)
    pipelined = b"".join(sum_request(access_token, body) for body in (large, b"[1]", b"[2]"))
    sent = threading.Barrier(11)

    def send_and_read() -> list[tuple[int, str, str | None]]:
        with connect(server, timeout=30) as sock:
            sock.sendall(pipelined)
            sent.wait()
            stream = sock.makefile("rb")
            answers = []
            with contextlib.suppress(ConnectionError):
                while len(answers) < 3:
                    status, headers, body = read_response(stream)
                    answers.append((status, json.loads(body)["sum"], headers.get("connection")))
            return answers

    try:
        with ThreadPoolExecutor(max_workers=10) as pool:
            futures = [pool.submit(send_and_read) for _ in range(10)]
            sent.wait()
            server.process.send_signal(signal.SIGTERM)
            answers = [future.result() for future in futures]
            server.process.wait(timeout=40)
    finally:
        server.close(signal.SIGKILL)
    for answered in answers:
        assert [(status, total) for status, total, _ in answered] == [
            (200, "1500001"),
            (200, "1"),
            (200, "2"),
        ]
        assert answered[-1][2] == "close"  # the last, once nothing more waits


def test_a_recycled_worker_answers_the_requests_pipelined_on_its_connections() -> None:
    with LiveServer(workers=1, env={"GUNICORN_MAX_REQUESTS": "5"}) as server:
        access_token = token(server)
        with connect(server) as sock:
            sock.sendall(b"".join(sum_request(access_token, b"[%d]" % n) for n in range(12)))
            stream = sock.makefile("rb")
            answers = [read_response(stream) for _ in range(12)]
    assert [json.loads(body)["sum"] for _, _, body in answers] == [str(n) for n in range(12)]
    assert answers[-1][1].get("connection") == "close"  # past max_requests, nothing more waits


def test_a_client_that_keeps_pipelining_does_not_keep_a_stopping_worker() -> None:
    """Requests pipelined behind one in hand are answered for the stop's first seconds only:
    then an answer says Connection: close, and the recycled worker exits, rather than serve
    until the graceful timeout ends the connection with requests unanswered."""
    env = {"GUNICORN_MAX_REQUESTS": "3", "GUNICORN_GRACEFUL_TIMEOUT": "20"}
    with LiveServer(workers=1, env=env) as server:
        recycled = server.worker_pids()
        sending = threading.Event()
        with connect(server) as sock:

            def keep_pipelining() -> None:
                request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
                with contextlib.suppress(OSError):
                    while not sending.is_set():  # never a moment without one waiting
                        sock.sendall(request * 100)

            sender = threading.Thread(target=keep_pipelining)
            sender.start()
            started = time.monotonic()
            try:
                stream = sock.makefile("rb")
                while True:
                    status, headers, _ = read_response(stream)
                    assert status == 200
                    if headers.get("connection") == "close":
                        break
                closed_after = time.monotonic() - started
            finally:
                sending.set()
                sender.join()
        server.wait_for_workers(1, replacing=recycled, timeout=10)
    assert closed_after < STOP_KEEPALIVE_LINGER + 2


def test_a_recycled_worker_drains_for_longer_than_the_worker_timeout() -> None:
    """The master restarts a worker silent for GUNICORN_TIMEOUT: a worker that reached
    max_requests and drains a request for longer is not one of them, and answers it."""
    env = {"GUNICORN_MAX_REQUESTS": "5", "GUNICORN_TIMEOUT": "2", "GUNICORN_GRACEFUL_TIMEOUT": "20"}
    with LiveServer(workers=1, env=env) as server, connect(server) as sock:
        request = sum_request(token(server), b"[1, 2]")
        sock.sendall(request[:-3])
        recycled = server.worker_pids()
        for _ in range(5):  # up to its max_requests, announced by the last answer
            answer = requests.get(server.url + "/healthz", timeout=10)
            if answer.headers.get("Connection") == "close":
                break
        else:
            pytest.fail("the worker did not reach max_requests")
        time.sleep(4)  # twice the worker timeout, draining the request in hand
        sock.sendall(request[-3:])
        status, _, body = read_response(sock)
        assert status == 200
        assert json.loads(body)["sum"] == "3"
        server.wait_for_workers(1, replacing=recycled)
        assert "WORKER TIMEOUT" not in server.log()


def test_an_idle_kept_alive_connection_does_not_hold_a_stop_for_its_keep_alive_timeout() -> None:
    """A connection idle between requests when SIGTERM comes gets the stop's 2 s wait, not
    what remains of a 30 s keep-alive timeout: the worker exits, and the master with it."""
    with LiveServer(workers=1, env={"GUNICORN_KEEPALIVE": "30"}) as server:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        connection.request("GET", "/healthz")
        assert connection.getresponse().read() == b'{"status":"ok"}'
        signalled = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        server.process.wait(timeout=20)
        assert time.monotonic() - signalled < 10
        assert server.process.returncode == 0
        connection.sock.settimeout(5)
        assert connection.sock.recv(1) == b""  # closed by the server, no answer pending
        connection.close()


def test_a_connection_that_has_sent_nothing_does_not_hold_a_stop_for_the_header_timeout() -> None:
    """A connection opened and left silent (a browser's speculative connection) when SIGTERM
    comes is closed after the stop's 2 s wait, not the 30 s header timeout. One that starts
    its request within that wait is answered, even if the rest of it comes after."""
    with LiveServer(workers=1, env={"GUNICORN_HEADER_TIMEOUT": "30"}) as server:
        silent = connect(server, timeout=60)
        late = connect(server, timeout=60)
        time.sleep(0.5)  # both accepted and set up
        signalled = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        late.sendall(b"GET /healthz HTTP/1.1\r\n")
        time.sleep(2.5)  # past the stop's wait
        late.sendall(b"Host: 127.0.0.1\r\n\r\n")
        assert read_response(late)[:1] == (200,)
        server.process.wait(timeout=20)
        assert time.monotonic() - signalled < 10
        assert server.process.returncode == 0
        silent.settimeout(5)
        assert silent.recv(1) == b""  # closed by the server
        silent.close()
        late.close()


def test_workers_fork_with_the_application_loaded(tmp_path) -> None:
    """The master loads the application, the views included, before it forks: a worker
    (a new one after a recycle or a crash too) serves without loading Django again."""
    seen = tmp_path / "loaded-at-fork"
    config = tmp_path / "gunicorn.conf.py"
    config.write_text(
        f"exec(open({str(ROOT / 'gunicorn.conf.py')!r}).read())\n"
        "def post_fork(server, worker):\n"
        "    import sys\n"
        f"    open({str(seen)!r}, 'a').write(str('api.views' in sys.modules) + '\\n')\n"
    )
    command = [sys.executable, "-m", "gunicorn", "--config", str(config)]
    with LiveServer(workers=2, command=command):
        pass
    assert seen.read_text().split() == ["True", "True"]


def test_a_recycled_worker_stops_accepting_at_once() -> None:
    """Once a worker has answered its GUNICORN_MAX_REQUESTS-th request it takes no new
    connection (it used to, until its next heartbeat up to a second later): the next one is
    answered by its replacement."""
    with LiveServer(workers=1, env={"GUNICORN_MAX_REQUESTS": "5"}) as server:
        for number in range(4):  # LiveServer's start asked once
            headers = {"X-Request-ID": f"before-{number}", "Connection": "close"}
            assert requests.get(server.url + "/healthz", headers=headers, timeout=10).ok
        time.sleep(0.2)
        headers = {"X-Request-ID": "after", "Connection": "close"}
        assert requests.get(server.url + "/healthz", headers=headers, timeout=10).ok
        time.sleep(0.2)  # the log line
        pids = {line["request_id"]: line["pid"] for line in request_log(server)}
        assert pids["after"] != pids["before-3"]


@pytest.mark.parametrize(
    ("workers", "signals", "idle"),
    [
        (2, [], 0),
        # Idle kept-alive clients hold a retiring worker for its linger (2 s): the other one,
        # past its count meanwhile, must not go too.
        (2, [], 2),
        # The master keeps 2 of 3: the workers' own configuration still says 3.
        (3, [signal.SIGTTOU], 0),
    ],
)
def test_workers_recycle_one_at_a_time(workers: int, signals: list, idle: int) -> None:
    """Workers that share the load evenly reach GUNICORN_MAX_REQUESTS together: one retires,
    and the other waits until its replacement serves, so some worker always accepts. (Both
    retiring at once stalled every client for 150 ms and more.)"""
    with LiveServer(workers=workers, env={"GUNICORN_MAX_REQUESTS": "300"}) as server:
        for sent in signals:
            server.process.send_signal(sent)
        deadline = time.monotonic() + 10
        while len(server.worker_pids()) != 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(server.worker_pids()) == 2
        access = get_token(server)
        idle_sessions = [requests.Session() for _ in range(idle)]
        for session in idle_sessions:
            assert post_sum(server, b"[1]", access, session=session).status_code == 200
        logged_before = len(server.log())
        enough = threading.Event()

        def keep_summing() -> None:
            with requests.Session() as session:
                while not enough.is_set():
                    assert post_sum(server, b"[1, 2]", access, session=session).status_code == 200

        def order() -> str:
            """R: a worker retires; B: one boots."""
            logged = server.log()[logged_before:]
            events = re.findall(r"\] (Autorestarting worker|Booting worker)", logged)
            return "".join(event[0] for event in events).replace("A", "R")

        with ThreadPoolExecutor(8) as clients:
            running = [clients.submit(keep_summing) for _ in range(8)]
            # Three recycles, each of ~300 requests, and the drains between them.
            deadline = time.monotonic() + 30
            while order().count("R") < 3 and time.monotonic() < deadline:
                time.sleep(0.1)
            enough.set()
            for client in running:
                client.result()
        for session in idle_sessions:
            session.close()
        seen = order()

    assert seen.count("R") >= 3, seen
    assert "RR" not in seen, seen


def test_a_start_that_fails_leaves_no_shared_folder(tmp_path) -> None:
    """The master makes its private folder (metrics, rate limits) before it loads the keys and
    the application; a start that fails there removes it (gunicorn calls no on_exit then)."""
    state_dir = tmp_path / "state"
    (state_dir / "keys").mkdir(parents=True)
    state_dir.chmod(0o700)
    (state_dir / "keys").chmod(0o755)  # refused: others could read the keys
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    server = LiveServer(state_dir=state_dir, env={"TMPDIR": str(temporary)})
    assert "chmod 700" in server.refused_start()
    assert list(temporary.iterdir()) == []


def test_a_master_started_with_anothers_environment_leaves_its_folders_alone(tmp_path) -> None:
    """A master started with another's environment (copied by a script, say) is told that
    master's shared folder and the folders within it: it makes its own instead, and neither
    empties the other's metrics nor removes its folder at exit."""
    others = tmp_path / "other-master"
    (others / "metrics").mkdir(parents=True)
    (others / "cache").mkdir()
    live_metrics = others / "metrics" / "counter_1234.db"
    live_metrics.write_text("the other master's")
    env = {
        "SUMSERVICE_SHARED_FOLDER": str(others),
        "PROMETHEUS_MULTIPROC_DIR": str(others / "metrics"),
        "SUMSERVICE_CACHE_DIR": str(others / "cache"),
    }
    with LiveServer(env=env) as server:
        assert requests.get(server.url + "/healthz", timeout=10).status_code == 200
        assert requests.get(server.url + "/metrics", timeout=10).status_code == 200

    assert live_metrics.read_text() == "the other master's"
    assert sorted(path.name for path in (others / "metrics").iterdir()) == ["counter_1234.db"]


def test_a_worker_told_to_stop_while_it_loads_stops(tmp_path) -> None:
    """A SIGTERM that reaches a worker before it serves (a SIGHUP or a `docker stop` right after
    a start) stops it once it is loaded, rather than being lost."""
    marker = tmp_path / "stopped-while-loading"
    config = tmp_path / "gunicorn.conf.py"
    config.write_text(
        f"exec(open({str(ROOT / 'gunicorn.conf.py')!r}).read())\n"
        "def post_worker_init(worker):\n"
        f"    if not os.path.exists({str(marker)!r}):  # the first worker only\n"
        f"        open({str(marker)!r}, 'w').write(str(os.getpid()))\n"
        "        os.kill(os.getpid(), __import__('signal').SIGTERM)\n"
    )
    command = [sys.executable, "-m", "gunicorn", "--config", str(config)]
    with LiveServer(workers=1, command=command) as server:
        stopped = int(marker.read_text())
        deadline = time.monotonic() + 10
        while stopped in server.worker_pids() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert stopped not in server.worker_pids(), server.log()
        assert f"Worker exiting (pid: {stopped})" in server.log()
        server.wait_for_workers(1, replacing={stopped})
        assert requests.get(server.url + "/healthz", timeout=30).status_code == 200


def test_a_worker_leaving_connections_to_others_is_not_left_any() -> None:
    """Two workers each leaving a new connection to the other would leave it to no one until
    their waits end: a worker that defers is not one to defer to."""
    counts = ConnectionCounts()
    mine, other = counts.claim(os.getpid()), counts.claim(os.getppid())
    counts.set(mine, 3)
    counts.set(other, 1)
    assert counts.fewest_elsewhere(mine) == 1
    counts.defer(other, True)
    assert counts.fewest_elsewhere(mine) is None
    counts.defer(other, False)
    assert counts.fewest_elsewhere(mine) == 1


def test_a_worker_gone_is_forgotten_even_if_its_pid_lives_on() -> None:
    """A worker killed outright never releases its slot; the master forgets it as it reaps
    it, so a process that takes its pid later does not stand in for it."""
    counts = ConnectionCounts()
    mine = counts.claim(os.getpid())
    counts.claim(os.getppid())  # "killed", its pid alive: a reused pid looks the same
    assert counts.fewest_elsewhere(mine) == 0
    counts.forget(os.getppid())
    assert counts.fewest_elsewhere(mine) is None
    assert counts.elsewhere(mine) == []


def test_malloc_is_tuned_on_glibc_unless_the_operator_tunes_it(monkeypatch) -> None:
    """Debian's glibc, as in the image, takes the worker's thresholds; an operator's own
    thresholds are left to stand."""
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.arena_max=2:glibc.malloc.trim_threshold=1")
    assert tune_malloc() is False
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.arena_max=2")  # not a threshold
    assert tune_malloc() is True
    monkeypatch.delenv("GLIBC_TUNABLES")
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "131072")
    assert tune_malloc() is False
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_")
    assert tune_malloc() is True


def test_an_upgrade_in_place_after_a_reload_serves_from_a_folder_of_its_own(tmp_path) -> None:
    """gunicorn's USR2 starts a new master from the old one's environment, which after a SIGHUP
    names the old master's shared folder: the new master would empty its metrics, and lose
    everything once the old master, exiting, removed it (500 on every request)."""
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    # As ./start.sh runs it: USR2 runs the same command again (`python -m gunicorn` would be
    # run as gunicorn/__main__.py, whose folder hides the standard library's `http`).
    command = [str(Path(sys.executable).with_name("gunicorn")), "--config", "gunicorn.conf.py"]
    server = LiveServer(workers=1, env={"TMPDIR": str(temporary)}, command=command)
    with server:
        old_master = server.process.pid
        server.reload()
        os.kill(old_master, signal.SIGUSR2)
        deadline = time.monotonic() + 30
        new_master = None
        while new_master is None and time.monotonic() < deadline:
            for pid in server.worker_pids():
                environment = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
                if f"GUNICORN_PID={old_master}".encode() in environment:
                    new_master = pid
            time.sleep(0.1)
        assert new_master is not None, server.log()
        try:
            children = Path(f"/proc/{new_master}/task/{new_master}/children")
            while not children.read_text().split() and time.monotonic() < deadline:
                time.sleep(0.1)
            assert requests.get(server.url + "/healthz", timeout=10).status_code == 200
            os.kill(old_master, signal.SIGTERM)
            server.process.wait(timeout=30)
            assert len(list(temporary.iterdir())) == 1  # the new master's
            for _ in range(3):
                assert requests.get(server.url + "/healthz", timeout=10).status_code == 200
            assert requests.get(server.url + "/metrics", timeout=10).status_code == 200
            credentials = {"username": "alice", "password": "secret"}
            answer = requests.post(server.url + "/auth", json=credentials, timeout=10)
            assert answer.status_code == 200
        finally:
            os.kill(new_master, signal.SIGTERM)
            while Path(f"/proc/{new_master}").exists() and time.monotonic() < deadline + 30:
                time.sleep(0.1)
    assert list(temporary.iterdir()) == []
