"""Bearer-token authentication from the token alone: no database lookup per request."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

from django.conf import settings
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt import settings as simplejwt_settings
from rest_framework_simplejwt.authentication import JWTStatelessUserAuthentication
from rest_framework_simplejwt.tokens import Token

from api.tokens import token_backend


class VerifiedTokens:
    """The last `size` tokens that passed every check, by their exact bytes, with the time
    window in which they stay valid.

    A token's signature, algorithm, key, issuer, audience and type depend on its bytes and the
    token backend (its keys and settings) alone, so a token seen again needs no second ECDSA
    verification: only its time claims are checked again, against the clock of this request.
    The cache is emptied when the backend changes (keys read again: reload_token_backend).
    A token outside its window (expired, or not yet valid) is dropped and goes through the full
    verification, which gives the usual error. Only tokens that passed are kept, so garbage
    cannot fill the cache, and its size is bounded (least recently used out first).
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._tokens: OrderedDict[bytes, tuple[Token, float, float]] = OrderedDict()
        self._lock = threading.Lock()
        self._backend: object = None

    def bind(self, backend: object) -> VerifiedTokens:
        """Tokens verified by `backend` from now on; those of another one are forgotten."""
        if backend is not self._backend:
            with self._lock:
                self._tokens.clear()
                self._backend = backend
        return self

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


class BearerTokenAuthentication(JWTStatelessUserAuthentication):
    """SimpleJWT's stateless authentication, accepting the scheme word in any letter case
    (RFC 7235 section 2.1: auth schemes are case-insensitive); SimpleJWT compares it exactly.
    Tokens verified recently are recognised without a second signature check (VerifiedTokens).
    """

    www_authenticate_realm = "sumservice"
    scheme = b"bearer"
    verified: VerifiedTokens | None = None

    def get_raw_token(self, header: bytes) -> bytes | None:
        parts = header.split()
        if not parts or parts[0].lower() != self.scheme:
            return None  # no credentials of ours: the permission check answers 401
        if len(parts) != 2:
            raise AuthenticationFailed(
                "The Authorization header must be 'Bearer <token>'.",
                code="bad_authorization_header",
            )
        return parts[1]

    def get_validated_token(self, raw_token: bytes) -> Token:
        verified = self.verified_tokens()
        token = verified.get(raw_token, token_backend().get_leeway().total_seconds())
        if token is None:
            token = super().get_validated_token(raw_token)
            # Kept only when get_user will take it too: a recognised token is a user.
            if simplejwt_settings.api_settings.USER_ID_CLAIM in token:
                verified.put(raw_token, token)
        return token

    @classmethod
    def verified_tokens(cls) -> VerifiedTokens:
        if cls.verified is None:
            cls.verified = VerifiedTokens(settings.SUMSERVICE["TOKEN_CACHE_SIZE"])
        return cls.verified.bind(token_backend())
