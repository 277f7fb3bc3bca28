"""Bearer-token authentication from the token alone: no database lookup per request."""

from __future__ import annotations

from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.authentication import JWTStatelessUserAuthentication


class BearerTokenAuthentication(JWTStatelessUserAuthentication):
    """SimpleJWT's stateless authentication, accepting the scheme word in any letter case
    (RFC 7235 section 2.1: auth schemes are case-insensitive); SimpleJWT compares it exactly."""

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

    def authenticate_header(self, request) -> str:
        return f'Bearer realm="{self.www_authenticate_realm}"'
