"""sumclient against the real service: gunicorn started by the tests on a free loopback port."""

from __future__ import annotations

import doctest
import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import requests
import urllib3

from sumclient import AuthenticationError, BadRequestError, SumClient
from tests.liveserver import ROOT, LiveServer
from tests.utils import post_sum

from .fakeservice import HASH_OF_10


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class RecordingSession(requests.Session):
    """A session that notes each request's path and answer status, to count round trips."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, int]] = []
        self.hooks["response"].append(self._record)

    def _record(self, response: requests.Response, *args: object, **kwargs: object) -> None:
        self.calls.append((response.request.path_url, response.status_code))


@pytest.fixture
def recording() -> Iterator[RecordingSession]:
    with RecordingSession() as session:
        yield session


@pytest.fixture
def alice(server: LiveServer) -> Iterator[SumClient]:
    with SumClient(server.url) as sum_client:
        sum_client.authenticate("alice", "secret")
        yield sum_client


def test_the_readme_example(server: LiveServer) -> None:
    client = SumClient(server.url)  # server address given on init
    token = client.authenticate("alice", "secret")  # returns the access token, and keeps it
    digest = client.sum([1, 2, 3, 4])
    client.close()

    assert digest == "4a44dc15364204a80fe80e9039455cc1608281820fe2b24f1e5233ade6af1dd5"
    assert client.token == token
    assert token.count(".") == 2  # a JWT: header, claims, signature


def test_the_docstring_example(server: LiveServer) -> None:
    """SumClient's own example, run against this server: it shows exactly what it prints."""
    text = SumClient.__doc__.replace("http://127.0.0.1:8000", server.url)
    example = doctest.DocTestParser().get_doctest(text, {"SumClient": SumClient}, "", None, 0)
    runner = doctest.DocTestRunner()

    runner.run(example)

    assert runner.summarize(verbose=False) == doctest.TestResults(failed=0, attempted=1)


def test_one_connection_serves_every_call(server: LiveServer, monkeypatch) -> None:
    connects: list[tuple] = []
    connect = urllib3.util.connection.create_connection

    def counted(address, *args, **kwargs):
        connects.append(address)
        return connect(address, *args, **kwargs)

    # Where urllib3 opens every TCP connection it makes (a reconnect of a pooled one included).
    monkeypatch.setattr(urllib3.util.connection, "create_connection", counted)
    with SumClient(server.url) as sum_client:
        sum_client.authenticate("alice", "secret")
        for _ in range(3):
            assert sum_client.sum([1, 2, 3, 4]) == HASH_OF_10

    assert connects == [("127.0.0.1", server.port)]


@pytest.mark.parametrize(
    ("document", "total"),
    [
        ([1, 2, 3, 4], "10"),
        ({"a": 6, "b": 4}, "10"),
        ([[[2]]], "2"),
        ({"a": {"b": 4}, "c": -2}, "2"),
        ({"a": [-1, 1, "dark"]}, "0"),
        ([], "0"),
        ({}, "0"),
    ],
)
def test_the_assignments_examples(alice: SumClient, document: object, total: str) -> None:
    assert alice.sum(document) == sha256(total)


def test_sum_json_sends_the_text_for_the_server_to_parse(alice: SumClient) -> None:
    assert alice.sum_json(b'{"a": 6, "b": 4}') == HASH_OF_10
    assert alice.sum_json('{"b": 1, "b": 4, "a": 6}') == HASH_OF_10  # the last "b" counts


def test_decimals_and_huge_ints_are_summed_exactly(alice: SumClient) -> None:
    assert alice.sum([Decimal("0.1"), Decimal("0.2")]) == sha256("0.3")
    assert alice.sum([0.1, 0.2]) == sha256("0.3")  # each float as its shortest repr
    assert alice.sum([Decimal("1E+400"), 1]) == sha256("1" + "0" * 399 + "1")
    assert alice.sum([10**5000, -1]) == sha256("9" * 5000)


def test_the_token_is_reused_across_sums(server: LiveServer, recording: RecordingSession) -> None:
    sum_client = SumClient(server.url, session=recording)
    token = sum_client.authenticate("alice", "secret")

    assert sum_client.sum([1, 2, 3, 4]) == HASH_OF_10
    assert sum_client.sum([[[2]]]) == sha256("2")

    assert sum_client.token == token
    assert recording.calls == [("/auth", 200), ("/sum", 200), ("/sum", 200)]


def test_an_expired_token_is_renewed_with_the_kept_credentials(
    recording: RecordingSession,
) -> None:
    with LiveServer(env={"SUMSERVICE_ACCESS_TOKEN_LIFETIME": "2"}) as short_lived:
        sum_client = SumClient(short_lived.url, session=recording)
        first_token = sum_client.authenticate("alice", "secret")
        assert sum_client.sum([1, 2, 3, 4]) == HASH_OF_10

        time.sleep(3)

        assert sum_client.sum([1, 2, 3, 4]) == HASH_OF_10
        assert sum_client.token != first_token
        assert recording.calls == [
            ("/auth", 200),
            ("/sum", 200),
            ("/sum", 401),
            ("/auth", 200),
            ("/sum", 200),
        ]

        # Without the credentials, an expired token is an error the caller sees.
        with (
            SumClient(short_lived.url, token=first_token) as token_only,
            pytest.raises(AuthenticationError) as caught,
        ):
            token_only.sum([1])
        assert caught.value.status_code == 401


def test_a_bad_token_raises_authentication_error_with_the_servers_message(
    server: LiveServer,
) -> None:
    answer = requests.post(
        f"{server.url}/sum", data=b"[1]", headers={"Authorization": "Bearer not-a-token"}
    )

    with (
        SumClient(server.url, token="not-a-token") as sum_client,
        pytest.raises(AuthenticationError) as caught,
    ):
        sum_client.sum([1])

    assert caught.value.status_code == 401
    assert caught.value.detail == answer.json()["detail"]


def test_an_empty_username_raises_bad_request_naming_the_field(server: LiveServer) -> None:
    with SumClient(server.url) as sum_client, pytest.raises(BadRequestError) as caught:
        sum_client.authenticate("", "secret")

    assert caught.value.status_code == 400
    assert caught.value.detail == "username: This field may not be blank."
    assert str(caught.value).endswith(": username: This field may not be blank.")
    assert sum_client.token is None


def servers_detail(server: LiveServer, token: str, body: bytes) -> str:
    """What the server itself says to this body, asked without the client."""
    return post_sum(server, body, token).json()["detail"]


def test_invalid_json_raises_bad_request_400(server: LiveServer, alice: SumClient) -> None:
    assert alice.token is not None
    body = b'{"a": [1, 2'

    with pytest.raises(BadRequestError) as caught:
        alice.sum_json(body)

    assert caught.value.status_code == 400
    assert caught.value.detail == servers_detail(server, alice.token, body)


def test_a_number_over_10000_characters_raises_bad_request_422(
    server: LiveServer, alice: SumClient
) -> None:
    assert alice.token is not None
    body = b"[" + b"9" * 10_001 + b"]"

    with pytest.raises(BadRequestError) as caught:
        alice.sum_json(body)

    assert caught.value.status_code == 422
    assert caught.value.detail == servers_detail(server, alice.token, body)


def test_a_body_over_the_size_limit_raises_bad_request_413(alice: SumClient) -> None:
    body = b" " * (10 * 1024 * 1024) + b"[1]"  # valid JSON, 3 bytes over 10 MiB

    with pytest.raises(BadRequestError) as caught:
        alice.sum_json(body)

    assert caught.value.status_code == 413


def run_cli(url: str, *arguments: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "sumclient", "--url", url, *arguments],
        input=stdin,
        capture_output=True,
        cwd=ROOT,
        env={**os.environ, "SUMCLIENT_PASSWORD": "secret"},
        timeout=60,
    )


def test_the_command_line_sums_a_file(server: LiveServer, tmp_path: Path) -> None:
    document = tmp_path / "document.json"
    document.write_bytes(b'{"a": {"b": 4}, "c": -2}\n')

    done = run_cli(server.url, "--username", "alice", "sum", str(document))

    assert (done.returncode, done.stdout, done.stderr) == (0, f"{sha256('2')}\n".encode(), b"")


def test_the_command_line_sums_standard_input(server: LiveServer) -> None:
    done = run_cli(server.url, "--username", "alice", "sum", "-", stdin=b"[1, 2, 3, 4]")

    assert (done.returncode, done.stdout, done.stderr) == (0, f"{HASH_OF_10}\n".encode(), b"")


def test_the_command_line_reports_a_refusal_in_one_line(server: LiveServer) -> None:
    done = run_cli(server.url, "--username", "alice", "sum", "-", stdin=b"[1, 2")

    assert done.returncode == 1
    assert done.stdout == b""
    assert done.stderr.startswith(b"sumclient: error: the server refused the request (400 ")
    assert done.stderr.count(b"\n") == 1
