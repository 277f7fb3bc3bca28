"""The service as an OIDC token issuer, against a real gunicorn: a verifier that knows only the
base URL finds the keys and verifies tokens with joserfc (an independent JOSE library: the
service itself signs and verifies with PyJWT), and keys rotate without a failed request."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from api.keys import generate_private_key, load_key_file
from tests.forge import ATTACKS, Forger, public_pem, unverified_part
from tests.liveserver import LiveServer
from tests.utils import get_token, pids_that_answered, post_sum

TIMEOUT = 10


def discover(base_url: str) -> tuple[dict[str, Any], KeySet]:
    """What a stock OIDC verifier does with a base URL: discovery, then the jwks_uri."""
    response = requests.get(base_url + "/.well-known/openid-configuration", timeout=TIMEOUT)
    response.raise_for_status()
    document = response.json()
    jwks = requests.get(document["jwks_uri"], timeout=TIMEOUT)
    jwks.raise_for_status()
    return document, KeySet.import_key_set(jwks.json())


def verify(base_url: str, token: str, subject: str) -> dict[str, Any]:
    """Verify a token from the published documents alone, with joserfc; return its claims."""
    document, keys = discover(base_url)
    decoded = jwt.decode(token, keys, algorithms=document["id_token_signing_alg_values_supported"])
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": document["issuer"]},
        aud={"essential": True, "value": "sumservice"},
        sub={"essential": True, "value": subject},
        exp={"essential": True},
        iat={"essential": True},
    ).validate(decoded.claims)
    return decoded.claims


def kid(token: str) -> str:
    return unverified_part(token, 0)["kid"]


def published_kids(server: LiveServer) -> list[str]:
    """The kids in this server's own JWK Set (whatever issuer URL it is configured with)."""
    jwks = requests.get(server.url + "/.well-known/jwks.json", timeout=TIMEOUT)
    jwks.raise_for_status()
    return [key["kid"] for key in jwks.json()["keys"]]


@pytest.fixture
def forger(server: LiveServer) -> Forger:
    """Makes tokens with the shared server's own key, read from its state folder."""
    key = load_key_file(server.state_dir / "keys" / "signing-key.pem", "ES256")
    return Forger(key, server.url, "sumservice")


@pytest.fixture
def rotating_server() -> Iterator[LiveServer]:
    """A server of its own: these tests change its keys. Its streams of token requests from one
    address go past the /auth rate limit (tested in test_rate_limits): it is off here."""
    with LiveServer(env={"SUMSERVICE_AUTH_RATE": "off"}) as server:
        yield server


def test_a_stock_verifier_needs_only_the_base_url(server: LiveServer) -> None:
    token = get_token(server, "alice")
    claims = verify(server.url, token, "alice")
    document, keys = discover(server.url)
    assert document["issuer"] == server.url == claims["iss"]
    assert document["token_endpoint"] == server.url + "/auth"
    assert claims["exp"] - claims["iat"] == 3600
    # The kid is the key's RFC 7638 thumbprint, as joserfc computes it.
    (key,) = keys
    assert key.kid == kid(token) == key.thumbprint()
    assert not key.is_private


def test_the_verifier_refuses_what_the_service_refuses(server: LiveServer, forger: Forger) -> None:
    # The control for the test above: joserfc, given the JWKS, does reject a stranger's token.
    assert verify(server.url, forger.token(), "mallory")["sub"] == "mallory"
    with pytest.raises(JoseError):
        verify(server.url, ATTACKS["unknown key, known kid"](forger), "mallory")
    with pytest.raises(JoseError):
        verify(server.url, forger.token(aud="another-service"), "mallory")


@pytest.mark.parametrize("attack", ATTACKS)
def test_sum_refuses_an_attack_token(server: LiveServer, forger: Forger, attack: str) -> None:
    response = post_sum(server, b"[1]", ATTACKS[attack](forger))
    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")
    assert response.json()["detail"]
    # The same forger's honest token is accepted: the attack failed for what it changed.
    assert post_sum(server, b"[1]", forger.token()).status_code == 200


def test_rotation_end_to_end(rotating_server: LiveServer) -> None:
    server = rotating_server
    token_a = get_token(server, "alice")

    rotated = server.manage("rotate_signing_key")
    assert rotated.returncode == 0, rotated.stderr
    assert f"Retired key {kid(token_a)}" in rotated.stdout
    server.reload()
    token_b = get_token(server, "bob")
    assert kid(token_b) != kid(token_a)
    assert f"New signing key {kid(token_b)}" in rotated.stdout

    # Both keys are published, current first, and both tokens pass the service and joserfc.
    assert published_kids(server) == [kid(token_b), kid(token_a)]
    for token, subject in [(token_a, "alice"), (token_b, "bob")]:
        assert post_sum(server, b"[1, 2, 3, 4]", token).json()["sum"] == "10"
        assert verify(server.url, token, subject)["sub"] == subject

    # A prune in time keeps the retired key; one an hour later (the token lifetime) drops it.
    kept = server.manage("prune_signing_keys")
    assert "nothing removed" in kept.stdout, kept.stderr
    (retired,) = (server.state_dir / "keys" / "retired").iterdir()
    timestamp, rest = retired.name.split("-", 1)
    retired.rename(retired.with_name(f"{int(timestamp) - 3600}-{rest}"))
    pruned = server.manage("prune_signing_keys")
    assert pruned.returncode == 0, pruned.stderr
    assert "Removed" in pruned.stdout and kid(token_a) in pruned.stdout
    server.reload()

    refused = post_sum(server, b"[1, 2, 3, 4]", token_a)
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"].startswith("Bearer ")
    assert post_sum(server, b"[1, 2, 3, 4]", token_b).status_code == 200
    assert published_kids(server) == [kid(token_b)]
    with pytest.raises(JoseError):
        verify(server.url, token_a, "alice")


def test_rotation_loses_no_request(rotating_server: LiveServer) -> None:
    """Requests keep coming while the key rotates and gunicorn reloads: every one succeeds,
    whether it carries a token from before the rotation or one issued a moment ago."""
    server = rotating_server
    old_token = get_token(server)
    old_workers = server.worker_pids()
    outcomes: list[tuple[str, object]] = []
    done = threading.Event()

    def stream() -> None:
        while not done.is_set():
            try:
                issued = requests.post(
                    server.url + "/auth", json={"username": "carol", "password": "pw"}, timeout=10
                )
                outcomes.append(("auth", issued.status_code))
                fresh_token = issued.json()["access_token"]
                for name, token in [("old", old_token), ("fresh", fresh_token)]:
                    outcomes.append((name, post_sum(server, b"[1, 2, 3, 4]", token).status_code))
            except (requests.RequestException, KeyError, ValueError) as error:
                outcomes.append(("error", repr(error)))

    streams = [threading.Thread(target=stream) for _ in range(2)]
    for thread in streams:
        thread.start()
    try:
        rotated = server.manage("rotate_signing_key")
        assert rotated.returncode == 0, rotated.stderr
        server.reload()
        new_kid = kid(get_token(server))
        # Keep the stream going a while on the new workers too.
        target, deadline = len(outcomes) + 150, time.monotonic() + 60
        while len(outcomes) < target and time.monotonic() < deadline:
            done.wait(0.05)
    finally:
        done.set()
        for thread in streams:
            thread.join(timeout=30)

    assert new_kid != kid(old_token)
    # Both generations of workers answered the stream: it ran across the reload.
    answered = pids_that_answered(server, "/sum")
    assert answered & old_workers and answered & server.worker_pids()
    assert len(outcomes) >= target, "the stream stalled"
    assert [outcome for outcome in outcomes if outcome[1] != 200] == []


def test_a_reload_with_a_broken_key_keeps_serving_with_the_old_one(
    rotating_server: LiveServer,
) -> None:
    server = rotating_server
    token = get_token(server)
    (server.state_dir / "keys" / "signing-key.pem").write_text("not a key\n")
    server.reload()
    assert "Keeping the keys in use" in server.log()
    assert post_sum(server, b"[1, 2, 3, 4]", token).status_code == 200
    assert kid(get_token(server)) == kid(token)


def test_rotation_of_configured_keys_across_replicas(tmp_path: Path) -> None:
    """The procedure for keys from the environment (docs/tokens.md, "Rotating the signing key"),
    on two replicas sharing key files as mounted secrets: at every step, each accepts every token
    the other issues."""
    for name in ("old", "new"):
        (tmp_path / f"{name}.pem").write_bytes(generate_private_key("ES256"))
    old, new = (load_key_file(tmp_path / f"{name}.pem", "ES256") for name in ("old", "new"))
    signing, previous = tmp_path / "signing.pem", tmp_path / "previous.pem"
    signing.write_bytes((tmp_path / "old.pem").read_bytes())
    previous.write_bytes(b"")
    # As a Secret mounts them: readable by the service's user (here, the owner) alone.
    signing.chmod(0o600)
    previous.chmod(0o600)
    env = {
        "SUMSERVICE_JWT_PRIVATE_KEY_FILE": str(signing),
        "SUMSERVICE_JWT_PREVIOUS_KEYS_FILE": str(previous),
        # Replicas behind one address share one issuer: the tokens' iss is not per replica.
        "SUMSERVICE_ISSUER": "https://sums.example.invalid",
    }
    with LiveServer(env=env) as a, LiveServer(env=env) as b:
        replicas = (a, b)
        token_0 = get_token(a)

        def accepted_everywhere(*tokens: str) -> bool:
            return all(post_sum(r, b"[1]", t).status_code == 200 for r in replicas for t in tokens)

        # 1. The new key is published and accepted everywhere, and signs nowhere yet.
        previous.write_bytes(public_pem(new))
        a.reload()
        b.reload()
        assert all(published_kids(r) == [old.kid, new.kid] for r in replicas)
        assert kid(get_token(b)) == old.kid
        assert accepted_everywhere(token_0)

        # 2. It becomes the signing key, one replica after the other.
        signing.write_bytes((tmp_path / "new.pem").read_bytes())
        previous.write_bytes(public_pem(old))
        a.reload()
        token_1, token_b = get_token(a), get_token(b)
        assert (kid(token_1), kid(token_b)) == (new.kid, old.kid)
        assert accepted_everywhere(token_0, token_1, token_b)
        b.reload()
        assert all(published_kids(r) == [new.kid, old.kid] for r in replicas)
        assert accepted_everywhere(token_0, token_1, get_token(b))

        # 3. After the old key's tokens have expired, it is dropped everywhere.
        previous.write_bytes(b"")
        a.reload()
        b.reload()
        assert all(published_kids(r) == [new.kid] for r in replicas)
        assert accepted_everywhere(token_1)
        assert all(post_sum(r, b"[1]", token_0).status_code == 401 for r in replicas)


def test_a_key_folder_others_can_read_stops_the_start(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    (state_dir / "keys").mkdir(parents=True)
    state_dir.chmod(0o700)
    (state_dir / "keys").chmod(0o755)
    server = LiveServer(state_dir=state_dir)
    assert f"Fix: chmod 700 {state_dir / 'keys'}" in server.refused_start()
