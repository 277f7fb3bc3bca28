"""Bearer authentication: a token verified once is recognised again by its bytes, its time
claims checked on every request; failures and subject-less tokens are never kept."""

from __future__ import annotations

import time
from datetime import UTC

import pytest
from django.conf import settings as django_settings
from django.test import Client

from api import authentication, tokens
from api.tests.utils import post_sum
from api.tokens import VerifiedTokens, reload_token_backend, token_backend
from tests.forge import DROP, Forger


def signed_token(claims: dict | None = None) -> str:
    """A token the service accepts, signed with its current key, unless `claims` say otherwise."""
    jwt_settings = django_settings.SIMPLE_JWT
    forger = Forger(
        token_backend().keyring.current, jwt_settings["ISSUER"], jwt_settings["AUDIENCE"]
    )
    return forger.token(**(claims or {}))


# --- authentication: verified tokens -----------------------------------------------------------


@pytest.fixture
def verified(monkeypatch: pytest.MonkeyPatch) -> VerifiedTokens:
    cache = VerifiedTokens(4)
    monkeypatch.setattr(token_backend(), "verified_tokens", cache)
    return cache


def no_second_verification(*args, **kwargs):
    raise AssertionError("verified again")


def test_a_token_is_verified_once(client: Client, verified, monkeypatch) -> None:
    token = signed_token()
    assert post_sum(client, b"[1, 2]", token).status_code == 200
    assert token.encode() in verified

    monkeypatch.setattr(
        authentication.JWTStatelessUserAuthentication, "get_validated_token", no_second_verification
    )
    assert post_sum(client, b"[1, 2]", token).status_code == 200


def test_a_cached_token_expires(client: Client, verified, monkeypatch) -> None:
    now = int(time.time())
    token = signed_token({"iat": now, "exp": now + 60})
    assert post_sum(client, b"[1, 2]", token).status_code == 200
    monkeypatch.setattr(tokens.time, "time", lambda: now + 61)
    monkeypatch.setattr("jwt.api_jwt.datetime", FrozenDatetime.at(now + 61))
    response = post_sum(client, b"[1, 2]", token)
    assert response.status_code == 401
    assert "invalid_token" in response["WWW-Authenticate"]
    assert token.encode() not in verified


def test_a_cached_token_is_not_valid_before_its_time(verified, monkeypatch) -> None:
    now = time.time()
    verified.put(b"t", FakeToken({"iat": now + 100, "exp": now + 200}))
    assert verified.get(b"t", leeway=0) is None
    verified.put(b"t", FakeToken({"iat": now + 100, "exp": now + 200}))
    assert verified.get(b"t", leeway=101) is not None


def test_tampered_and_unsigned_tokens_are_still_refused(client: Client, verified) -> None:
    token = signed_token()
    assert post_sum(client, b"[1, 2]", token).status_code == 200
    header, payload, signature = token.split(".")
    tampered = f"{header}.{payload}.{signature[:-4]}AAAA"
    assert post_sum(client, b"[1, 2]", tampered).status_code == 401
    assert post_sum(client, b"[1, 2]", f"{header}.{payload}.").status_code == 401
    assert len(verified) == 1


def test_the_cache_is_bounded(verified) -> None:
    now = time.time()
    for i in range(10):
        verified.put(str(i).encode(), FakeToken({"iat": now, "exp": now + 60}))
    assert len(verified) == 4
    assert [key for key in (b"5", b"6", b"7", b"8", b"9") if key in verified] == [
        b"6",
        b"7",
        b"8",
        b"9",
    ]
    assert verified.get(b"6", leeway=0) is not None
    verified.put(b"10", FakeToken({"iat": now, "exp": now + 60}))
    assert b"7" not in verified and b"6" in verified


def test_size_zero_turns_the_cache_off(client: Client, monkeypatch) -> None:
    cache = VerifiedTokens(0)
    monkeypatch.setattr(token_backend(), "verified_tokens", cache)
    assert post_sum(client, b"[1, 2]", signed_token()).status_code == 200
    assert not len(cache)


class FakeToken:
    def __init__(self, payload: dict) -> None:
        self.payload = payload


class FrozenDatetime:
    """datetime with now() fixed, for PyJWT's own expiry check."""

    @staticmethod
    def at(timestamp: float):
        from datetime import datetime

        class Frozen(datetime):
            @classmethod
            def now(cls, tz=None):
                return datetime.fromtimestamp(timestamp, tz or UTC)

        return Frozen


# --- /sum: a token that names no user is refused, and never cached ------------------------------


def test_a_token_without_a_subject_is_refused_and_never_cached(client: Client, verified) -> None:
    token = signed_token({"sub": DROP})
    for _ in range(2):
        assert post_sum(client, b"[1, 2]", token).status_code == 401
    assert not len(verified)


def test_keys_read_again_forget_the_tokens_verified(client: Client, monkeypatch) -> None:
    token = signed_token()
    assert post_sum(client, b"[1, 2]", token).status_code == 200
    assert token.encode() in token_backend().verified_tokens
    reload_token_backend()
    assert not len(token_backend().verified_tokens)
    # Verified again, with the keys read again: the one verification allowed here.
    verifications = []
    original = authentication.JWTStatelessUserAuthentication.get_validated_token

    def counted(self, raw_token):
        verifications.append(raw_token)
        return original(self, raw_token)

    monkeypatch.setattr(
        authentication.JWTStatelessUserAuthentication, "get_validated_token", counted
    )
    for _ in range(2):
        assert post_sum(client, b"[1, 2]", token).status_code == 200
    assert verifications == [token.encode()]
