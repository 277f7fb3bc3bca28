"""What the key rotation commands share: where the keys are, and refusing when they are not
in the state folder (keys from the environment are rotated by changing the environment)."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import CommandError
from rest_framework_simplejwt import settings as simplejwt_settings

from api.keys import SYMMETRIC_ALGORITHMS, signing_key_configured, state_key_dir

# Where the procedures are written down, once; the commands' messages point there.
ROTATION_DOCS = 'docs/tokens.md, "Rotating the signing key"'

ENV_PROCEDURE = f"""\
The signing key comes from SUMSERVICE_JWT_PRIVATE_KEY or SUMSERVICE_JWT_PRIVATE_KEY_FILE: rotate \
it by changing that configuration on every replica, in three steps with a roll out after each \
(publish the new key in SUMSERVICE_JWT_PREVIOUS_KEYS, sign with it, drop the old key). The steps \
and when each may start: {ROTATION_DOCS}, "Keys from the configuration"."""

HMAC_PROCEDURE = """\
SUMSERVICE_JWT_ALGORITHM is {algorithm}: tokens are signed with the shared secret \
SUMSERVICE_JWT_SECRET, and there is no key in the state folder to rotate. Changing the secret on \
every instance makes every token issued under the old one invalid at once; to rotate without \
that, switch to ES256 or RS256 ({docs})."""


def algorithm() -> str:
    return simplejwt_settings.api_settings.ALGORITHM


def state_folder_keys() -> Path:
    """The state folder's key directory, or CommandError when the keys are not kept there."""
    if algorithm() in SYMMETRIC_ALGORITHMS:
        raise CommandError(HMAC_PROCEDURE.format(algorithm=algorithm(), docs=ROTATION_DOCS))
    if signing_key_configured(settings.SUMSERVICE):
        raise CommandError(ENV_PROCEDURE)
    return state_key_dir(settings.SUMSERVICE)
