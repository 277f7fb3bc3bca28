"""The issuer's published face, in process: discovery and the JWK Set (tests/e2e/test_oidc.py
holds the same against a real gunicorn; the tokens /sum must refuse are in test_sum_endpoint.py,
the rotation commands in test_commands.py)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from api.keys import generate_private_key, load_keyring
from api.tests.utils import issue_token, post_sum, use_jwt_settings
from api.tokens import token_backend
from tests.forge import Forger, unverified_part

DISCOVERY = "/.well-known/openid-configuration"
JWKS = "/.well-known/jwks.json"
# Members of a private JWK that must never be published (RFC 7518 sections 6.2.2, 6.3.2, 6.4).
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}


# Each test with its own state folder, so its own keys.
pytestmark = pytest.mark.usefixtures("state_dir")


def max_age(response: Any) -> int:
    match = re.fullmatch(r"public, max-age=(\d+)", response["Cache-Control"])
    assert match, response["Cache-Control"]
    return int(match.group(1))


# Discovery


def test_discovery_names_the_issuer_of_the_tokens_and_where_its_keys_are(
    client: Client, settings: Any
) -> None:
    response = client.get(DISCOVERY)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    document = response.json()
    issuer = settings.SIMPLE_JWT["ISSUER"]
    assert document["issuer"] == issuer == unverified_part(issue_token(client), 1)["iss"]
    assert document["jwks_uri"] == issuer + JWKS
    assert document["token_endpoint"] == issuer + "/auth"
    assert document["id_token_signing_alg_values_supported"] == ["ES256"]
    assert document["subject_types_supported"] == ["public"]
    assert document["response_types_supported"] == ["token"]
    assert document["grant_types_supported"] == ["password"]
    assert document["token_endpoint_auth_methods_supported"] == ["none"]


def test_discovery_lists_only_claims_every_token_carries(client: Client) -> None:
    claims = client.get(DISCOVERY).json()["claims_supported"]
    assert {"iss", "sub", "aud", "exp", "iat"} <= set(claims)
    assert set(claims) <= set(unverified_part(issue_token(client), 1))


def test_discovery_follows_a_configured_issuer_with_a_path(client: Client, settings: Any) -> None:
    use_jwt_settings(settings, ISSUER="https://auth.example/tenant/")
    document = client.get(DISCOVERY).json()
    # The issuer is kept as configured (it is what the tokens carry); the URLs below it drop
    # its trailing slash, as OIDC Discovery section 4 says.
    assert document["issuer"] == "https://auth.example/tenant/"
    assert document["jwks_uri"] == "https://auth.example/tenant/.well-known/jwks.json"
    assert document["token_endpoint"] == "https://auth.example/tenant/auth"
    assert unverified_part(issue_token(client), 1)["iss"] == "https://auth.example/tenant/"


# The JWK Set


@pytest.mark.parametrize(
    ("algorithm", "members"),
    [("ES256", {"kty": "EC", "crv": "P-256"}), ("RS256", {"kty": "RSA", "e": "AQAB"})],
)
def test_jwks_publishes_the_public_signing_key_and_nothing_private(
    client: Client, settings: Any, algorithm: str, members: dict[str, str]
) -> None:
    use_jwt_settings(settings, ALGORITHM=algorithm)
    token = issue_token(client)
    response = client.get(JWKS)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    (key,) = response.json()["keys"]
    assert key["kid"] == unverified_part(token, 0)["kid"]
    assert key["alg"] == unverified_part(token, 0)["alg"] == algorithm
    assert key["use"] == "sig"
    assert members.items() <= key.items()
    assert not PRIVATE_MEMBERS & key.keys(), key


def test_jwks_and_discovery_may_be_cached_for_less_than_a_token_lifetime(
    client: Client, settings: Any
) -> None:
    lifetime = settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"].total_seconds()
    jwks = client.get(JWKS)
    # Short against the hour a retired key stays published: a cached set never lacks a key
    # whose tokens are still valid, and soon shows a new one.
    assert 0 < max_age(jwks) <= lifetime / 10
    assert max_age(client.get(DISCOVERY)) > 0
    # JSON and the browsable API's HTML are both cached, each for its own Accept header.
    assert "accept" in [name.strip().lower() for name in jwks["Vary"].split(",")]


def test_hs256_publishes_no_key_and_still_describes_the_issuer(
    client: Client, settings: Any
) -> None:
    use_jwt_settings(settings, ALGORITHM="HS256")
    settings.SUMSERVICE = {**settings.SUMSERVICE, "HMAC_SECRET": "s" * 32}
    token = issue_token(client)
    assert unverified_part(token, 0)["alg"] == "HS256"
    assert post_sum(client, "[1]", token).status_code == 200
    jwks = client.get(JWKS)
    assert jwks.status_code == 200
    assert jwks.json() == {"keys": []}
    document = client.get(DISCOVERY).json()
    assert document["id_token_signing_alg_values_supported"] == ["HS256"]
    assert document["jwks_uri"].endswith(JWKS)


def test_jwks_publishes_the_previous_keys_of_the_configuration(
    client: Client, settings: Any, tmp_path: Path
) -> None:
    old_pem, new_pem = generate_private_key("ES256"), generate_private_key("ES256")
    (tmp_path / "previous.pem").write_bytes(old_pem)
    (tmp_path / "previous.pem").chmod(0o600)
    settings.SUMSERVICE = {
        **settings.SUMSERVICE,
        "SIGNING_KEY": new_pem.decode(),
        "PREVIOUS_KEYS_FILE": str(tmp_path / "previous.pem"),
    }
    token_backend.cache_clear()
    old = load_keyring({**settings.SUMSERVICE, "SIGNING_KEY": old_pem.decode()}, "ES256").current
    kids = [key["kid"] for key in client.get(JWKS).json()["keys"]]
    assert kids == [token_backend().keyring.current.kid, old.kid]
    # A token the old key signed is still accepted; no key was made in the state folder.
    old_forger = Forger(old, settings.SIMPLE_JWT["ISSUER"], settings.SIMPLE_JWT["AUDIENCE"])
    assert post_sum(client, "[1]", old_forger.token()).status_code == 200
    assert not (tmp_path / "keys").exists()


def test_well_known_documents_render_in_the_browsable_api(client: Client, settings: Any) -> None:
    kid = token_backend().keyring.current.kid
    for path, shown in [(DISCOVERY, settings.SIMPLE_JWT["ISSUER"] + JWKS), (JWKS, kid)]:
        response = client.get(path, HTTP_ACCEPT="text/html")
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/html")
        assert shown in response.content.decode()


@pytest.mark.parametrize("path", [DISCOVERY, JWKS])
def test_well_known_documents_are_read_only(client: Client, path: str) -> None:
    response = client.post(path, {}, content_type="application/json")
    assert response.status_code == 405
    assert "GET" in response["Allow"]
    assert "detail" in response.json()
