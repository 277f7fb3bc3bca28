"""Middleware answers every page gets: frame protection."""

from __future__ import annotations

import pytest
from django.test import Client


@pytest.mark.parametrize("path", ["/sum", "/auth", "/docs/", "/healthz"])
def test_no_page_may_be_framed(client: Client, path: str) -> None:
    # The browsable API's HTML, and every other answer: another site cannot frame them.
    response = client.get(path, HTTP_ACCEPT="text/html")
    assert response["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
