"""Django's error views (api/error_views.py): what never reaches a DRF view is answered in JSON
too, never an HTML page."""

from __future__ import annotations

from typing import Any

from django.test import Client

from api.error_views import HOST_NOT_SERVED
from api.views import HealthView


def test_unknown_path_is_json_404(client: Client) -> None:
    response = client.get("/nothing-here")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert "/nothing-here" in response.json()["detail"]


def test_a_404_points_to_the_browser_docs_only_where_they_are_served(
    client: Client, settings: Any
) -> None:
    assert "/docs/ shows it in a browser" in client.get("/").json()["detail"]
    settings.SUMSERVICE = {**settings.SUMSERVICE, "DOCS": False}
    assert "/docs/" not in client.get("/").json()["detail"]


def test_trailing_slash_is_not_redirected(client: Client) -> None:
    assert client.post("/sum/", "[1]", content_type="application/json").status_code == 404


def test_disallowed_host_is_json_400(client: Client) -> None:
    response = client.get("/healthz", HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    # The operator's setting to look at, not the Host sent.
    assert response.json() == {"detail": HOST_NOT_SERVED}
    assert "DJANGO_ALLOWED_HOSTS" in HOST_NOT_SERVED


def test_a_crash_is_json_500(monkeypatch) -> None:
    """A view that raises, through the URL configuration's handler500 as a server serves it."""

    def crash(self, request):
        raise RuntimeError("a bug")

    monkeypatch.setattr(HealthView, "get", crash)
    response = Client(raise_request_exception=False).get("/healthz")
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert response.content == b'{"detail": "Internal server error."}'
