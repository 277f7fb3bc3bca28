"""What the service publishes as a token issuer: its OIDC discovery document and its keys."""

from __future__ import annotations

from typing import Any

from api.tokens import REQUIRED_CLAIMS, KeyRingTokenBackend

# Where the documents live, below the issuer (OIDC Discovery 1.0 section 4).
DISCOVERY_PATH = ".well-known/openid-configuration"
JWKS_PATH = ".well-known/jwks.json"

# Far shorter than the token lifetime a retired key stays published, so a cached set never lacks
# a key whose tokens are still valid (docs/tokens.md, "GET /.well-known/jwks.json").
JWKS_MAX_AGE = 300
# The discovery document changes only with the configuration (a redeploy).
DISCOVERY_MAX_AGE = 3600


def discovery_document(backend: KeyRingTokenBackend) -> dict[str, Any]:
    """The OpenID Provider metadata (OIDC Discovery 1.0 section 3) of this token issuer.

    Only what is true of this service is claimed: it has no authorization endpoint, no user info
    endpoint and no scopes, so those members are left out rather than invented.
    """
    issuer = backend.issuer
    # Discovery section 4: a trailing slash is dropped before a path is appended.
    base = issuer.rstrip("/")
    return {
        # Exactly the tokens' `iss`: verifiers compare the two as strings.
        "issuer": issuer,
        "jwks_uri": f"{base}/{JWKS_PATH}",
        "token_endpoint": f"{base}/auth",
        "id_token_signing_alg_values_supported": [backend.algorithm],
        "subject_types_supported": ["public"],
        # /auth answers an access token directly, with no authorization code or ID token step.
        "response_types_supported": ["token"],
        # A username and a password for a token: the password grant (RFC 6749 section 4.3) in
        # substance, though /auth takes them as JSON, not as a form with `grant_type`.
        "grant_types_supported": ["password"],
        # Clients do not authenticate themselves to /auth (RFC 8414's registered value "none").
        "token_endpoint_auth_methods_supported": ["none"],
        # Every token carries these, and /sum refuses one that lacks any of them.
        "claims_supported": list(REQUIRED_CLAIMS),
    }
