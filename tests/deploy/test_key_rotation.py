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

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.liveserver import LiveServer
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
