"""Bearer-token authentication from the token alone: no database lookup per request."""

from __future__ import annotations

from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.authentication import JWTStatelessUserAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken
from rest_framework_simplejwt.tokens import Token

from api.tokens import token_backend


class BearerTokenAuthentication(JWTStatelessUserAuthentication):
    """SimpleJWT's stateless authentication, accepting the scheme word in any letter case
    (RFC 7235 section 2.1: auth schemes are case-insensitive); SimpleJWT compares it exactly.
    Tokens verified recently are recognised without a second signature check (the token
    backend's VerifiedTokens).
    """

    www_authenticate_realm = "sumservice"
    scheme = b"bearer"

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
        backend = token_backend()
        verified = backend.verified_tokens
        token = verified.get(raw_token, backend.get_leeway().total_seconds())
        if token is None:
            # The backend refuses a token without a subject (REQUIRED_CLAIMS), so every token
            # verified here is one get_user takes.
            try:
                token = super().get_validated_token(raw_token)
            except InvalidToken as error:
                # One token class: its reason as the detail, rather than SimpleJWT's "Given
                # token not valid for any token type" with the reason in a list beside it.
                reasons = [message["message"] for message in error.detail.get("messages", ())]
                if len(reasons) == 1:
                    raise InvalidToken(reasons[0]) from error
                raise
            verified.put(raw_token, token)
        return token
