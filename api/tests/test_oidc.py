"""The issuer's published face, in process: discovery, the JWK Set and the rotation commands
(tests/e2e/test_oidc.py holds the same against a real gunicorn; the tokens /sum must refuse are
in test_sum_endpoint.py)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.test import Client

from api.keys import generate_private_key, load_keyring
from api.tests.conftest import issue_token, post_sum
from api.tokens import reload_token_backend, token_backend
from tests.forge import Forger, unverified_part

DISCOVERY = "/.well-known/openid-configuration"
JWKS = "/.well-known/jwks.json"
# Members of a private JWK that must never be published (RFC 7518 sections 6.2.2, 6.3.2, 6.4).
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}


@pytest.fixture(autouse=True)
def state_dir(settings: Any, tmp_path: Path) -> Iterator[Path]:
    """Each test with its own state folder (so its own keys) and a backend built afresh: the
    process's backend is cached, and would otherwise outlive the settings of another test."""
    settings.SUMSERVICE = {**settings.SUMSERVICE, "STATE_DIR": tmp_path}
    token_backend.cache_clear()
    yield tmp_path
    token_backend.cache_clear()


def use_jwt_settings(settings: Any, **changes: Any) -> None:
    settings.SIMPLE_JWT = {**settings.SIMPLE_JWT, **changes}
    token_backend.cache_clear()


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
    assert "Accept" in jwks["Vary"]


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


# Rotation: the commands and reloading


def test_rotate_retires_the_key_and_both_keep_verifying(
    client: Client, settings: Any, state_dir: Path
) -> None:
    old_token = issue_token(client)
    old_kid = token_backend().keyring.current.kid
    out = StringIO()
    call_command("rotate_signing_key", stdout=out)
    new_kid = load_keyring(settings.SUMSERVICE, "ES256").current.kid
    assert new_kid != old_kid
    assert f"Retired key {old_kid}" in out.getvalue()
    assert f"New signing key {new_kid}" in out.getvalue()
    assert "kill -HUP" in out.getvalue()
    (retired,) = (state_dir / "keys" / "retired").iterdir()
    assert retired.name.endswith(f"-{old_kid}.pem")

    # Until the reload, the process signs with the key it loaded.
    assert unverified_part(issue_token(client), 0)["kid"] == old_kid
    reload_token_backend()
    new_token = issue_token(client)
    assert unverified_part(new_token, 0)["kid"] == new_kid
    assert [key["kid"] for key in client.get(JWKS).json()["keys"]] == [new_kid, old_kid]
    assert post_sum(client, "[1]", old_token).status_code == 200
    assert post_sum(client, "[1]", new_token).status_code == 200


def test_prune_drops_only_keys_retired_a_token_lifetime_ago(
    client: Client, state_dir: Path
) -> None:
    old_token = issue_token(client)
    call_command("rotate_signing_key", stdout=StringIO())
    reload_token_backend()
    new_token = issue_token(client)

    out = StringIO()
    call_command("prune_signing_keys", stdout=out)
    assert "nothing removed" in out.getvalue()
    (retired,) = (state_dir / "keys" / "retired").iterdir()
    assert f"Kept {retired}" in out.getvalue()

    # Retired an hour and a second ago (the default lifetime, no leeway): its tokens are dead.
    timestamp, kid = retired.name.split("-", 1)
    aged = retired.with_name(f"{int(timestamp) - 3601}-{kid}")
    retired.rename(aged)
    out = StringIO()
    call_command("prune_signing_keys", stdout=out)
    assert f"Removed {aged}" in out.getvalue()
    assert "kill -HUP" in out.getvalue()
    assert not aged.exists()

    reload_token_backend()
    assert len(client.get(JWKS).json()["keys"]) == 1
    assert post_sum(client, "[1]", old_token).status_code == 401
    assert post_sum(client, "[1]", new_token).status_code == 200


def test_prune_older_than_zero_drops_a_key_just_retired(state_dir: Path) -> None:
    call_command("rotate_signing_key", stdout=StringIO())
    out = StringIO()
    call_command("prune_signing_keys", "--older-than", "0", stdout=out)
    assert out.getvalue().startswith("Removed ")
    assert not list((state_dir / "keys" / "retired").iterdir())
    with pytest.raises(CommandError, match="0 or more"):
        call_command("prune_signing_keys", "--older-than", "-1")


@pytest.mark.parametrize("command", ["rotate_signing_key", "prune_signing_keys"])
def test_commands_refuse_keys_from_the_environment(
    settings: Any, state_dir: Path, command: str
) -> None:
    settings.SUMSERVICE = {**settings.SUMSERVICE, "SIGNING_KEY_FILE": "/run/secrets/jwt.pem"}
    with pytest.raises(CommandError) as refused:
        call_command(command)
    # It explains the procedure that does apply, and touches nothing.
    assert "SUMSERVICE_JWT_PREVIOUS_KEYS" in str(refused.value)
    assert "roll out" in str(refused.value)
    assert "docs/tokens.md" in str(refused.value)
    assert not (state_dir / "keys").exists()


@pytest.mark.parametrize("command", ["rotate_signing_key", "prune_signing_keys"])
def test_commands_refuse_a_shared_secret(settings: Any, state_dir: Path, command: str) -> None:
    use_jwt_settings(settings, ALGORITHM="HS256")
    with pytest.raises(CommandError, match="SUMSERVICE_JWT_SECRET"):
        call_command(command)
    assert not (state_dir / "keys").exists()


def test_a_reload_that_cannot_load_the_keys_keeps_the_old_ones(
    client: Client, state_dir: Path
) -> None:
    token = issue_token(client)
    kid = token_backend().keyring.current.kid
    (state_dir / "keys" / "signing-key.pem").write_text("not a key")
    with pytest.raises(ImproperlyConfigured):
        reload_token_backend()
    assert token_backend().keyring.current.kid == kid
    assert post_sum(client, "[1]", token).status_code == 200
