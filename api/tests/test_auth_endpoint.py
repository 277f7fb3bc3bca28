"""POST /auth through Django's test client: every row of the contract's /auth table."""

from __future__ import annotations

import time
import uuid

import jwt
import pytest
from django.test import Client

from api.tokens import token_backend


def post_auth(client: Client, body: object, **extra: str):
    return client.post("/auth", body, content_type="application/json", **extra)


def test_issues_a_bearer_token(client: Client) -> None:
    response = post_auth(client, {"username": "alice", "password": "secret"})
    assert response.status_code == 200
    # RFC 6749 section 5.1: neither a cache nor an HTTP/1.0 one keeps a token.
    assert response["Cache-Control"] == "no-store"
    assert response["Pragma"] == "no-cache"
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600


def test_token_claims_and_header(client: Client) -> None:
    before = int(time.time())
    token = post_auth(client, {"username": "  alice ", "password": " p "}).json()["access_token"]
    header = jwt.get_unverified_header(token)
    key = token_backend().keyring.current
    assert header == {"alg": "ES256", "typ": "JWT", "kid": key.kid}
    claims = jwt.decode(token, key.verifier, algorithms=["ES256"], audience="sumservice")
    assert claims["sub"] == "alice"  # trimmed
    assert claims["iss"] == "http://127.0.0.1:8000"
    assert claims["aud"] == "sumservice"
    assert before <= claims["iat"] <= int(time.time())
    assert claims["exp"] == claims["iat"] + 3600
    uuid.UUID(claims["jti"])
    assert "password" not in claims


def test_every_token_has_its_own_jti(client: Client) -> None:
    tokens = [
        post_auth(client, {"username": "alice", "password": "x"}).json()["access_token"]
        for _ in range(3)
    ]
    jtis = {jwt.decode(t, options={"verify_signature": False})["jti"] for t in tokens}
    assert len(jtis) == 3


def test_extra_fields_are_ignored(client: Client) -> None:
    response = post_auth(client, {"username": "alice", "password": "x", "scope": "all"})
    assert response.status_code == 200


def test_password_is_taken_as_sent(client: Client) -> None:
    assert post_auth(client, {"username": "alice", "password": "  pass  "}).status_code == 200
    # Its spaces count: 1,024 characters and two spaces are over the limit, as sent.
    response = post_auth(client, {"username": "alice", "password": "p" * 1024 + "  "})
    assert response.status_code == 400
    assert response.json()["password"] == ["Ensure this field has no more than 1024 characters."]


@pytest.mark.parametrize("password", ["se\x00cret", "se\ud800cret", "pass\nword", "\u202e"])
def test_a_password_may_hold_any_character(client: Client, password: str) -> None:
    # DRF's CharField refuses NUL and lone surrogates; the contract takes a password as sent.
    assert post_auth(client, {"username": "alice", "password": password}).status_code == 200


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"password": "x"}, "username", "This field is required."),
        ({"username": "alice"}, "password", "This field is required."),
        ({"username": "", "password": "x"}, "username", "This field may not be blank."),
        ({"username": "   ", "password": "x"}, "username", "This field may not be blank."),
        ({"username": "alice", "password": ""}, "password", "This field may not be blank."),
        ({"username": "alice", "password": " \t "}, "password", "This field may not be blank."),
        ({"username": None, "password": "x"}, "username", "This field may not be null."),
        ({"username": 5, "password": "x"}, "username", "Must be a string."),
        ({"username": "alice", "password": 123}, "password", "Must be a string."),
        ({"username": ["a"], "password": "x"}, "username", "Must be a string."),
        ({"username": {"a": 1}, "password": "x"}, "username", "Must be a string."),
        ({"username": True, "password": "x"}, "username", "Must be a string."),
        (
            {"username": "u" * 151, "password": "x"},
            "username",
            "Ensure this field has no more than 150 characters.",
        ),
        (
            {"username": "alice", "password": "p" * 1025},
            "password",
            "Ensure this field has no more than 1024 characters.",
        ),
    ],
)
def test_invalid_credentials_are_400_naming_the_field(
    client: Client, body: dict, field: str, message: str
) -> None:
    response = post_auth(client, body)
    assert response.status_code == 400
    assert response.json()[field] == [message]


def test_longest_allowed_credentials(client: Client) -> None:
    response = post_auth(client, {"username": "u" * 150, "password": "p" * 1024})
    assert response.status_code == 200


@pytest.mark.parametrize("body", [b"{", b'{"username": "a", "password": "b"', b"nope", b"\xff"])
def test_body_that_is_not_json_is_400(client: Client, body: bytes) -> None:
    response = post_auth(client, body)
    assert response.status_code == 400
    assert response.json()["detail"].startswith("JSON parse error")


# Far deeper than Python's recursion limit (1000), within /auth's 64 KiB body limit.
@pytest.mark.parametrize("body", [b"[" * 60_000, b'{"username": ' * 4_000])
def test_deeply_nested_body_is_400(client: Client, body: bytes) -> None:
    response = post_auth(client, body)
    assert response.status_code == 400
    assert response.json() == {"detail": "JSON parse error - the document is nested too deeply."}


def test_empty_body_is_400_naming_both_fields(client: Client) -> None:
    response = post_auth(client, b"")
    assert response.status_code == 400
    assert response.json() == {
        "username": ["This field is required."],
        "password": ["This field is required."],
    }


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[]", "Invalid data. Expected a dictionary, but got list."),
        (b'"alice"', "Invalid data. Expected a dictionary, but got str."),
        (b"42", "Invalid data. Expected a dictionary, but got int."),
        (b"null", "No data provided"),
    ],
)
def test_json_that_is_not_an_object_is_400(client: Client, body: bytes, message: str) -> None:
    response = post_auth(client, body)
    assert response.status_code == 400
    assert response.json() == {"non_field_errors": [message]}


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"]
)
def test_unparsed_content_type_is_415(client: Client, content_type: str) -> None:
    response = client.post("/auth", b'{"username":"a","password":"b"}', content_type=content_type)
    assert response.status_code == 415
    assert "Unsupported media type" in response.json()["detail"]


def test_body_without_content_type_is_415(client: Client) -> None:
    response = client.generic("POST", "/auth", b'{"username":"a","password":"b"}', content_type="")
    assert response.status_code == 415
    assert "no Content-Type" in response.json()["detail"]


@pytest.mark.parametrize("method", ["get", "put", "patch", "delete"])
def test_other_methods_are_405_with_allow(client: Client, method: str) -> None:
    response = getattr(client, method)("/auth")
    assert response.status_code == 405
    assert response["Allow"] == "POST, OPTIONS"
    assert response.json()["detail"] == f'Method "{method.upper()}" not allowed.'


def test_options_is_200(client: Client) -> None:
    response = client.options("/auth")
    assert response.status_code == 200
    assert response["Allow"] == "POST, OPTIONS"


def test_body_over_the_limit_is_413(client: Client) -> None:
    response = client.generic(
        "POST", "/auth", b" " * (10 * 1024 * 1024 + 1), content_type="application/json"
    )
    assert response.status_code == 413
    assert response.json()["detail"]  # its wording: test_middleware.py


def test_browsable_api_renders_html(client: Client) -> None:
    response = client.get("/auth", HTTP_ACCEPT="text/html")
    assert response.status_code == 405
    assert response["Content-Type"].startswith("text/html")
    assert b"Token Obtain" in response.content


# ---------------------------------------------------------------------------------------------
# Usernames that would rewrite the logs and screens showing them: 400 naming the field


@pytest.mark.parametrize(
    "username",
    [
        "ali\nce",  # Cc: a forged second log line
        "alice\x1b[2J",  # Cc: an ANSI escape (clear screen)
        "al\x00ice",
        "ali\x7fce",
        "alice\x85x",  # Cc: NEL
        "ali\u2028ce",  # Zl
        "ali\u2029ce",  # Zp
        *[f"admin{chr(c)}nimda" for c in (0x202A, 0x202B, 0x202C, 0x202D, 0x202E)],
        *[f"admin{chr(c)}nimda" for c in (0x2066, 0x2067, 0x2068, 0x2069)],
    ],
)
def test_username_with_unsafe_characters_is_400(client: Client, username: str) -> None:
    response = post_auth(client, {"username": username, "password": "x"})
    assert response.status_code == 400
    # (DRF refuses U+0000 in a message of its own too.)
    [message] = [m for m in response.json()["username"] if "control characters" in m]
    assert f"U+{ord(next(c for c in username if not c.isalnum())):04X}" in message


def test_other_unicode_is_kept_as_sent_trimmed(client: Client) -> None:
    username = "Zoë 山田 ✓ \u200dמרים العربية"
    response = post_auth(client, {"username": f" \t{username}\n ", "password": "x"})
    assert response.status_code == 200
    claims = jwt.decode(response.json()["access_token"], options={"verify_signature": False})
    assert claims["sub"] == username


# ---------------------------------------------------------------------------------------------
# 413: /auth takes two short strings, so its bodies are limited to 64 KiB


def padded(size: int) -> bytes:
    document = b'{"username": "alice", "password": "x"}'
    return document + b" " * (size - len(document))


def test_auth_body_of_64_kib_is_accepted(client: Client) -> None:
    assert post_auth(client, padded(64 * 1024)).status_code == 200


def test_auth_body_over_64_kib_is_413(client: Client) -> None:
    response = post_auth(client, padded(64 * 1024 + 1))
    assert response.status_code == 413
    assert response.json()["detail"]  # its wording: test_middleware.py


def test_auth_body_limit_is_configurable(client: Client, settings) -> None:
    settings.SUMSERVICE = {**settings.SUMSERVICE, "AUTH_MAX_BODY_BYTES": 100}
    assert post_auth(client, padded(100)).status_code == 200
    assert post_auth(client, padded(101)).status_code == 413
