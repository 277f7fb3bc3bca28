"""What the key rotation commands share: where the keys are, and refusing when they are not
in the state folder (keys from the environment are rotated by changing the environment)."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import CommandError
from rest_framework_simplejwt import settings as simplejwt_settings

from api.keys import SYMMETRIC_ALGORITHMS, signing_key_configured, state_key_dir
from api.oidc import JWKS_MAX_AGE

ENV_PROCEDURE = """\
The signing key comes from SUMSERVICE_JWT_PRIVATE_KEY or SUMSERVICE_JWT_PRIVATE_KEY_FILE, so it \
is rotated by changing that configuration on every replica, in three steps (README, \
"Rotating the key"):
  1. Add the new key's PEM to SUMSERVICE_JWT_PREVIOUS_KEYS (or its _FILE) everywhere and roll \
out: every replica now accepts and publishes it, none signs with it yet. Wait until verifiers' \
cached key sets have it too (the JWKS max-age, {jwks_max_age} s).
  2. Make the new key SUMSERVICE_JWT_PRIVATE_KEY and move the old one into \
SUMSERVICE_JWT_PREVIOUS_KEYS everywhere, and roll out: new tokens are signed with the new key.
  3. Once the old key's last tokens have expired (the token lifetime plus leeway after step 2 \
finished on the last replica), remove it from SUMSERVICE_JWT_PREVIOUS_KEYS and roll out."""

HMAC_PROCEDURE = """\
SUMSERVICE_JWT_ALGORITHM is {algorithm}: tokens are signed with the shared secret \
SUMSERVICE_JWT_SECRET, and there is no key in the state folder to rotate. Changing the secret on \
every instance makes every token issued under the old one invalid at once; to rotate without \
that, switch to ES256 or RS256."""


def algorithm() -> str:
    # Through the module: SimpleJWT replaces its settings object when SIMPLE_JWT changes.
    return simplejwt_settings.api_settings.ALGORITHM


def state_folder_keys() -> Path:
    """The state folder's key directory, or CommandError when the keys are not kept there."""
    if algorithm() in SYMMETRIC_ALGORITHMS:
        raise CommandError(HMAC_PROCEDURE.format(algorithm=algorithm()))
    if signing_key_configured(settings.SUMSERVICE):
        raise CommandError(ENV_PROCEDURE.format(jwks_max_age=JWKS_MAX_AGE))
    return state_key_dir(settings.SUMSERVICE)
