"""The key rotation commands (rotate_signing_key, prune_signing_keys) and the reload that
follows them, in process (tests/e2e/test_oidc.py runs them against a real gunicorn)."""

from __future__ import annotations

from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.test import Client

from api.keys import load_keyring, rotate_state_key
from api.tests.utils import issue_token, post_sum, use_jwt_settings
from api.tokens import reload_token_backend, token_backend
from tests.forge import unverified_part

JWKS = "/.well-known/jwks.json"

# Each test with its own state folder, so its own keys.
pytestmark = pytest.mark.usefixtures("state_dir")


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


def test_rotate_refuses_a_state_key_made_for_another_algorithm(
    settings: Any, state_dir: Path
) -> None:
    rotate_state_key(state_dir / "keys", "RS256")  # a key, and a retired one, for RS256
    before = sorted((path, path.read_bytes()) for path in (state_dir / "keys").rglob("*.pem"))
    with pytest.raises(CommandError) as refused:
        call_command("rotate_signing_key")  # the settings' ES256
    assert "ES256 needs a P-256 elliptic-curve key" in str(refused.value)
    assert f"mv {state_dir / 'keys'} " in str(refused.value)
    assert sorted((path, path.read_bytes()) for path in (state_dir / "keys").rglob("*.pem")) == (
        before
    )


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
