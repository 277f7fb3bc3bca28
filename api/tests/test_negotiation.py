"""Content negotiation: the common Accept headers get at once what DRF's algorithm gives."""

from __future__ import annotations

import gzip

import pytest
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework.test import APIRequestFactory

from api.negotiation import ContentNegotiation

# --- content negotiation ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "query"),
    [
        (None, ""),
        ("*/*", ""),
        ("application/json", ""),
        ("text/html", ""),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", ""),
        ("application/json; indent=4", ""),
        ("*/*", "format=api"),
        ("*/*", "format=json"),
        ("*/*", "x=1"),
    ],
)
def test_negotiation_agrees_with_drf(accept: str | None, query: str) -> None:
    factory = APIRequestFactory()
    headers = {"HTTP_ACCEPT": accept} if accept is not None else {}
    from rest_framework.request import Request

    request = Request(factory.get("/sum?" + query if query else "/sum", **headers))
    renderers = [JSONRenderer(), BrowsableAPIRenderer()]
    ours = ContentNegotiation().select_renderer(request, renderers)
    drf = DefaultContentNegotiation().select_renderer(request, renderers)
    assert (type(ours[0]), ours[1]) == (type(drf[0]), drf[1])


@pytest.mark.parametrize("path", ["/sum", "/auth"])
def test_a_compressed_body_is_415_with_the_coding_accepted(client, token, path: str) -> None:
    """Not a 400 saying the bytes are not UTF-8: the coding is what is wrong (RFC 9110 8.4.1)."""
    body = gzip.compress(b'{"username": "alice", "password": "secret"}')
    response = client.post(
        path,
        body,
        content_type="application/json",
        HTTP_CONTENT_ENCODING="gzip",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert response.status_code == 415
    assert response["Accept-Encoding"] == "identity"
    assert "Content-Encoding" in response.json()["detail"]


def test_the_identity_coding_is_no_coding(client, token) -> None:
    response = client.post(
        "/sum",
        b"[1, 2]",
        content_type="application/json",
        HTTP_CONTENT_ENCODING="identity",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert response.status_code == 200 and response.json()["sum"] == "3"


@pytest.mark.parametrize("path", ["/sum", "/auth"])
@pytest.mark.parametrize("content_type", ["*/*", "application/*", "*/json; charset=utf-8"])
def test_a_wildcard_content_type_is_415(client, token, path: str, content_type: str) -> None:
    """DRF would match it against its JSON parser and sum (or issue a token for) the body."""
    response = client.post(
        path,
        b'{"username": "alice", "password": "secret"}',
        content_type=content_type,
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert response.status_code == 415
    assert response.json() == {
        "detail": f'A body has one media type, not "{content_type}": send application/json.'
    }


@pytest.mark.parametrize("path", ["/sum", "/auth", "/healthz"])
def test_a_format_no_renderer_has_is_a_404_naming_the_formats(client, path: str) -> None:
    response = client.post(path + "?format=xml", "[1]", content_type="application/json")
    assert response.status_code == 404
    assert response.json() == {"detail": "No answer format 'xml': ?format= takes json or api."}


def test_the_schema_names_its_one_format_once(client) -> None:
    response = client.get("/openapi.json?format=xml")
    assert response.json() == {"detail": "No answer format 'xml': ?format= takes json."}


def test_an_accept_header_nothing_satisfies_is_a_406(client) -> None:
    response = client.post("/sum", "[1]", content_type="application/json", HTTP_ACCEPT="text/plain")
    assert response.status_code == 406
    assert response.json() == {"detail": "Could not satisfy the request Accept header."}
