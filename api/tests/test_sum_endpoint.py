"""POST /sum through Django's test client: answers, and every row of the contract's /sum table."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.test import Client

from api.tests.conftest import signed_token
from api.tokens import token_backend

SUM_OF_10 = "4a44dc15364204a80fe80e9039455cc1608281820fe2b24f1e5233ade6af1dd5"


def post_sum(client: Client, body: bytes | str, token: str | None, **extra: str):
    if token is not None:
        extra.setdefault("HTTP_AUTHORIZATION", f"Bearer {token}")
    extra.setdefault("content_type", "application/json")
    return client.post("/sum", body, **extra)


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ("[1,2,3,4]", "10"),
        ('{"a":6,"b":4}', "10"),
        ("[[[2]]]", "2"),
        ('{"a":{"b":4},"c":-2}', "2"),
        ('{"a":[-1,1,"dark"]}', "0"),
        ('[-1,{"a":1, "b":"light"}]', "0"),
        ("[]", "0"),
        ("{}", "0"),
        ("[0.1, 0.2]", "0.3"),
        ("[12345678901234567890123, 1]", "12345678901234567890124"),
    ],
)
def test_answers_the_hash_of_the_canonical_sum(
    client: Client, token: str, document: str, expected: str
) -> None:
    response = post_sum(client, document, token)
    assert response.status_code == 200
    assert response.json() == {
        "sha256": hashlib.sha256(expected.encode()).hexdigest(),
        "sum": expected,
    }


def test_contract_example_hash(client: Client, token: str) -> None:
    assert post_sum(client, "[1,2,3,4]", token).json()["sha256"] == SUM_OF_10


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_scheme_word_in_any_case(client: Client, token: str, scheme: str) -> None:
    response = post_sum(client, "[1,2,3,4]", None, HTTP_AUTHORIZATION=f"{scheme} {token}")
    assert response.status_code == 200


def test_content_type_with_charset(client: Client, token: str) -> None:
    response = post_sum(client, "[1]", token, content_type="application/json; charset=utf-8")
    assert response.status_code == 200


# ---------------------------------------------------------------------------------------------
# 401: every way a request can fail to carry an acceptable token


def assert_401(response, invalid_token: bool) -> None:
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith('Bearer realm="sumservice"')
    assert ('error="invalid_token"' in response["WWW-Authenticate"]) is invalid_token
    assert response.json()["detail"]


def test_no_authorization_header(client: Client) -> None:
    response = post_sum(client, "[1]", None)
    assert_401(response, invalid_token=False)
    assert response.json() == {"detail": "Authentication credentials were not provided."}


@pytest.mark.parametrize("header", ["Basic YWxpY2U6c2VjcmV0", "Token abc", ""])
def test_another_scheme_or_no_token(client: Client, header: str) -> None:
    assert_401(post_sum(client, "[1]", None, HTTP_AUTHORIZATION=header), invalid_token=False)


@pytest.mark.parametrize("words", ["", " extra"])
def test_bearer_without_exactly_one_token(client: Client, token: str, words: str) -> None:
    header = f"Bearer{words and ' ' + token + words}"
    response = post_sum(client, "[1]", None, HTTP_AUTHORIZATION=header)
    assert_401(response, invalid_token=True)
    assert "Bearer <token>" in response.json()["detail"]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def tamper_payload(token: str, **changes: object) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    return f"{header}.{b64url(json.dumps(claims).encode())}.{signature}"


def hs256_with_public_key() -> str:
    """The algorithm-confusion attack: HS256 keyed with the verifier's public key bytes."""
    key = token_backend().keyring.current
    public_pem = key.verifier.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    now = int(time.time())
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT", "kid": key.kid}).encode())
    claims = {
        "sub": "mallory",
        "iat": now,
        "exp": now + 3600,
        "jti": "x",
        "token_type": "access",
        "iss": "http://127.0.0.1:8000",
        "aud": "sumservice",
    }
    payload = b64url(json.dumps(claims).encode())
    signature = hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64url(signature)}"


def alg_none() -> str:
    now = int(time.time())
    header = b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    payload = b64url(
        json.dumps({"sub": "mallory", "exp": now + 3600, "iat": now, "jti": "x"}).encode()
    )
    return f"{header}.{payload}."


def signed_by_another_key() -> str:
    other = ec.generate_private_key(ec.SECP256R1())
    now = int(time.time())
    claims = {
        "sub": "mallory",
        "iat": now,
        "exp": now + 3600,
        "jti": "x",
        "token_type": "access",
        "iss": "http://127.0.0.1:8000",
        "aud": "sumservice",
    }
    # the real kid, so the service looks up its own key and the signature check must fail
    return jwt.encode(
        claims, other, algorithm="ES256", headers={"kid": token_backend().keyring.current.kid}
    )


@pytest.mark.parametrize(
    "make_token",
    [
        pytest.param(lambda: "not-a-jwt", id="malformed"),
        pytest.param(lambda: "a.b.c", id="malformed-segments"),
        pytest.param(lambda: signed_token()[:-4] + "AAAA", id="bad-signature"),
        pytest.param(lambda: tamper_payload(signed_token(), sub="mallory"), id="tampered"),
        pytest.param(alg_none, id="alg-none"),
        pytest.param(hs256_with_public_key, id="hs256-with-public-key"),
        pytest.param(signed_by_another_key, id="another-key"),
        pytest.param(lambda: signed_token(kid="unknown"), id="unknown-kid"),
        pytest.param(lambda: signed_token({"exp": int(time.time()) - 1}), id="expired"),
        pytest.param(lambda: signed_token({"nbf": int(time.time()) + 600}), id="not-yet-valid"),
        pytest.param(lambda: signed_token({"iat": int(time.time()) + 600}), id="issued-later"),
        pytest.param(lambda: signed_token({"iss": "http://evil.example"}), id="other-issuer"),
        pytest.param(lambda: signed_token({"aud": "other-service"}), id="other-audience"),
    ],
)
def test_unacceptable_tokens_are_401(client: Client, make_token) -> None:
    assert_401(post_sum(client, "[1]", make_token()), invalid_token=True)


def test_a_valid_hand_signed_token_is_accepted(client: Client) -> None:
    # The control for the table above: the same construction without the defect passes.
    assert post_sum(client, "[1,2,3,4]", signed_token()).json()["sha256"] == SUM_OF_10


# ---------------------------------------------------------------------------------------------
# 400 / 422 / 413 / 415 / 405


@pytest.mark.parametrize(
    "body",
    [b"", b"[1,2", b"[1]garbage", b"NaN", b"[Infinity]", b"[-Infinity]", b"[1,\xff]", b"{'a':1}"],
)
def test_invalid_json_is_400(client: Client, token: str, body: bytes) -> None:
    response = post_sum(client, body, token)
    assert response.status_code == 400
    assert response.json()["detail"].startswith("Invalid JSON")


def test_invalid_utf8_says_so(client: Client, token: str) -> None:
    response = post_sum(client, b'["\xc3\x28"]', token)
    assert response.status_code == 400
    assert "not UTF-8" in response.json()["detail"]


def test_number_literal_too_long_is_422(client: Client, token: str) -> None:
    response = post_sum(client, "[" + "9" * 10_001 + "]", token)
    assert response.status_code == 422
    assert response.json() == {
        "detail": "A number literal is 10001 characters long; the limit is 10000."
    }


def test_number_literal_at_the_limit_is_summed(client: Client, token: str) -> None:
    response = post_sum(client, "[" + "9" * 10_000 + ", 1]", token)
    assert response.status_code == 200
    assert response.json()["sum"] == "1" + "0" * 10_000


@pytest.mark.parametrize("literal", ["1e10001", "1e-10001"])
def test_exponent_beyond_the_limit_is_422(client: Client, token: str, literal: str) -> None:
    response = post_sum(client, f"[{literal}]", token)
    assert response.status_code == 422
    assert "limit is ±10000" in response.json()["detail"]


def test_body_of_exactly_the_limit_is_accepted(client: Client, token: str) -> None:
    limit = 10 * 1024 * 1024
    document = b"[1]" + b" " * (limit - 3)
    response = post_sum(client, document, token)
    assert response.status_code == 200
    assert response.json()["sum"] == "1"


def test_body_over_the_limit_is_413(client: Client, token: str) -> None:
    document = b"[1]" + b" " * (10 * 1024 * 1024 - 2)
    response = post_sum(client, document, token)
    assert response.status_code == 413
    assert "limit is 10485760 bytes" in response.json()["detail"]


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_unparsed_content_type_is_415(client: Client, token: str, content_type: str) -> None:
    response = post_sum(client, "[1]", token, content_type=content_type)
    assert response.status_code == 415
    assert response.json()["detail"] == f'Unsupported media type "{content_type}" in request.'


def test_body_without_content_type_is_415(client: Client, token: str) -> None:
    response = client.generic(
        "POST", "/sum", b"[1]", content_type="", HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    assert response.status_code == 415


@pytest.mark.parametrize("method", ["get", "put", "patch", "delete"])
def test_other_methods_are_405_even_without_a_token(client: Client, method: str) -> None:
    response = getattr(client, method)("/sum")
    assert response.status_code == 405
    assert response["Allow"] == "POST, OPTIONS"


def test_options_is_200_without_a_token(client: Client) -> None:
    response = client.options("/sum")
    assert response.status_code == 200
    assert response["Allow"] == "POST, OPTIONS"


def test_browsable_api_renders_html(client: Client) -> None:
    response = client.get("/sum", HTTP_ACCEPT="text/html")
    assert response.status_code == 405
    assert response["Content-Type"].startswith("text/html")
    assert b"<html" in response.content


# ---------------------------------------------------------------------------------------------
# Other endpoints and paths


def test_healthz(client: Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_unknown_path_is_json_404(client: Client) -> None:
    response = client.get("/nothing-here")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert "/nothing-here" in response.json()["detail"]


def test_trailing_slash_is_not_redirected(client: Client) -> None:
    assert client.post("/sum/", "[1]", content_type="application/json").status_code == 404


def test_disallowed_host_is_json_400(client: Client) -> None:
    response = client.get("/healthz", HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
