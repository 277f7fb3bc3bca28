"""Helpers the service's in-process tests share (fixtures stay in conftest.py)."""

from __future__ import annotations

from typing import Any

from django.test import Client

from api.tokens import token_backend


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


def use_jwt_settings(settings: Any, **changes: Any) -> None:
    """Change SIMPLE_JWT for one test (pytest-django's `settings`), and build the backend anew."""
    settings.SIMPLE_JWT = {**settings.SIMPLE_JWT, **changes}
    token_backend.cache_clear()


def use_unreachable_redis(settings: Any) -> None:
    """The rate limits' cache: a Redis that refuses every connection."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
