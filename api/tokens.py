"""The access token: SimpleJWT's, signed with the key ring and named by its key's `kid`."""

from __future__ import annotations

from functools import cache
from typing import Any

import jwt
from django.conf import settings
from django.utils.translation import gettext_lazy as _
from rest_framework_simplejwt.backends import TokenBackend
from rest_framework_simplejwt.exceptions import TokenBackendError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import AccessToken

from api.keys import KeyRing, load_keyring


class KeyRingTokenBackend(TokenBackend):
    """SimpleJWT's backend, signing with the ring's current key and verifying with the key the
    token's `kid` names, so that tokens signed before a rotation stay valid until they expire.

    Verification still allows only the configured algorithm: `alg: none`, and HS256 tokens
    "signed" with a public key (algorithm confusion), are refused by PyJWT before any key is used.
    """

    def __init__(self, keyring: KeyRing, **options: Any) -> None:
        super().__init__(keyring.current.algorithm, **options)
        self.keyring = keyring

    def encode(self, payload: dict[str, Any]) -> str:
        claims = {**payload, "iss": self.issuer, "aud": self.audience}
        key = self.keyring.current
        return jwt.encode(claims, key.signer, algorithm=key.algorithm, headers={"kid": key.kid})

    def get_verifying_key(self, token: Any) -> Any:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError as error:
            raise TokenBackendError(_("Token is invalid")) from error
        key = self.keyring.find(kid)
        if key is None:
            raise TokenBackendError(_("Token is signed by an unknown key"))
        return key.verifier


@cache
def token_backend() -> KeyRingTokenBackend:
    """The process's backend, built once from the settings (keys are read at the first use)."""
    return KeyRingTokenBackend(
        load_keyring(settings.SUMSERVICE, api_settings.ALGORITHM),
        audience=api_settings.AUDIENCE,
        issuer=api_settings.ISSUER,
        leeway=api_settings.LEEWAY,
    )


class SumAccessToken(AccessToken):
    """An access token whose subject (`sub`) is a username, with no user row behind it."""

    @property
    def token_backend(self) -> KeyRingTokenBackend:
        return token_backend()

    @classmethod
    def for_subject(cls, subject: str) -> SumAccessToken:
        token = cls()
        token[api_settings.USER_ID_CLAIM] = subject
        return token
