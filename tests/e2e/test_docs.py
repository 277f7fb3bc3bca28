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
            assert "in a browser" not in response.json()["detail"]
        response = requests.get(server.url + "/openapi.json", timeout=10)
        assert response.status_code == 200
        assert "/sum" in response.json()["paths"]
        # The browsable API's pages link to no page that is not served.
        assert 'href="/docs/"' not in browsable_page(server, "/sum")


def test_the_browsable_api_links_to_the_docs(server: LiveServer) -> None:
    assert 'href="/docs/"' in browsable_page(server, "/sum")


def browsable_page(server: LiveServer, path: str) -> str:
    response = requests.get(server.url + path, headers={"Accept": "text/html"}, timeout=10)
    assert response.headers["Content-Type"].startswith("text/html")
    return response.text
