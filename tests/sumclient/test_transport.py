"""Real sockets on 127.0.0.1: a server that is not there, and one that never answers."""

from __future__ import annotations

import http.server
import re
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from sumclient import (
    AuthenticationError,
    BadRequestError,
    ServerError,
    SumClient,
    TransportError,
    UnexpectedResponseError,
)


@pytest.fixture
def closed_port() -> int:
    """A loopback port that nothing listens on: connecting to it is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A loopback server that takes connections (into the listen backlog) and never answers."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"


def test_an_unreachable_server_raises_transport_error(closed_port: int) -> None:
    url = f"http://127.0.0.1:{closed_port}"

    with SumClient(url) as sum_client, pytest.raises(TransportError) as caught:
        sum_client.authenticate("alice", "secret")

    assert re.fullmatch(
        rf"cannot reach {url}/auth: \[Errno \d+\] Connection refused", str(caught.value)
    )
    assert isinstance(caught.value.__cause__, requests.ConnectionError)
    # No answer, and the request that could not be delivered.
    assert not isinstance(caught.value, UnexpectedResponseError)
    assert caught.value.response is None and caught.value.status_code is None
    assert caught.value.request.url == f"{url}/auth"


def test_a_server_that_never_answers_times_out(silent_server: str) -> None:
    started = time.monotonic()

    with (
        SumClient(silent_server, token="t", timeout=0.2) as sum_client,
        pytest.raises(TransportError) as caught,
    ):
        sum_client.sum([1])

    assert time.monotonic() - started < 5
    assert str(caught.value) == f"timed out talking to {silent_server}/sum (timeout: 0.2 s)"
    assert isinstance(caught.value.__cause__, requests.Timeout)
    assert caught.value.response is None
    assert caught.value.request.url == f"{silent_server}/sum"


@pytest.fixture
def breaking_server() -> Iterator[str]:
    """A loopback server that answers 200 with a body of 100 bytes, sends 5 and hangs up."""
    with socket.create_server(("127.0.0.1", 0)) as server:

        def answer() -> None:
            connection, _ = server.accept()
            with connection:
                # The whole request read first: closed with some of it unread, the connection
                # would be reset (RST), and the client see that rather than the short answer.
                received = b""
                while b"\r\n\r\n" not in received:
                    received += connection.recv(65536)
                head, _, body = received.partition(b"\r\n\r\n")
                length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
                while len(body) < length:
                    body += connection.recv(65536)
                connection.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"Content-Length: 100\r\n\r\n[1, 2"
                )

        thread = threading.Thread(target=answer)
        thread.start()
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
        thread.join(timeout=5)


def test_an_answer_that_breaks_off_raises_transport_error_with_its_status(
    breaking_server: str,
) -> None:
    with (
        SumClient(breaking_server, token="t", timeout=5) as sum_client,
        pytest.raises(TransportError) as caught,
    ):
        sum_client.sum([1])

    assert str(caught.value).startswith(f"the answer from {breaking_server}/sum broke off (200): ")
    assert "IncompleteRead" in str(caught.value)
    assert not isinstance(caught.value, UnexpectedResponseError)
    assert caught.value.status_code == 200 and caught.value.response is None
    assert caught.value.request.url == f"{breaking_server}/sum"


@pytest.fixture
def failing_server(request: pytest.FixtureRequest) -> Iterator[tuple[str, list[str], int]]:
    """A loopback HTTP server that answers every POST with the status the test is parametrized
    with and a JSON message; its URL, each request's path, and the status."""
    paths: list[str] = []
    status = request.param

    class Unavailable(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            self.rfile.read(int(self.headers["Content-Length"]))
            paths.append(self.path)
            body = b'{"detail": "Try again later"}'
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), Unavailable) as server:
        thread = threading.Thread(target=server.serve_forever)
        thread.start()
        yield f"http://127.0.0.1:{server.server_address[1]}", paths, status
        server.shutdown()
        thread.join(timeout=5)


@pytest.mark.parametrize(
    ("failing_server", "error_class"),
    [(503, ServerError), (429, BadRequestError), (401, AuthenticationError)],
    indirect=["failing_server"],
)
def test_a_session_that_retries_on_a_status_and_gives_up_raises_the_statuss_error(
    failing_server: tuple[str, list[str], int], error_class: type
) -> None:
    url, paths, status = failing_server
    retrying = Retry(total=2, status_forcelist=[status], allowed_methods=None, backoff_factor=0)
    with requests.Session() as session:
        session.mount("http://", HTTPAdapter(max_retries=retrying))
        with pytest.raises(error_class) as caught:
            SumClient(url, session=session).authenticate("alice", "secret")

    assert str(caught.value) == (
        f"the server answered every try with an error ({url}/auth):"
        f" too many {status} error responses"
    )
    assert caught.value.status_code == status
    assert paths == ["/auth"] * 3
    assert caught.value.request.url == f"{url}/auth"


def test_a_backslash_ends_the_authority_in_messages_as_in_the_connection(
    closed_port: int,
) -> None:
    """urllib3 connects to the host before a backslash: what is after it is no password."""
    url = f"http://127.0.0.1:{closed_port}\\@elsewhere.test"

    with SumClient(url) as sum_client, pytest.raises(TransportError) as caught:
        sum_client.authenticate("alice", "secret")

    assert str(caught.value).startswith(f"cannot reach {url}/auth: ")
