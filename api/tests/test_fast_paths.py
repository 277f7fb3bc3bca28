"""The shortcuts taken for speed give the answers of the paths they short-cut.

- summing: the flat-array path (C-made ints) and the cyclic collector paused while parsing;
- authentication: a token verified once is recognised again, its time claims checked each time;
- content negotiation: the common Accept headers are answered as DRF's algorithm would;
- /sum: the body is not left on DRF's request, where reference cycles would keep it.
"""

from __future__ import annotations

import contextlib
import gc
import io
import sys
import time
from datetime import UTC
from fractions import Fraction
from unittest import mock

import pytest
from django.conf import settings as django_settings
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework.test import APIRequestFactory

from api import authentication, summing
from api.authentication import BearerTokenAuthentication
from api.negotiation import ContentNegotiation
from api.parsers import RawBody, RawJSONParser
from api.summing import NumberTooLargeError, canonical_sum
from api.tests.test_summing import decimal_literals, json_texts, oracle_text, oracle_total
from api.tokens import token_backend
from tests.forge import DROP, Forger


def signed_token(claims: dict | None = None) -> str:
    """A token the service accepts, signed with its current key, unless `claims` say otherwise."""
    jwt_settings = django_settings.SIMPLE_JWT
    forger = Forger(
        token_backend().keyring.current, jwt_settings["ISSUER"], jwt_settings["AUDIENCE"]
    )
    return forger.token(**(claims or {}))


# --- summing: the flat-array path ------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ("[]", "0"),
        (" \n[1, 2, 3]\t", "6"),
        ("[true, false, null, 1, 0, -0, 2]", "3"),
        ("[true, true, true]", "0"),
        ("[1.5, null, 2, false, -0.5e1]", "-1.5"),
        ("[0, 0.0, -0]", "0"),
        ("[12345678901234567890123, 1]", "12345678901234567890124"),
    ],
)
def test_flat_arrays(document: str, expected: str) -> None:
    assert summing._flat_array_sum(document, 10_000, 10_000) is not None
    assert canonical_sum(document) == expected


@pytest.mark.parametrize(
    "document",
    ['["1", 2]', '[{"a": 1}]', "[[1], 2]", "1", '{"a": [1]}', "[1] [2]"],
)
def test_other_shapes_take_the_general_path(document: str) -> None:
    assert summing._flat_array_sum(document, 10_000, 10_000) is None


@pytest.mark.parametrize("document", ["[1] 2", "[1,]", "[1 2]", "[NaN]", "[01]"])
def test_invalid_flat_arrays_are_refused(document: str) -> None:
    with pytest.raises(summing.InvalidDocumentError):
        canonical_sum(document)


def test_integer_longer_than_int_conversion_allows() -> None:
    digits = sys.get_int_max_str_digits() + 100
    document = "[" + "9" * digits + ", 1]"
    assert summing._flat_array_sum(document, 10_000, 10_000) is None
    assert canonical_sum(document) == "1" + "0" * digits


def test_small_length_limit_is_enforced_on_flat_arrays() -> None:
    with pytest.raises(NumberTooLargeError):
        canonical_sum("[123456, 1]", max_number_length=5)
    with pytest.raises(NumberTooLargeError):
        canonical_sum("[-0]", max_number_length=1)


@pytest.mark.parametrize("literal", ["1e10001", "1E+10001", "-2.5e-10001", "1e0010001"])
def test_exponent_limit_on_flat_arrays(literal: str) -> None:
    with pytest.raises(NumberTooLargeError):
        canonical_sum(f"[1, {literal}]")


@pytest.mark.parametrize("literal", ["1e10000", "1E-10000", "1e-0010000", "1e+09999"])
def test_exponent_at_the_limit_on_flat_arrays(literal: str) -> None:
    assert canonical_sum(f"[{literal}]") == oracle_text(Fraction(literal))


@given(
    st.lists(
        st.one_of(decimal_literals(), st.sampled_from(["true", "false", "null", "-0"])),
        max_size=40,
    ),
    st.sampled_from([",", ", ", " ,\n"]),
)
def test_flat_array_matches_the_oracle(items: list[str], separator: str) -> None:
    text = "[" + separator.join(items) + "]"
    assert canonical_sum(text) == oracle_text(oracle_total(text))


def test_many_chunks_with_a_huge_integer() -> None:
    items = ["1"] * (3 * summing._CHUNK) + ["9" * 4000] + ["-1"] * summing._CHUNK
    expected = oracle_text(sum(map(Fraction, items), Fraction(0)))
    assert canonical_sum("[" + ",".join(items) + "]") == expected


# --- summing: the collector is paused, then restored -----------------------------------------


@pytest.mark.parametrize("document", ["[1, 2]", '{"a": 1}', "[1,", "[1e99999]"])
def test_collector_state_is_restored(document: str) -> None:
    assert gc.isenabled()
    with contextlib.suppress(ValueError):
        canonical_sum(document)
    assert gc.isenabled()
    gc.disable()
    try:
        with contextlib.suppress(ValueError):
            canonical_sum(document)
        assert not gc.isenabled()
    finally:
        gc.enable()


# --- authentication: verified tokens -----------------------------------------------------------


@pytest.fixture
def verified(monkeypatch: pytest.MonkeyPatch) -> authentication.VerifiedTokens:
    cache = authentication.VerifiedTokens(4)
    monkeypatch.setattr(authentication.BearerTokenAuthentication, "verified", cache)
    return cache


def post_sum(client: Client, token: str):
    return client.post(
        "/sum", b"[1, 2]", content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
    )


def test_a_token_is_verified_once(client: Client, verified, monkeypatch) -> None:
    token = signed_token()
    assert post_sum(client, token).status_code == 200
    assert token.encode() in verified._tokens

    def no_second_verification(*args, **kwargs):
        raise AssertionError("verified again")

    monkeypatch.setattr(
        authentication.JWTStatelessUserAuthentication, "get_validated_token", no_second_verification
    )
    assert post_sum(client, token).status_code == 200


def test_a_cached_token_expires(client: Client, verified, monkeypatch) -> None:
    now = int(time.time())
    token = signed_token({"iat": now, "exp": now + 60})
    assert post_sum(client, token).status_code == 200
    monkeypatch.setattr(authentication.time, "time", lambda: now + 61)
    monkeypatch.setattr("jwt.api_jwt.datetime", FrozenDatetime.at(now + 61))
    response = post_sum(client, token)
    assert response.status_code == 401
    assert "invalid_token" in response["WWW-Authenticate"]
    assert token.encode() not in verified._tokens


def test_a_cached_token_is_not_valid_before_its_time(verified, monkeypatch) -> None:
    now = time.time()
    verified.put(b"t", FakeToken({"iat": now + 100, "exp": now + 200}))
    assert verified.get(b"t", leeway=0) is None
    verified.put(b"t", FakeToken({"iat": now + 100, "exp": now + 200}))
    assert verified.get(b"t", leeway=101) is not None


def test_tampered_and_unsigned_tokens_are_still_refused(client: Client, verified) -> None:
    token = signed_token()
    assert post_sum(client, token).status_code == 200
    header, payload, signature = token.split(".")
    tampered = f"{header}.{payload}.{signature[:-4]}AAAA"
    assert post_sum(client, tampered).status_code == 401
    assert post_sum(client, f"{header}.{payload}.").status_code == 401
    assert len(verified._tokens) == 1


def test_the_cache_is_bounded(verified) -> None:
    now = time.time()
    for i in range(10):
        verified.put(str(i).encode(), FakeToken({"iat": now, "exp": now + 60}))
    assert list(verified._tokens) == [b"6", b"7", b"8", b"9"]
    assert verified.get(b"6", leeway=0) is not None
    verified.put(b"10", FakeToken({"iat": now, "exp": now + 60}))
    assert b"7" not in verified._tokens and b"6" in verified._tokens


def test_size_zero_turns_the_cache_off(client: Client, monkeypatch) -> None:
    cache = authentication.VerifiedTokens(0)
    monkeypatch.setattr(authentication.BearerTokenAuthentication, "verified", cache)
    assert post_sum(client, signed_token()).status_code == 200
    assert not cache._tokens


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


# --- content negotiation ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "query"),
    [
        (None, ""),
        ("*/*", ""),
        ("application/json", ""),
        ("text/html", ""),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", ""),
        ("application/json; indent=4", ""),
        ("*/*", "format=api"),
        ("*/*", "format=json"),
        ("*/*", "x=1"),
    ],
)
def test_negotiation_agrees_with_drf(accept: str | None, query: str) -> None:
    factory = APIRequestFactory()
    headers = {"HTTP_ACCEPT": accept} if accept is not None else {}
    from rest_framework.request import Request

    request = Request(factory.get("/sum?" + query if query else "/sum", **headers))
    renderers = [JSONRenderer(), BrowsableAPIRenderer()]
    ours = ContentNegotiation().select_renderer(request, renderers)
    drf = DefaultContentNegotiation().select_renderer(request, renderers)
    assert (type(ours[0]), ours[1]) == (type(drf[0]), drf[1])


# --- summing: long flat arrays in pieces, the general path in batches -------------------------
# Pieces and batches tiny, so that small documents cross many of their boundaries.


def outcome(text: str) -> str:
    """The answer, or the error's type and message."""
    try:
        return canonical_sum(text)
    except ValueError as error:
        return f"{type(error).__name__}: {error}"


def tiny_pieces_and_batches():
    return mock.patch.multiple(summing, _PIECE=4, _BATCH=2)


HUGE = "9" * 5000  # past int()'s digit limit: the piece falls back to the whole text
flat_items = st.one_of(
    decimal_literals(), st.sampled_from(["true", "false", "null", "-0", "1e10001", HUGE])
)


@settings(max_examples=300)
@given(
    st.lists(flat_items, max_size=25),
    st.lists(st.sampled_from([",", ", ", " ,\n", "\t,"]), min_size=1),
    st.sampled_from(["", " ", "\n  "]),
)
def test_flat_arrays_in_pieces_answer_as_whole(items, separators, space) -> None:
    text = (
        space
        + "["
        + "".join(
            item + (separators[i % len(separators)] if i < len(items) - 1 else "")
            for i, item in enumerate(items)
        )
        + "]"
        + space
    )
    with tiny_pieces_and_batches():
        in_pieces = outcome(text)
    assert in_pieces == outcome(text)
    if "1e10001" not in items and HUGE not in items:  # the oracle's Fraction reads neither
        assert in_pieces == oracle_text(oracle_total(text))


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(json_texts(), st.data())
def test_pieces_and_batches_refuse_as_whole(text: str, data: st.DataObject) -> None:
    """Mutated documents (invalid ones among them, and ones over a limit): the same answer or
    the same error, with the same message, as with pieces and batches of the usual size."""
    position = data.draw(st.integers(0, len(text)))
    replacement = data.draw(st.sampled_from(["", ",", "]", "[", "}", '"', " ", "1e10001", ", ,"]))
    mutated = text[:position] + replacement + text[position + data.draw(st.integers(0, 1)) :]
    with tiny_pieces_and_batches():
        small = outcome(mutated)
    assert small == outcome(mutated)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(json_texts())
def test_batches_match_the_oracle(text: str) -> None:
    with tiny_pieces_and_batches():
        assert canonical_sum(text) == oracle_text(oracle_total(text))


@pytest.mark.parametrize(
    ("document", "error"),
    [
        ("[1e10001, 2, 3, 4, 5, 6, 7, x]", summing.InvalidDocumentError),
        ('[{"a": 1e10001}, {"b": 2}, {"c": 3}, {"d": 4}, x]', summing.InvalidDocumentError),
        ('[{"a": 1e10001}, {"b": 2}, {"c": 3}, {"d": 4}]', NumberTooLargeError),
        ("[1, 2, 3, 4, 5, 6, 7, 8, 1e10001]", NumberTooLargeError),
        ("[1, 2, 3, 4, 5, 6, , 8, 9]", summing.InvalidDocumentError),
        ("[1, 2, 3, 4, 5, 6, 7, 8, 9] x", summing.InvalidDocumentError),
        ("[1, 2, 3, 4, 5, 6, 7, 8, 9]]", summing.InvalidDocumentError),
    ],
)
def test_invalid_json_answers_before_a_limit(document: str, error: type) -> None:
    with tiny_pieces_and_batches(), pytest.raises(error):
        canonical_sum(document)


def test_repeated_key_after_batches_were_added() -> None:
    document = '[{"x": 1}, {"x": 2}, {"x": 3}, {"x": 4}, {"a": 10, "a": 20}, 5]'
    with tiny_pieces_and_batches():
        assert canonical_sum(document) == "35"


# --- /sum lets go of the body ------------------------------------------------------------------


def test_the_body_is_taken_once() -> None:
    body = RawJSONParser().parse(io.BytesIO(b"[1, 2]"))
    assert body.take() == b"[1, 2]"
    assert body.take() == b""


def test_the_view_leaves_no_body_on_the_request(client: Client, monkeypatch) -> None:
    bodies: list[RawBody] = []
    original = RawBody.take

    def take(self: RawBody) -> bytes:
        bodies.append(self)
        return original(self)

    monkeypatch.setattr(RawBody, "take", take)
    assert post_sum(client, signed_token()).json()["sum"] == "3"
    assert [body._content for body in bodies] == [b""]


# --- /sum: the token cache keeps only tokens that name a user ---------------------------------


def test_a_token_without_a_subject_is_never_recognised(client: Client, verified) -> None:
    token = signed_token({"sub": DROP})
    for _ in range(2):
        assert post_sum(client, token).status_code == 401
    assert not verified._tokens


def test_keys_read_again_forget_the_tokens_verified(client: Client, verified) -> None:
    from api.tokens import reload_token_backend

    assert post_sum(client, signed_token()).status_code == 200
    assert verified._tokens
    reload_token_backend()
    BearerTokenAuthentication.verified_tokens()
    assert not verified._tokens
