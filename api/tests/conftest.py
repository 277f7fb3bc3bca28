from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

from api import summing
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


@pytest.fixture(scope="module", params=["kernel", "python"])
def summing_backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """Runs a module's tests once with the compiled kernel and once with the pure-Python path
    (the reference, and the fallback where the kernel is not built). The kernel must be built
    here: ./test.sh builds it (scripts/build_kernel.py)."""
    if request.param == "kernel":
        assert summing.kernel is not None, "the summing kernel is not built: run ./test.sh"
        yield "kernel"
        return
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(summing, "kernel", None)
        assert summing.backend() == "python"
        yield "python"
