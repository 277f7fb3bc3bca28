from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from api import summing
from api.tests.utils import issue_token
from api.throttling import SlidingWindowThrottle
from api.tokens import token_backend
from tests.forge import Forger


@pytest.fixture
def client() -> Client:
    return Client()


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


@pytest.fixture
def state_dir(settings: Any, tmp_path: Path) -> Iterator[Path]:
    """A state folder of the test's own (so its own keys) and a backend built afresh: the
    process's backend is cached, and would otherwise outlive the settings of another test."""
    settings.SUMSERVICE = {**settings.SUMSERVICE, "STATE_DIR": tmp_path}
    token_backend.cache_clear()
    yield tmp_path
    token_backend.cache_clear()


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


@pytest.fixture(autouse=True)
def rate_limit_cache_trusted(monkeypatch) -> None:
    """Each test starts with the rate limits' cache trusted, whatever a test before made this
    process think of it (after a failure it is left alone for a few seconds)."""
    monkeypatch.setattr(SlidingWindowThrottle, "cache_unusable_until", 0.0)
