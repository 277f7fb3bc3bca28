"""Clients for the serving tests: raw sockets that misbehave on purpose, and a probe that times
well-behaved requests meanwhile."""

from __future__ import annotations

import json
import socket
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import BinaryIO

import requests

from tests.liveserver import LiveServer
from tests.utils import get_token

_tokens: weakref.WeakKeyDictionary[LiveServer, str] = weakref.WeakKeyDictionary()


def token(server: LiveServer) -> str:
    """An access token from this server, asked for once: /auth is rate-limited per address."""
    if server not in _tokens:
        _tokens[server] = get_token(server)
    return _tokens[server]


def connect(server: LiveServer, timeout: float = 10) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=timeout)


def read_response(source: socket.socket | BinaryIO) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response with a Content-Length: its status, headers (lower-case) and body.
    To read several from one connection, pass one `sock.makefile("rb")` to every call."""
    stream = source.makefile("rb") if isinstance(source, socket.socket) else source
    status_line = stream.readline().decode("latin-1")
    if not status_line:
        raise ConnectionError("closed before a response")
    headers = {}
    while (line := stream.readline().decode("latin-1").strip()) != "":
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    body = stream.read(int(headers.get("content-length", "0")))
    return int(status_line.split()[1]), headers, body


def exchange(server: LiveServer, raw: bytes) -> tuple[int, dict[str, str], dict]:
    """Send raw bytes on a new connection; the response's status, headers and JSON body."""
    with connect(server) as sock:
        sock.sendall(raw)
        status, headers, body = read_response(sock)
    return status, headers, json.loads(body)


def sum_request(access_token: str, body: bytes = b"[1,2,3,4]", close: bool = False) -> bytes:
    extra = b"Connection: close\r\n" if close else b""
    return (
        b"POST /sum HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + f"Authorization: Bearer {access_token}\r\nContent-Length: {len(body)}\r\n".encode()
        + extra
        + b"\r\n"
        + body
    )


@dataclass
class Probe:
    """Small /sum requests, each on a new connection, one after the other, timed."""

    server: LiveServer
    access_token: str
    timeout: float = 10
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def run(self, seconds: float) -> Probe:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            started = time.monotonic()
            try:
                answer = requests.post(
                    self.server.url + "/sum",
                    data=b"[1,2,3,4]",
                    headers={
                        "Authorization": f"Bearer {self.access_token}",
                        "Content-Type": "application/json",
                    },
                    timeout=self.timeout,
                )
                if answer.status_code != 200 or answer.json()["sum"] != "10":
                    self.failures.append(f"{answer.status_code} {answer.text[:200]}")
            except requests.RequestException as error:
                self.failures.append(repr(error))
            self.latencies.append(time.monotonic() - started)
            time.sleep(0.02)
        return self

    def share_within(self, seconds: float) -> float:
        return sum(latency <= seconds for latency in self.latencies) / len(self.latencies)


class Tricklers:
    """Connections that send a request one byte a second, from one thread, until stopped.

    `head`: the bytes sent at once on connecting; then `trickle` goes out a byte at a time, on
    every connection in turn each second. Connections the server closes are counted."""

    def __init__(self, server: LiveServer, count: int, head: bytes, trickle: bytes) -> None:
        self.sockets = []
        for _ in range(count):
            sock = connect(server)
            sock.sendall(head)
            self.sockets.append(sock)
        self.trickle = trickle
        self.closed_by_server = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        position = 0
        while not self._stop.wait(1.0) and position < len(self.trickle):
            byte = self.trickle[position : position + 1]
            position += 1
            for sock in list(self.sockets):
                try:
                    sock.sendall(byte)
                except OSError:
                    self.sockets.remove(sock)
                    self.closed_by_server += 1

    def __enter__(self) -> Tricklers:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        for sock in self.sockets:
            sock.close()
