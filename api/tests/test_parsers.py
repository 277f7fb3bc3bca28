"""/sum's body parser hands over the body in place, so the kernel reads it uncopied and DRF's
reference cycles cannot keep the bytes."""

from __future__ import annotations

import io

import pytest
from django.http.request import RawPostDataException
from django.test import Client, RequestFactory
from rest_framework.request import Request

from api.parsers import RECEIVED_BODY, RawJSONParser
from api.tests.utils import post_sum

# --- /sum: the body in place, and let go of ------------------------------------------------------


def test_the_body_is_handed_over_unparsed_and_read_only() -> None:
    body = RawJSONParser().parse(io.BytesIO(b"[1, 2]"))
    assert isinstance(body, memoryview)
    assert body.readonly
    assert body == b"[1, 2]"


def test_the_body_the_server_received_is_handed_over_as_it_is() -> None:
    """sumservice.asgi offers the buffer it received the body into: that very view, unread
    from the stream, is what the summing gets."""
    received = memoryview(bytearray(b"[1, 2]")).toreadonly()
    django_request = RequestFactory().post("/sum", b"[1, 2]", content_type="application/json")
    django_request.META[RECEIVED_BODY] = received
    stream = io.BytesIO(b"[1, 2]")
    body = RawJSONParser().parse(stream, parser_context={"request": Request(django_request)})
    assert body is received
    assert stream.tell() == 0


def test_the_view_leaves_no_body_on_the_request(client: Client, token: str) -> None:
    response = post_sum(client, b"[1, 2]", token)
    assert response.json()["sum"] == "3"
    request = response.renderer_context["request"]
    # What DRF kept of the body is a view the summing view released, and Django, read as a
    # stream, never kept the bytes either.
    with pytest.raises(ValueError, match="released"):
        request.data.tobytes()
    with pytest.raises(RawPostDataException):
        _ = request.body
