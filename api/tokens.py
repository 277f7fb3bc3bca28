"""The access token: SimpleJWT's, signed with the key ring and named by its key's `kid`."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from functools import cache
from typing import Any

import jwt
from django.conf import settings
from django.utils.translation import gettext_lazy as _
from rest_framework_simplejwt import settings as simplejwt_settings
from rest_framework_simplejwt.backends import TokenBackend
from rest_framework_simplejwt.exceptions import (
    TokenBackendError,
    TokenBackendExpiredToken,
    TokenError,
)
from rest_framework_simplejwt.tokens import AccessToken, Token

from api.keys import KeyRing, load_keyring

# SimpleJWT's settings are read through its module everywhere in api/, never as a name imported
# once: SimpleJWT replaces its `api_settings` object when SIMPLE_JWT changes (override_settings).

# Claims every accepted token must carry: those an OIDC ID token requires, and SimpleJWT's.
# PyJWT and SimpleJWT insist on all but `iat`; decode() checks the whole list.
REQUIRED_CLAIMS = ("iss", "sub", "aud", "exp", "iat", "jti")
# NumericDate claims (RFC 7519 section 2): numbers of seconds, here bounded to years 1970-9999,
# which Python's datetime (SimpleJWT's checks) can hold; PyJWT and SimpleJWT crash on others.
TIME_CLAIMS = ("exp", "iat", "nbf")
_LATEST_TIME = 253402300799  # 9999-12-31T23:59:59Z
# Claims the service reads as text.
TEXT_CLAIMS = ("sub", "jti", "token_type")
# The most of PyJWT's reason for a refusal that a 401 repeats.
_REASON_CHARACTERS = 100


def claim_type_error(payload: dict[str, Any]) -> str | None:
    """What is wrong with the types of the payload's claims, or None: checked before anything
    else reads them, so that a token with odd ones is refused (401), never a crash."""
    for claim in TIME_CLAIMS:
        value = payload.get(claim)
        if value is None:
            continue
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not number or not (0 <= value <= _LATEST_TIME):  # also NaN, which compares false
            return f"Token's {claim} claim is not a time in seconds"
    for claim in TEXT_CLAIMS:
        if claim in payload and not isinstance(payload[claim], str):
            return f"Token's {claim} claim is not a string"
    return None


class VerifiedTokens:
    """The last `size` tokens that passed every check, by their exact bytes, with the time
    window in which they stay valid.

    All but a token's time claims depend on its bytes and the backend's keys and settings alone,
    so a token seen again is only checked against the clock; outside its window it is dropped
    and verified in full, for the usual error. Only tokens that passed are kept (garbage cannot
    fill it), the least recently used out first.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._tokens: OrderedDict[bytes, tuple[Token, float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._tokens)

    def __contains__(self, raw_token: bytes) -> bool:
        return raw_token in self._tokens

    def get(self, raw_token: bytes, leeway: float) -> Token | None:
        if not self.size:
            return None
        now = time.time()
        with self._lock:
            entry = self._tokens.get(raw_token)
            if entry is None:
                return None
            token, not_before, expires = entry
            if not_before <= now + leeway and now - leeway < expires:
                self._tokens.move_to_end(raw_token)
                return token
            del self._tokens[raw_token]
            return None

    def put(self, raw_token: bytes, token: Token) -> None:
        if not self.size:
            return
        payload = token.payload
        times = [payload[claim] for claim in ("iat", "nbf") if claim in payload]
        window = (max(times, default=float("-inf")), payload["exp"])
        with self._lock:
            self._tokens[raw_token] = (token, *window)
            if len(self._tokens) > self.size:
                self._tokens.popitem(last=False)


class KeyRingTokenBackend(TokenBackend):
    """SimpleJWT's backend, signing with the ring's current key and verifying with the key the
    token's `kid` names, so that tokens signed before a rotation stay valid until they expire.

    Verification still allows only the configured algorithm: `alg: none`, and HS256 tokens
    "signed" with a public key (algorithm confusion), are refused by PyJWT before any key is used.
    A token without a `kid`, or with one the ring does not hold, is refused before any signature
    check. It owns the cache of the tokens verified with its keys (`verified_tokens`), so a
    backend built anew, with the keys read again, starts with an empty one.
    """

    def __init__(self, keyring: KeyRing, *, cache_size: int, **options: Any) -> None:
        super().__init__(keyring.current.algorithm, **options)
        self.keyring = keyring
        self.verified_tokens = VerifiedTokens(cache_size)

    def encode(self, payload: dict[str, Any]) -> str:
        claims = {**payload, "iss": self.issuer, "aud": self.audience}
        key = self.keyring.current
        return jwt.encode(claims, key.signer, algorithm=key.algorithm, headers={"kid": key.kid})

    def get_verifying_key(self, token: Any) -> Any:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError as error:
            raise TokenBackendError(_invalid(error)) from error
        key = self.keyring.find(kid)
        if key is None:
            raise TokenBackendError(_("Token is signed by an unknown key"))
        return key.verifier

    def decode(self, token: Any, verify: bool = True) -> dict[str, Any]:
        # PyJWT checks the time claims while it verifies: their types are checked first, on
        # the payload as sent (a refusal that needs no signature).
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as error:
            raise TokenBackendError(_invalid(error)) from error
        problem = claim_type_error(unverified)
        if problem:
            raise TokenBackendError(problem)
        try:
            payload = super().decode(token, verify=verify)
        except TokenBackendExpiredToken:
            raise
        except TokenBackendError as error:
            # SimpleJWT says "Token is invalid" of every refusal; PyJWT's reason (another
            # issuer, not yet valid, a signature that fails) is one a person can act on.
            if isinstance(error.__cause__, jwt.InvalidTokenError):
                raise TokenBackendError(_invalid(error.__cause__)) from error
            raise
        if verify:
            missing = [claim for claim in REQUIRED_CLAIMS if payload.get(claim) is None]
            if missing:
                raise TokenBackendError(f"Token lacks the claims: {', '.join(missing)}")
        return payload


def _invalid(reason: jwt.PyJWTError) -> str:
    """PyJWT's reason, cut short: some quote the token ('Unsupported critical extension: ...'),
    which need not come back whole."""
    text = str(reason)
    if len(text) > _REASON_CHARACTERS:
        text = text[:_REASON_CHARACTERS] + "..."
    return f"Token is invalid: {text}"


def load_token_backend() -> KeyRingTokenBackend:
    """A backend built from the settings now, reading the keys (and making the state key)."""
    jwt_settings = simplejwt_settings.api_settings
    return KeyRingTokenBackend(
        load_keyring(settings.SUMSERVICE, jwt_settings.ALGORITHM),
        audience=jwt_settings.AUDIENCE,
        issuer=jwt_settings.ISSUER,
        leeway=jwt_settings.LEEWAY,
        cache_size=settings.SUMSERVICE["TOKEN_CACHE_SIZE"],
    )


@cache
def token_backend() -> KeyRingTokenBackend:
    """The process's backend, built once (gunicorn builds it in the master, before the fork)."""
    return load_token_backend()


def reload_token_backend() -> KeyRingTokenBackend:
    """Read the keys again, after a rotation or a prune (gunicorn's SIGHUP).

    The new keys are loaded before the old backend is dropped: if they cannot be loaded (a
    damaged or unreadable file), this raises and the process keeps signing and verifying as
    before, rather than failing every request.
    """
    load_token_backend()
    token_backend.cache_clear()
    return token_backend()


class SumAccessToken(AccessToken):
    """An access token whose subject (`sub`) is a username, with no user row behind it."""

    def __init__(self, token: Any = None, verify: bool = True) -> None:
        try:
            super().__init__(token, verify)
        except TokenError as error:
            # SimpleJWT replaces the backend's reason with "Token is invalid": keep the reason.
            reason = error.__cause__
            if isinstance(reason, TokenBackendError) and error.args != reason.args:
                raise type(error)(*reason.args) from reason
            raise

    @property
    def token_backend(self) -> KeyRingTokenBackend:
        return token_backend()

    @classmethod
    def for_subject(cls, subject: str) -> SumAccessToken:
        token = cls()
        token[simplejwt_settings.api_settings.USER_ID_CLAIM] = subject
        return token
