"""The key ring: where keys come from, how they are named, created, rotated and pruned."""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.core.exceptions import ImproperlyConfigured

from api.keys import (
    ensure_state_key,
    generate_private_key,
    load_keyring,
    prune_retired_keys,
    rotate_state_key,
    thumbprint,
)


def config(state_dir: Path, **overrides: str) -> dict:
    return {
        "STATE_DIR": state_dir,
        "SIGNING_KEY": "",
        "SIGNING_KEY_FILE": "",
        "PREVIOUS_KEYS": "",
        "PREVIOUS_KEYS_FILE": "",
        "HMAC_SECRET": "",
        **overrides,
    }


def public_pem(private_pem: bytes) -> str:
    key = serialization.load_pem_private_key(private_pem, password=None)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def test_rfc7638_thumbprint_example() -> None:
    # RFC 7638 section 3.1
    jwk = {
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tS"
        "oc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQ"
        "R0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bF"
        "TWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29",
    }
    assert thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_state_key_is_created_once_and_reused(tmp_path: Path) -> None:
    first = load_keyring(config(tmp_path), "ES256")
    second = load_keyring(config(tmp_path), "ES256")
    assert first.current.kid == second.current.kid
    key_file = tmp_path / "keys" / "signing-key.pem"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert first.current.algorithm == "ES256"
    assert first.jwks()["keys"][0]["crv"] == "P-256"


def _kid_of_new_state_key(key_dir: str) -> str:
    path = ensure_state_key(Path(key_dir), "ES256")
    return path.read_text()


def test_processes_starting_together_share_one_key(tmp_path: Path) -> None:
    with multiprocessing.get_context("fork").Pool(8) as pool:
        keys = pool.map(_kid_of_new_state_key, [str(tmp_path / "keys")] * 32)
    assert len(set(keys)) == 1
    assert os.listdir(tmp_path / "keys") == ["signing-key.pem"]  # no temporary files left


def test_key_from_environment_text_and_file(tmp_path: Path) -> None:
    pem = generate_private_key("ES256")
    from_text = load_keyring(config(tmp_path, SIGNING_KEY=pem.decode()), "ES256")
    key_file = tmp_path / "secret.pem"
    key_file.write_bytes(pem)
    from_file = load_keyring(config(tmp_path, SIGNING_KEY_FILE=str(key_file)), "ES256")
    assert from_text.current.kid == from_file.current.kid
    assert not (tmp_path / "keys").exists()  # a configured key never touches the state folder


def test_previous_keys_bundle_is_published_and_found(tmp_path: Path) -> None:
    current = generate_private_key("ES256")
    old_private, old_public = generate_private_key("ES256"), generate_private_key("ES256")
    bundle = old_private.decode() + "\n" + public_pem(old_public)
    ring = load_keyring(
        config(tmp_path, SIGNING_KEY=current.decode(), PREVIOUS_KEYS=bundle), "ES256"
    )
    assert len(ring.previous) == 2
    kids = [jwk["kid"] for jwk in ring.jwks()["keys"]]
    assert kids[0] == ring.current.kid and len(set(kids)) == 3
    for key in ring.previous:
        assert ring.find(key.kid) is key
        assert key.signer is None  # previous keys only verify
    assert ring.find("nope") is None


def test_published_keys_have_no_private_members(tmp_path: Path) -> None:
    for algorithm in ("ES256", "RS256"):
        ring = load_keyring(config(tmp_path / algorithm), algorithm)
        (jwk,) = ring.jwks()["keys"]
        assert jwk["alg"] == algorithm and jwk["use"] == "sig" and jwk["kid"] == ring.current.kid
        assert not {"d", "p", "q", "dp", "dq", "qi", "k"} & set(jwk)


def test_rs256_key(tmp_path: Path) -> None:
    ring = load_keyring(config(tmp_path), "RS256")
    assert ring.jwks()["keys"][0]["kty"] == "RSA"


def test_hs256_needs_a_long_secret_and_publishes_nothing(tmp_path: Path) -> None:
    with pytest.raises(ImproperlyConfigured, match="at least 32 bytes"):
        load_keyring(config(tmp_path, HMAC_SECRET="short"), "HS256")
    ring = load_keyring(config(tmp_path, HMAC_SECRET="s" * 32), "HS256")
    assert ring.jwks() == {"keys": []}
    assert ring.current.signer == b"s" * 32


@pytest.mark.parametrize(
    ("overrides", "algorithm", "message"),
    [
        ({}, "HS512", "supported: ES256, RS256, HS256"),
        ({"SIGNING_KEY": "not a pem"}, "ES256", "Cannot load the signing key as a PEM key"),
        (
            {"SIGNING_KEY": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"},
            "ES256",
            "Cannot load the signing key",
        ),
        ({"SIGNING_KEY_FILE": "/nonexistent/key.pem"}, "ES256", "Cannot read key file"),
    ],
)
def test_misconfiguration_is_a_clear_error(
    tmp_path: Path, overrides: dict, algorithm: str, message: str
) -> None:
    with pytest.raises(ImproperlyConfigured, match=message):
        load_keyring(config(tmp_path, **overrides), algorithm)


def test_key_of_the_wrong_type_for_the_algorithm(tmp_path: Path) -> None:
    rsa_pem = generate_private_key("RS256").decode()
    with pytest.raises(ImproperlyConfigured, match="ES256 needs a P-256"):
        load_keyring(config(tmp_path, SIGNING_KEY=rsa_pem), "ES256")
    p384 = ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(ImproperlyConfigured, match="ES256 needs a P-256"):
        load_keyring(config(tmp_path, SIGNING_KEY=p384.decode()), "ES256")


def test_a_configured_key_file_that_is_empty_is_an_error_not_a_new_key(tmp_path: Path) -> None:
    # The rotation commands treat a configured key as not theirs to rotate; the service must
    # not then quietly sign with a state folder key of its own.
    (tmp_path / "empty.pem").write_bytes(b"")
    with pytest.raises(ImproperlyConfigured, match="signing key"):
        load_keyring(config(tmp_path, SIGNING_KEY_FILE=str(tmp_path / "empty.pem")), "ES256")
    assert not (tmp_path / "keys").exists()


def test_a_public_key_cannot_sign(tmp_path: Path) -> None:
    public = public_pem(generate_private_key("ES256"))
    with pytest.raises(ImproperlyConfigured, match="must be a private key"):
        load_keyring(config(tmp_path, SIGNING_KEY=public), "ES256")


def test_rotation_keeps_the_old_key_for_verification_until_pruned(tmp_path: Path) -> None:
    key_dir = tmp_path / "keys"
    before = load_keyring(config(tmp_path), "ES256")
    retired, _ = rotate_state_key(key_dir, "ES256")
    after = load_keyring(config(tmp_path), "ES256")
    assert after.current.kid != before.current.kid
    assert [key.kid for key in after.previous] == [before.current.kid]
    assert retired.name.endswith(f"-{before.current.kid}.pem")

    assert prune_retired_keys(key_dir, older_than=3600) == []  # retired just now: kept
    old = retired.with_name(f"{int(time.time()) - 3601}-{before.current.kid}.pem")
    retired.rename(old)
    assert prune_retired_keys(key_dir, older_than=3600) == [old]
    assert load_keyring(config(tmp_path), "ES256").previous == ()
