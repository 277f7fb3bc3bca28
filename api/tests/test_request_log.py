"""The request log: one JSON line per request, with the request id echoed; no secrets."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from hypothesis import given
from hypothesis import strategies as st

from api.request_log import log_line, utc_timestamp
from api.tests.utils import post_sum

PASSWORD = "correct-horse-battery-staple"


def lines(caplog: pytest.LogCaptureFixture) -> list[dict]:
    return [
        json.loads(record.getMessage())
        for record in caplog.records
        if record.name == "sumservice.requests"
    ]


def test_each_request_is_one_json_line(client: Client, caplog) -> None:
    caplog.set_level(logging.INFO)
    before = datetime.now(UTC).replace(microsecond=0)
    response = client.post(
        "/auth",
        {"username": "alice", "password": PASSWORD},
        content_type="application/json",
        HTTP_X_REQUEST_ID="req-42.a:b",
        REMOTE_ADDR="127.0.0.1",
        HTTP_X_FORWARDED_FOR="198.51.100.9",
    )
    assert response["X-Request-ID"] == "req-42.a:b"
    [line] = lines(caplog)
    logged = datetime.fromisoformat(line.pop("time"))
    assert before <= logged <= datetime.now(UTC)
    assert line.pop("duration_ms") >= 0
    assert isinstance(line.pop("pid"), int)
    assert line == {
        "request_id": "req-42.a:b",
        "method": "POST",
        "path": "/auth",
        "status": 200,
        "bytes": len(response.content),
        "client": "198.51.100.9",  # through the trusted local proxy
    }


@pytest.mark.parametrize("sent", [None, "", "has space", "x" * 129, "new\nline", "end\n", "ünï"])
def test_a_missing_or_odd_request_id_is_replaced(client: Client, caplog, sent) -> None:
    caplog.set_level(logging.INFO)
    extra = {} if sent is None else {"HTTP_X_REQUEST_ID": sent}
    response = client.get("/healthz", **extra)
    made = response["X-Request-ID"]
    assert made != sent and len(made) == 32 and int(made, 16) >= 0
    [line] = lines(caplog)
    assert line["request_id"] == made


def test_each_request_gets_its_own_id(client: Client) -> None:
    made = {client.get("/healthz")["X-Request-ID"] for _ in range(50)}
    assert len(made) == 50


def test_errors_and_refusals_are_logged_too(client: Client, caplog) -> None:
    caplog.set_level(logging.INFO)
    client.get("/nowhere")
    client.post("/auth", b"x" * (64 * 1024 + 1), content_type="application/json")
    assert [(line["path"], line["status"]) for line in lines(caplog)] == [
        ("/nowhere", 404),
        ("/auth", 413),
    ]


def test_bytes_are_the_body_sent(client: Client, caplog) -> None:
    """None to a HEAD; a static file's size (streamed, not read by the log)."""
    caplog.set_level(logging.INFO)
    assert client.head("/healthz").status_code == 200
    static = client.get("/static/api/bearer-token.js")
    assert static.status_code == 200 and static.streaming
    sent = len(b"".join(static.streaming_content))
    assert sent > 0
    assert [(line["method"], line["bytes"]) for line in lines(caplog)] == [
        ("HEAD", 0),
        ("GET", sent),
    ]


def test_no_token_or_password_reaches_any_log(client: Client, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    response = client.post(
        "/auth", {"username": "alice", "password": PASSWORD}, content_type="application/json"
    )
    token = response.json()["access_token"]
    post_sum(client, "[1]", token)
    post_sum(client, "[1]", token[:-4] + "AAAA")  # tampered: 401
    client.post(f"/sum?access_token={token}", "[1]", content_type="application/json")
    client.post("/auth", {"username": "bob", "password": PASSWORD}, content_type="text/plain")
    logged = caplog.text  # every line as written
    assert lines(caplog)
    assert PASSWORD not in logged
    for part in token.split("."):
        assert part not in logged


def test_a_refusal_is_the_request_logs_line_alone(client: Client, caplog) -> None:
    """Django logs a line of its own for every 4xx ("Not Found: /x"), which any client could
    double the log with; the request log's line says it already."""
    caplog.set_level(logging.INFO)
    assert client.get("/nope").status_code == 404
    assert client.post("/sum", b"[1]", content_type="application/json").status_code == 401
    assert [record.name for record in caplog.records] == ["sumservice.requests"] * 2


# Every text a line can carry: control characters, quotes, backslashes, non-ASCII, lone
# surrogates (a path Django decoded with surrogateescape).
any_text = st.text(st.characters(exclude_categories=[]))


@given(
    when=any_text,
    request_id=any_text,
    method=st.none() | any_text,  # None for a refusal made before Django
    path=st.none() | any_text,
    status=st.integers(100, 599),
    size=st.integers(0, 2**40),
    duration=st.none() | st.floats(0, 1e7),
    client=any_text,
    pid=st.integers(1, 2**22),
)
def test_the_line_is_what_json_dumps_writes(
    when, request_id, method, path, status, size, duration, client, pid
) -> None:
    duration_ms = None if duration is None else round(duration, 3)
    line = log_line(when, request_id, method, path, status, size, duration_ms, client, pid)
    assert line == json.dumps(
        {
            "time": when,
            "request_id": request_id,
            "method": method,
            "path": path,
            "status": status,
            "bytes": size,
            "duration_ms": duration_ms,
            "client": client,
            "pid": pid,
        }
    )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@given(st.integers(0, 253402300799 * 10**9 + 999_999_999))  # to the end of year 9999
def test_the_time_is_what_isoformat_writes(epoch_ns: int) -> None:
    expected = _EPOCH + timedelta(microseconds=epoch_ns // 1000)
    assert utc_timestamp(epoch_ns) == expected.isoformat(timespec="milliseconds")
