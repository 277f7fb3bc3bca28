"""The middleware: the body size limits (BodySizeLimitMiddleware answers every 413: its message
is asserted here, and only its status elsewhere), and frame protection on every page."""

from __future__ import annotations

import pytest
from django.test import Client

MIB = 1024 * 1024


def post(client: Client, path: str, size: int):
    return client.generic("POST", path, b" " * size, content_type="application/json")


@pytest.mark.parametrize("path", ["/sum", "/auth"])
def test_a_body_over_the_service_limit_is_413_naming_its_length_and_the_limit(
    client: Client, path: str
) -> None:
    response = post(client, path, 10 * MIB + 1)
    assert response.status_code == 413
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "detail": "The request body is 10485761 bytes; the limit is 10485760 bytes."
    }


def test_a_body_over_its_views_own_limit_is_413_naming_that_limit(client: Client) -> None:
    # /auth names the smaller AUTH_MAX_BODY_BYTES (64 KiB).
    response = post(client, "/auth", 64 * 1024 + 1)
    assert response.status_code == 413
    assert response.json() == {
        "detail": "The request body is 65537 bytes; the limit is 65536 bytes."
    }


@pytest.mark.parametrize("path", ["/sum", "/auth", "/docs/", "/healthz"])
def test_no_page_may_be_framed(client: Client, path: str) -> None:
    # The browsable API's HTML, and every other answer: another site cannot frame them.
    response = client.get(path, HTTP_ACCEPT="text/html")
    assert response["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]


def test_refusals_made_before_the_view_may_not_be_framed_either(client: Client) -> None:
    """The service's 413 and the Host check's 400 come from middleware further out than the
    views: frame protection wraps them too."""
    for response in (
        post(client, "/sum", 10 * MIB + 1),
        client.get("/healthz", HTTP_HOST="evil.example"),
    ):
        assert response.status_code in (400, 413)
        assert response["X-Frame-Options"] == "DENY"
        assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
