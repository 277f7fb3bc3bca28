"""/sum's body parser hands over the body in place, so the kernel reads it uncopied and DRF's
reference cycles cannot keep the bytes; the JSON parser of the other endpoints parses it in place,
as DRF's own would."""

from __future__ import annotations

import io

import pytest
from django.http.request import RawPostDataException
from django.test import Client, RequestFactory
from rest_framework.exceptions import ParseError
from rest_framework.request import Request

from api.parsers import RECEIVED_BODY, JSONParser, RawJSONParser
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


# --- /auth and the rest: DRF's JSON parsing, of the body in place -----------------------------


def drf_request(body: bytes, content_type: str = "application/json") -> Request:
    # generic(): post() would re-encode the bytes in the charset the content type names.
    django_request = RequestFactory().generic("POST", "/auth", body, content_type=content_type)
    return Request(django_request, parsers=[JSONParser()])


def test_json_is_parsed_from_the_body_the_server_received_without_reading_the_stream() -> None:
    request = drf_request(b'{"a": [1, 2.5]}')
    request.META[RECEIVED_BODY] = memoryview(bytearray(b'{"a": [1, 2.5]}')).toreadonly()
    stream = io.BytesIO(b"{}")
    assert JSONParser().parse(stream, parser_context={"request": request}) == {"a": [1, 2.5]}
    assert stream.tell() == 0
    assert request.body == b'{"a": [1, 2.5]}'  # Django's stream, still unread


def test_json_is_parsed_from_the_request_and_the_body_stays_readable() -> None:
    request = drf_request(b'{"a": 1}')
    assert request.data == {"a": 1}
    assert request.body == b'{"a": 1}'


def test_json_is_decoded_with_the_charset_the_request_names() -> None:
    body = '{"username": "åsa"}'.encode("utf-16")
    assert drf_request(body, "application/json; charset=utf-16").data == {"username": "åsa"}


@pytest.mark.parametrize(
    ("body", "content_type", "detail"),
    [
        (b'{"a": NaN}', "application/json", "JSON parse error - Out of range float values"),
        (b'{"a": 1', "application/json", "JSON parse error - Expecting"),
        (b'"\xff"', "application/json", "JSON parse error - 'utf-8' codec can't decode byte 0xff"),
        (b"{}", "application/json; charset=bz2_codec", 'Unsupported charset "bz2_codec"'),
        (b"[" * 5_000, "application/json", "JSON parse error - the document is nested too deeply."),
    ],
)
def test_json_that_cannot_be_parsed_is_a_parse_error(
    body: bytes, content_type: str, detail: str
) -> None:
    with pytest.raises(ParseError) as refused:
        _ = drf_request(body, content_type).data
    assert str(refused.value.detail).startswith(detail)
