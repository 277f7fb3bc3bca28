from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from api.tokens import token_backend
from tests.forge import Forger


@pytest.fixture
def client() -> Client:
    return Client()


def issue_token(client: Client, username: str = "alice") -> str:
    response = client.post(
        "/auth", {"username": username, "password": "secret"}, content_type="application/json"
    )
    assert response.status_code == 200, response.content
    return response.json()["access_token"]


def post_sum(client: Client, body: bytes | str, token: str | None, **extra: str):
    if token is not None:
        extra.setdefault("HTTP_AUTHORIZATION", f"Bearer {token}")
    extra.setdefault("content_type", "application/json")
    return client.post("/sum", body, **extra)


@pytest.fixture
def token(client: Client) -> str:
    return issue_token(client)


@pytest.fixture
def forger(settings: Any) -> Forger:
    """Makes tokens with the service's current key, issuer and audience (tests/forge.py)."""
    return Forger(
        token_backend().keyring.current,
        settings.SIMPLE_JWT["ISSUER"],
        settings.SIMPLE_JWT["AUDIENCE"],
    )


@pytest.fixture(autouse=True)
def fresh_cache(settings: Any, tmp_path) -> None:
    """Each test counts its requests from zero, in a cache of its own. (The SQLite-backed one
    gunicorn's workers share is tested where processes share it: test_throttling, tests/e2e.)"""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": str(tmp_path),
        }
    }
