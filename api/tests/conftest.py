from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from django.test import Client

from api.tokens import token_backend

ISSUER_AND_AUDIENCE = {"iss": "http://127.0.0.1:8000", "aud": "sumservice"}


@pytest.fixture
def client() -> Client:
    return Client()


@pytest.fixture
def token(client: Client) -> str:
    response = client.post(
        "/auth", {"username": "alice", "password": "secret"}, content_type="application/json"
    )
    assert response.status_code == 200, response.content
    return response.json()["access_token"]


def signed_token(claims: dict[str, Any] | None = None, **header: Any) -> str:
    """A token signed with the service's current key, with claims valid unless overridden."""
    key = token_backend().keyring.current
    now = int(time.time())
    payload = {
        **ISSUER_AND_AUDIENCE,
        "sub": "alice",
        "iat": now,
        "exp": now + 3600,
        "jti": "a1",
        "token_type": "access",
        **(claims or {}),
    }
    return jwt.encode(
        payload, key.signer, algorithm=key.algorithm, headers={"kid": key.kid, **header}
    )
