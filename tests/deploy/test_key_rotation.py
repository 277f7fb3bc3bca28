"""The key rotation docs/tokens.md prescribes ("Keys from the configuration"), across replicas
restarted one by one.

1. every replica accepts the new key (SUMSERVICE_JWT_PREVIOUS_KEYS), still signing with the old;
2. every replica signs with the new key, still accepting the old;
3. after the token lifetime, the old key goes.

While step 2 rolls out, replicas at steps 1 and 2 run side by side behind one balancer: each
must accept the other's tokens. A replica still at step 0 would not, which is why step 1 must
be complete everywhere before step 2 starts.
"""

from __future__ import annotations

import re
import stat
import subprocess
from pathlib import Path

import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from api.keys import load_keyring
from tests.liveserver import ROOT, LiveServer
from tests.utils import get_token, post_sum


def new_key() -> tuple[str, str]:
    """A private key PEM and its public key PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public.decode()


def replica(signing: str, previous: str = "") -> LiveServer:
    env = {
        "SUMSERVICE_JWT_PRIVATE_KEY": signing,
        "SUMSERVICE_JWT_PREVIOUS_KEYS": previous,
        "SUMSERVICE_ISSUER": "https://sum.example.com",
    }
    return LiveServer(env=env, workers=1)


def accepts(server: LiveServer, token: str) -> bool:
    status = post_sum(server, b"[1, 2]", token, timeout=15).status_code
    assert status in (200, 401), status
    return status == 200


def test_replicas_mid_rotation_accept_each_others_tokens():
    old, old_public = new_key()
    new, new_public = new_key()
    with (
        replica(old) as step0,
        replica(old, previous=new_public) as step1,
        replica(new, previous=old_public) as step2,
        replica(new) as step3,
    ):
        from_step1, from_step2 = get_token(step1), get_token(step2)
        # Mid-rotation, in both directions.
        assert accepts(step2, from_step1) and accepts(step1, from_step2)
        # Old tokens stay good through step 2; the new key was accepted before it signed.
        assert accepts(step1, get_token(step0)) and accepts(step2, get_token(step0))
        # Skipping step 1: a replica still at step 0 refuses the new key's tokens.
        assert not accepts(step0, from_step2)
        # Step 3 is for after the lifetime: by then no token of the old key is still valid.
        assert not accepts(step3, from_step1) and accepts(step3, from_step2)
        # Each replica's start log names the keys it signs with and accepts.
        current, accepted = requests.get(step1.url + "/.well-known/jwks.json", timeout=5).json()[
            "keys"
        ]
        assert (
            f"Signing tokens with key {current['kid']}; previous keys still accepted:"
            f" {accepted['kid']}\n" in step1.log()
        )


def compose_rotation_steps() -> list[str]:
    """The shell block docs/tokens.md gives for the key files of the Compose deployment (run in
    deploy/secrets): what comes before step 1, and each step."""
    text = (ROOT / "docs" / "tokens.md").read_text()
    (block,) = re.findall(r"```sh\n(cd deploy/secrets\n.*?)```", text, re.DOTALL)
    return re.split(r"^(?=# \d\. )", block.removeprefix("cd deploy/secrets\n"), flags=re.MULTILINE)


def kids(signing: Path, previous: Path | None = None) -> tuple[str, list[str]]:
    """The signing key's kid and the previous keys', as a replica reading the files loads them."""
    config = {
        "SIGNING_KEY": "",
        "SIGNING_KEY_FILE": str(signing),
        "PREVIOUS_KEYS": "",
        "PREVIOUS_KEYS_FILE": str(previous or ""),
    }
    keyring = load_keyring(config, "ES256")
    return keyring.current.kid, [key.kid for key in keyring.previous]


def test_the_compose_key_rotation_commands_keep_the_files_readable_by_the_service(tmp_path):
    """Run as docs/tokens.md says, on the files deploy/make-keys.sh makes: each step changes
    the keys as the rotation needs, and leaves the files' group and read-only mode as they were
    (written anew by openssl, or left writable, the service could not, or would not, read them)."""
    secrets = tmp_path / "secrets"
    subprocess.run([ROOT / "deploy" / "make-keys.sh", secrets], check=True, capture_output=True)
    files = [secrets / "signing-key.pem", secrets / "previous-keys.pem"]
    modes = {path: (stat.S_IMODE(path.stat().st_mode), path.stat().st_gid) for path in files}
    assert all(mode == 0o440 for mode, _ in modes.values())
    old, _ = kids(*files)

    def run(commands: str) -> None:
        subprocess.run(["bash", "-euo", "pipefail", "-c", commands], cwd=secrets, check=True)
        for path in files:
            assert (stat.S_IMODE(path.stat().st_mode), path.stat().st_gid) == modes[path]

    before, publish, sign, drop = compose_rotation_steps()
    run(before)
    new, _ = kids(secrets / "new.pem")
    run(publish)
    assert kids(*files) == (old, [new])
    run(sign)
    assert kids(*files) == (new, [old]) and not (secrets / "new.pem").exists()
    run(drop)
    assert kids(*files) == (new, [])
