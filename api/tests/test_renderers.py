"""The browsable API's pages (api/renderers.py, rest_framework/api.html): forms, token box."""

from __future__ import annotations

import hashlib
import re

from django.test import Client

HTML = {"HTTP_ACCEPT": "text/html"}
POST_FORM = 'id="post-generic-content-form"'
TOKEN_BOX = 'id="bearer-token-form"'
HOW_TO = 'id="how-to"'


def page(response) -> str:
    assert response["Content-Type"].startswith("text/html")
    return response.content.decode()


def test_sum_first_view_shows_the_form_and_the_token_box_without_a_token(client: Client) -> None:
    response = client.get("/sum", **HTML)
    assert response.status_code == 405  # the status an API client gets, unchanged
    html = page(response)
    assert POST_FORM in html
    assert TOKEN_BOX in html
    assert HOW_TO in html
    assert '<script src="/static/api/bearer-token.js">' in html
    assert client.get("/static/api/bearer-token.js").status_code == 200


def test_sum_first_view_with_a_bad_token_is_the_same_page_not_a_500(client: Client) -> None:
    response = client.get("/sum", HTTP_AUTHORIZATION="Bearer not-a-token", **HTML)
    assert response.status_code == 405
    html = page(response)
    assert POST_FORM in html
    assert TOKEN_BOX in html


def test_a_401_page_keeps_the_form_to_try_again(client: Client) -> None:
    response = client.post("/sum", "[1]", content_type="application/json", **HTML)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="sumservice"'
    html = page(response)
    assert "Authentication credentials were not provided." in html
    assert POST_FORM in html
    assert HOW_TO not in html


def test_a_sum_page_shows_the_answer(client: Client, token: str) -> None:
    response = client.post(
        "/sum", "[1, 2, 3]", content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    assert response.json()["sum"] == "6"
    response = client.post(
        "/sum",
        "[1, 2, 3]",
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
        **HTML,
    )
    assert response.status_code == 200
    html = page(response)
    assert hashlib.sha256(b"6").hexdigest() in html
    assert POST_FORM in html


def test_auth_first_view_shows_its_form_and_no_token_box(client: Client) -> None:
    response = client.get("/auth", **HTML)
    assert response.status_code == 405
    html = page(response)
    assert POST_FORM in html
    assert HOW_TO in html
    assert TOKEN_BOX not in html


def test_a_token_page_offers_to_keep_the_token_for_sum(client: Client) -> None:
    response = client.post(
        "/auth",
        {"username": "alice", "password": "secret"},
        content_type="application/json",
        **HTML,
    )
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    html = page(response)
    assert re.search(r'id="keep-token"\s+data-bearer-token="ey', html)


def test_pages_without_a_bearer_endpoint_have_no_token_box(client: Client) -> None:
    response = client.get("/healthz", **HTML)
    assert response.status_code == 200
    html = page(response)
    assert TOKEN_BOX not in html
    assert HOW_TO not in html
