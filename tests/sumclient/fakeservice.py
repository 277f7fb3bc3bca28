"""A scripted stand-in for the service, mounted as the transport of a requests.Session."""

from __future__ import annotations

import io
import json
from http import HTTPStatus
from typing import Any

import requests
import urllib3
from requests.adapters import BaseAdapter, HTTPAdapter

BASE_URL = "http://sum.test"
# SHA-256 of "10", the hash the service gives for [1, 2, 3, 4].
HASH_OF_10 = "4a44dc15364204a80fe80e9039455cc1608281820fe2b24f1e5233ade6af1dd5"


class FakeService(BaseAdapter):
    """Answers each request with the next scripted reply, and records what was sent."""

    def __init__(self) -> None:
        super().__init__()
        self.replies: list[tuple[int, bytes, dict[str, str]] | Exception] = []
        self.sent: list[requests.PreparedRequest] = []
        self.timeouts: list[Any] = []
        self.closed = False

    def reply(
        self, status: int = 200, body: Any = None, *, raw: bytes | None = None, **headers: str
    ) -> None:
        """Script the next answer: ``body`` as JSON, or ``raw`` bytes as they are."""
        if raw is None:
            raw = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json")
        self.replies.append((status, raw, headers))

    def reply_token(self, token: str) -> None:
        self.reply(200, {"access_token": token, "token_type": "Bearer", "expires_in": 3600})

    def reply_hash(self, sha256: str = HASH_OF_10) -> None:
        self.reply(200, {"sha256": sha256, "sum": "10"})

    def fail_with(self, error: Exception) -> None:
        self.replies.append(error)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        self.sent.append(request)
        self.timeouts.append(kwargs["timeout"])
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        status, raw, headers = reply
        answer = urllib3.HTTPResponse(
            body=io.BytesIO(raw),
            headers=headers,
            status=status,
            reason=HTTPStatus(status).phrase,
            preload_content=False,
        )
        return HTTPAdapter().build_response(request, answer)

    def close(self) -> None:
        self.closed = True

    def paths(self) -> list[str]:
        return [request.path_url for request in self.sent]
