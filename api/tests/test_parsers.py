"""/sum's body parser hands over the stream, so DRF's reference cycles cannot keep the bytes."""

from __future__ import annotations

import io

import pytest
from django.http.request import RawPostDataException
from django.test import Client

from api.parsers import RawJSONParser
from api.tests.utils import post_sum

# --- /sum lets go of the body ------------------------------------------------------------------


def test_the_body_is_handed_over_unread() -> None:
    stream = io.BytesIO(b"[1, 2]")
    assert RawJSONParser().parse(stream) is stream
    assert stream.read() == b"[1, 2]"


def test_the_view_leaves_no_body_on_the_request(client: Client, token: str) -> None:
    response = post_sum(client, b"[1, 2]", token)
    assert response.json()["sum"] == "3"
    request = response.renderer_context["request"]
    # What DRF kept of the body is the stream the view has read to its end, and Django, read
    # as a stream, never kept the bytes either.
    assert request.data.read() == b""
    with pytest.raises(RawPostDataException):
        _ = request.body
