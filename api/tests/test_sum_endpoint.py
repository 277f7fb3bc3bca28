"""POST /sum through Django's test client: answers, and every row of the contract's /sum table."""

from __future__ import annotations

import hashlib

import pytest
from django.test import Client

from api.summing import NumberTooLargeError, canonical_sum
from api.tests.examples import CONTRACT_EXAMPLES
from api.tests.utils import post_sum
from tests.forge import ATTACKS, Forger

# Every test here runs against both summing paths: the compiled kernel and the pure-Python one.
pytestmark = pytest.mark.usefixtures("summing_backend")

SUM_OF_10 = "4a44dc15364204a80fe80e9039455cc1608281820fe2b24f1e5233ade6af1dd5"


@pytest.mark.parametrize(("document", "expected"), CONTRACT_EXAMPLES)
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


@pytest.mark.parametrize("attack", ATTACKS)
def test_unacceptable_tokens_are_401(client: Client, forger: Forger, attack: str) -> None:
    assert_401(post_sum(client, "[1]", ATTACKS[attack](forger)), invalid_token=True)


@pytest.mark.parametrize(
    ("attack", "reason"),
    [
        ("expired", "Token is expired"),
        ("issued in the future", "Token is invalid: The token is not yet valid (iat)"),
        ("not yet valid", "Token is invalid: The token is not yet valid (nbf)"),
        ("wrong issuer", "Token is invalid: Invalid issuer"),
        ("wrong audience", "Token is invalid: Audience doesn't match"),
        ("kid not published", "Token is signed by an unknown key"),
        ("bad signature", "Token is invalid: Signature verification failed"),
        ("alg none", "Token is invalid: The specified alg value is not allowed"),
        ("no sub", "Token lacks the claims: sub"),
        ("exp not a number", "Token's exp claim is not a time in seconds"),
        ("not a JWT", "Token is invalid: Not enough segments"),
    ],
)
def test_a_refused_token_says_why(client: Client, forger: Forger, attack: str, reason: str) -> None:
    """A clock out of step, another issuer or a forged token: each a different fix."""
    response = post_sum(client, "[1]", ATTACKS[attack](forger))
    assert response.json() == {"detail": reason, "code": "token_not_valid"}


def test_a_reason_quoting_the_token_is_cut_short(client: Client, forger: Forger) -> None:
    """PyJWT quotes an unsupported `crit` entry in its reason; the 401 does not return it whole."""
    token = forger.sign(forger.claims(), crit=["x" * 1000])
    detail = post_sum(client, "[1]", token).json()["detail"]
    assert detail == f"Token is invalid: Unsupported critical extension: {'x' * 68}..."


def test_a_valid_hand_signed_token_is_accepted(client: Client, forger: Forger) -> None:
    # The control for the table above: the same construction without the defect passes.
    assert post_sum(client, "[1,2,3,4]", forger.token()).json()["sha256"] == SUM_OF_10


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


def summing_refusal(document: str) -> str:
    """What canonical_sum says of a document over its limits (test_summing.py holds the text)."""
    with pytest.raises(NumberTooLargeError) as refused:
        canonical_sum(document)
    return str(refused.value)


def test_number_literal_too_long_is_422(client: Client, token: str) -> None:
    document = "[" + "9" * 10_001 + "]"
    response = post_sum(client, document, token)
    assert response.status_code == 422
    assert response.json() == {"detail": summing_refusal(document)}


def test_number_literal_at_the_limit_is_summed(client: Client, token: str) -> None:
    response = post_sum(client, "[" + "9" * 10_000 + ", 1]", token)
    assert response.status_code == 200
    assert response.json()["sum"] == "1" + "0" * 10_000


@pytest.mark.parametrize("literal", ["1e10001", "1e-10001"])
def test_exponent_beyond_the_limit_is_422(client: Client, token: str, literal: str) -> None:
    response = post_sum(client, f"[{literal}]", token)
    assert response.status_code == 422
    assert response.json() == {"detail": summing_refusal(f"[{literal}]")}


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
    assert response.json()["detail"]  # its wording: test_middleware.py


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


@pytest.mark.parametrize("authorization", [None, "Bearer not-a-token", "Bearer"])
def test_options_is_200_whatever_token_it_carries(
    client: Client, authorization: str | None
) -> None:
    """OPTIONS describes the endpoint to anyone: a token sent with it is not looked at."""
    headers = {} if authorization is None else {"HTTP_AUTHORIZATION": authorization}
    response = client.options("/sum", **headers)
    assert response.status_code == 200
    assert response["Allow"] == "POST, OPTIONS"
    assert response.json()["name"] == "Sum"


def test_browsable_api_renders_html(client: Client) -> None:
    response = client.get("/sum", HTTP_ACCEPT="text/html")
    assert response.status_code == 405
    assert response["Content-Type"].startswith("text/html")
    assert b"<html" in response.content


# ---------------------------------------------------------------------------------------------
# Other endpoints (unknown paths and hosts: test_error_views.py)


def test_healthz(client: Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
