"""The schema and docs pages as served by gunicorn, and the knob that turns the pages off."""

from __future__ import annotations

import requests

from tests.liveserver import LiveServer


def test_the_docs_pages_and_their_static_files_are_served(server: LiveServer) -> None:
    for path in ["/docs/", "/redoc/"]:
        response = requests.get(server.url + path, timeout=10)
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("text/html")
    # WhiteNoise serves the sidecar's files from the installed package: no collectstatic step.
    script = "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js"
    response = requests.get(server.url + script, timeout=10)
    assert response.status_code == 200
    assert "javascript" in response.headers["Content-Type"]
    assert b"SwaggerUIBundle" in response.content


def test_docs_off_hides_the_pages_but_not_the_schema() -> None:
    with LiveServer(env={"SUMSERVICE_DOCS": "false"}, workers=1) as server:
        for path in ["/docs/", "/redoc/"]:
            response = requests.get(server.url + path, timeout=10)
            assert response.status_code == 404
            assert response.json()["detail"].startswith(f"Not found: {path}.")
        response = requests.get(server.url + "/openapi.json", timeout=10)
        assert response.status_code == 200
        assert "/sum" in response.json()["paths"]
