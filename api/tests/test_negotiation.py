"""Content negotiation: the common Accept headers get at once what DRF's algorithm gives."""

from __future__ import annotations

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
