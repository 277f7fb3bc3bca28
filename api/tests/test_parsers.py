"""/sum's body parser hands the bytes over once, so DRF's reference cycles cannot keep them."""

from __future__ import annotations

import io

from django.test import Client

from api.parsers import RawBody, RawJSONParser
from api.tests.conftest import post_sum

# --- /sum lets go of the body ------------------------------------------------------------------


def test_the_body_is_taken_once() -> None:
    body = RawJSONParser().parse(io.BytesIO(b"[1, 2]"))
    assert body.take() == b"[1, 2]"
    assert body.take() == b""


def test_the_view_leaves_no_body_on_the_request(client: Client, token: str, monkeypatch) -> None:
    bodies: list[RawBody] = []
    original = RawBody.take

    def take(self: RawBody) -> bytes:
        bodies.append(self)
        return original(self)

    monkeypatch.setattr(RawBody, "take", take)
    assert post_sum(client, b"[1, 2]", token).json()["sum"] == "3"
    assert [body._content for body in bodies] == [b""]
