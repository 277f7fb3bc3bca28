"""The key ring: where keys come from, how they are named, created, rotated and pruned."""

from __future__ import annotations

import multiprocessing
import os
import stat
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.core.exceptions import ImproperlyConfigured

from api.keys import (
    ensure_state_key,
    generate_private_key,
    load_key_file,
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
    key_file.chmod(0o600)
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


@pytest.mark.parametrize(
    ("bundle", "message"),
    [
        ("garbage", "holds no PEM key"),
        ("-----BEGIN PUBLIC KEY-----\nMFkw\n----END PUBLIC KEY-----\n", "not closed"),
        ("{first}-----BEGIN PUBLIC KEY-----\nMFkw\n", "not closed"),
    ],
    ids=["no key", "an END line short of a dash", "a second key cut short"],
)
def test_previous_keys_that_are_not_all_pem_keys_stop_the_start(
    tmp_path: Path, bundle: str, message: str
) -> None:
    """Else the keys that cannot be read would be dropped, and the tokens they signed refused."""
    bundle = bundle.format(first=public_pem(generate_private_key("ES256")))
    for settings in (
        config(tmp_path, PREVIOUS_KEYS=bundle),
        config(tmp_path, PREVIOUS_KEYS_FILE=str(tmp_path / "previous.pem")),
    ):
        (tmp_path / "previous.pem").write_text(bundle)
        with pytest.raises(ImproperlyConfigured, match=message) as refused:
            load_keyring(settings, "ES256")
        variable = refused.value.args[0].split()[0]
        given = "PREVIOUS_KEYS_FILE" if settings["PREVIOUS_KEYS_FILE"] else "PREVIOUS_KEYS"
        assert variable == f"SUMSERVICE_JWT_{given}"


def test_previous_keys_may_have_text_around_them(tmp_path: Path) -> None:
    """RFC 7468: text outside the encapsulation boundaries (a note of where a key came from)."""
    bundle = "retired 2026-12-01\n" + public_pem(generate_private_key("ES256")) + "end of list\n"
    assert len(load_keyring(config(tmp_path, PREVIOUS_KEYS=bundle), "ES256").previous) == 1


def test_published_keys_have_no_private_members(tmp_path: Path) -> None:
    for algorithm in ("ES256", "RS256"):
        ring = load_keyring(config(tmp_path / algorithm), algorithm)
        (jwk,) = ring.jwks()["keys"]
        assert jwk["alg"] == algorithm and jwk["use"] == "sig" and jwk["kid"] == ring.current.kid
        assert not {"d", "p", "q", "dp", "dq", "qi", "k"} & set(jwk)


@pytest.mark.parametrize(
    ("algorithm", "members"),
    [("ES256", {"kty", "crv", "x", "y"}), ("RS256", {"kty", "n", "e"})],
)
def test_a_published_key_has_its_members_and_use_without_key_ops(
    tmp_path: Path, algorithm: str, members: set[str]
) -> None:
    (jwk,) = load_keyring(config(tmp_path), algorithm).jwks()["keys"]
    # RFC 7517 section 4.3: "use" and "key_ops" should not be used together.
    assert set(jwk) == members | {"kid", "alg", "use"}
    assert (jwk["alg"], jwk["use"]) == (algorithm, "sig")


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


def test_a_state_key_made_for_another_algorithm_names_its_folder_and_the_ways_out(
    tmp_path: Path,
) -> None:
    key_dir = tmp_path / "keys"
    rs256 = load_keyring(config(tmp_path), "RS256")
    with pytest.raises(ImproperlyConfigured) as refused:
        load_keyring(config(tmp_path), "ES256")
    message = str(refused.value)
    assert f"{key_dir / 'signing-key.pem'} is not" in message
    assert f"mv {key_dir} {key_dir}.old" in message
    # The way out it gives: a new key of the configured type, the old one kept aside.
    key_dir.rename(tmp_path / "keys.old")
    assert load_keyring(config(tmp_path), "ES256").current.public_jwk["kty"] == "EC"
    kept = load_key_file(tmp_path / "keys.old" / "signing-key.pem", "RS256")
    assert kept.kid == rs256.current.kid


def test_a_retired_state_key_of_another_type_is_named(tmp_path: Path) -> None:
    rotate_state_key(tmp_path / "keys", "RS256")
    (tmp_path / "keys" / "signing-key.pem").write_bytes(generate_private_key("ES256"))
    with pytest.raises(ImproperlyConfigured, match=r"retired/\d+-[\w-]+\.pem is not\..*\(mv "):
        load_keyring(config(tmp_path), "ES256")


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


# ---------------------------------------------------------------------------------------------
# Retired keys are kept as public keys; keys others could read or change stop the start


def test_a_retired_key_is_kept_as_its_public_key_only(tmp_path: Path) -> None:
    before = load_keyring(config(tmp_path), "ES256")
    retired, current = rotate_state_key(tmp_path / "keys", "ES256")
    assert b"PRIVATE" not in retired.read_bytes()
    assert stat.S_IMODE(retired.stat().st_mode) == 0o600
    assert stat.S_IMODE(current.stat().st_mode) == 0o600
    (previous,) = load_keyring(config(tmp_path), "ES256").previous
    assert previous.kid == before.current.kid
    assert previous.public_jwk == before.current.public_jwk


def test_rotating_rewrites_retired_private_keys_as_public(tmp_path: Path) -> None:
    # As rotations before this version left them: the whole private key in retired/.
    key_dir = tmp_path / "keys"
    ensure_state_key(key_dir, "ES256")
    (key_dir / "retired").mkdir(mode=0o700)
    old_pem = generate_private_key("ES256")
    old = key_dir / "retired" / f"{int(time.time()) - 60}-old.pem"
    old.write_bytes(old_pem)
    old.chmod(0o600)
    rotate_state_key(key_dir, "ES256")
    assert old.read_text() == public_pem(old_pem)
    assert all(b"PRIVATE" not in path.read_bytes() for path in (key_dir / "retired").iterdir())


@pytest.mark.parametrize(
    ("where", "mode", "problem", "fix"),
    [
        ("", 0o777, "written by other users", "chmod 700"),
        ("", 0o770, "written by other users", "chmod 700"),
        ("keys", 0o755, "read by other users", "chmod 700"),
        ("keys", 0o730, "written by other users", "chmod 700"),
        ("keys/signing-key.pem", 0o644, "read by other users", "chmod 600"),
        ("keys/signing-key.pem", 0o604, "read by other users", "chmod 600"),
        ("keys/signing-key.pem", 0o620, "written by other users", "chmod 600"),
        ("keys/retired", 0o750, "read by other users", "chmod 700"),
    ],
)
def test_a_state_folder_open_to_others_stops_the_start(
    tmp_path: Path, where: str, mode: int, problem: str, fix: str
) -> None:
    state_dir = tmp_path / "state"
    load_keyring(config(state_dir), "ES256")
    rotate_state_key(state_dir / "keys", "ES256")
    (state_dir / where).chmod(mode)
    with pytest.raises(ImproperlyConfigured) as refused:
        load_keyring(config(state_dir), "ES256")
    message = str(refused.value)
    assert f"{state_dir / where if where else state_dir}" in message
    assert problem in message
    assert f"Fix: {fix} {state_dir / where if where else state_dir}" in message


def test_a_state_folder_others_may_only_enter_is_fine(tmp_path: Path) -> None:
    # The state folder readable (not writable) by others, as a home folder often is: the key
    # folder inside is still the service's alone.
    state_dir = tmp_path / "state"
    load_keyring(config(state_dir), "ES256")
    state_dir.chmod(0o755)
    assert load_keyring(config(state_dir), "ES256").current.signer is not None


def test_a_new_state_folder_is_made_private(tmp_path: Path) -> None:
    state_dir = tmp_path / "a" / "state"
    load_keyring(config(state_dir), "ES256")
    assert stat.S_IMODE(state_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((state_dir / "keys").stat().st_mode) == 0o700


@pytest.mark.parametrize(
    ("mode", "refused"),
    [
        (0o600, None),
        (0o400, None),
        (0o640, None),  # a Kubernetes Secret with fsGroup: the service's group reads it
        (0o440, None),
        (0o644, "chmod o-r"),
        (0o444, "chmod o-r"),
        (0o660, "chmod go-w"),
        (0o602, "chmod go-w"),
    ],
)
def test_a_configured_private_key_file_others_can_read_or_change(
    tmp_path: Path, mode: int, refused: str | None
) -> None:
    key_file = tmp_path / "signing.pem"
    key_file.write_bytes(generate_private_key("ES256"))
    key_file.chmod(mode)
    settings = config(tmp_path, SIGNING_KEY_FILE=str(key_file))
    if refused is None:
        assert load_keyring(settings, "ES256").current.signer is not None
        return
    with pytest.raises(ImproperlyConfigured) as error:
        load_keyring(settings, "ES256")
    assert f"SUMSERVICE_JWT_PRIVATE_KEY_FILE {key_file}" in str(error.value)
    assert f"Fix: {refused} {key_file}" in str(error.value)


def test_previous_keys_file_public_may_be_read_not_changed(tmp_path: Path) -> None:
    previous = tmp_path / "previous.pem"
    previous.write_text(public_pem(generate_private_key("ES256")))
    previous.chmod(0o644)
    settings = config(tmp_path, PREVIOUS_KEYS_FILE=str(previous))
    assert len(load_keyring(settings, "ES256").previous) == 1
    previous.chmod(0o664)
    with pytest.raises(ImproperlyConfigured, match="can be written by other users"):
        load_keyring(settings, "ES256")
