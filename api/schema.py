"""The OpenAPI description of the API (drf-spectacular), and the pages that show it.

The views say what they do; this module says how that looks in the schema, through
drf-spectacular's own extension points: an OpenApiAuthenticationExtension for the Bearer scheme,
an OpenApiViewExtension per view with its request, answers and headers, and two postprocessing
hooks (the plain Django views, and required request bodies). The schema is fuzzed against the
running service (tests/e2e/test_schemathesis.py), so every status and body here is one the
service really answers.
"""

from __future__ import annotations

import threading
from typing import Any

from django.core.signals import setting_changed
from django.dispatch import receiver
from django.urls import NoReverseMatch, reverse
from drf_spectacular.extensions import OpenApiAuthenticationExtension, OpenApiViewExtension
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from drf_spectacular.views import (
    SpectacularJSONAPIView,
    SpectacularRedocView,
    SpectacularSwaggerSplitView,
    SpectacularYAMLAPIView,
)
from rest_framework.views import APIView

from api import views
from api.authentication import BearerTokenAuthentication
from api.serializers import (
    PASSWORD_MAX_LENGTH,
    UNSAFE_USERNAME_CHARACTERS,
    USERNAME_MAX_LENGTH,
)

# --- Bodies ------------------------------------------------------------------------------------

ERROR = {
    "type": "object",
    "description": "What went wrong, in words a person can act on.",
    "properties": {"detail": {"type": "string"}},
    "required": ["detail"],
}

# /auth's 400: DRF's `{"detail": ...}` for a body that is not JSON, or a list of messages per
# field at fault (`non_field_errors` for a body that is not an object).
TOKEN_REQUEST_ERRORS = {
    "type": "object",
    "description": (
        "`detail` when the body is not JSON; otherwise a list of messages for each field at fault"
        ' (`non_field_errors` when the body is not a JSON object), e.g. `{"username": ["This'
        ' field may not be blank."]}`.'
    ),
    "properties": {"detail": {"type": "string"}},
    "additionalProperties": {"type": "array", "items": {"type": "string"}},
    "minProperties": 1,
}

# The whitespace Python's str.strip() trims (what str.isspace() calls space), spelled out: the
# `\s` of a pattern means other sets in other engines (ECMA's, which OpenAPI names, has U+FEFF
# and lacks U+001C-U+001F and U+0085).
SPACE = r"\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
# What a username may not hold anywhere: DRF's CharField refuses NUL (a password may hold it).
FORBIDDEN = r"\x00"
# The username is trimmed, and must then be 1 to USERNAME_MAX_LENGTH characters: it starts and
# ends with a non-space, with at most 2 fewer between. (A maxLength would count the spaces
# trimmed.)
# Nor, inside it, control, line or paragraph separator or bidi formatting characters (the
# serializer's rule; those among SPACE may still surround it, trimmed).
UNSAFE = FORBIDDEN + UNSAFE_USERNAME_CHARACTERS
USERNAME_PATTERN = (
    rf"^[{SPACE}]*[^{SPACE}{UNSAFE}]"
    rf"(?:[^{UNSAFE}]{{0,{USERNAME_MAX_LENGTH - 2}}}[^{SPACE}{UNSAFE}])?[{SPACE}]*$"
)
# Taken as sent: anything but only whitespace (a search: one character that is not a space).
PASSWORD_PATTERN = rf"[^{SPACE}]"

TOKEN_REQUEST = {
    "type": "object",
    "properties": {
        "username": {
            "type": "string",
            "pattern": USERNAME_PATTERN,
            "description": (
                "Any name: it becomes the token's subject (`sub`), trimmed of surrounding"
                f" whitespace, and must then be 1 to {USERNAME_MAX_LENGTH} characters."
            ),
            "example": "alice",
        },
        "password": {
            "type": "string",
            "minLength": 1,
            "maxLength": PASSWORD_MAX_LENGTH,
            "pattern": PASSWORD_PATTERN,
            "writeOnly": True,
            "description": (
                "Not checked against any store, and not kept; not empty or only whitespace."
            ),
            "example": "secret",
        },
    },
    "required": ["username", "password"],
}

JWT_PATTERN = r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$"

TOKEN_RESPONSE = {
    "type": "object",
    "description": "An OAuth 2 token response (RFC 6749 section 5.1).",
    "properties": {
        "access_token": {
            "type": "string",
            "pattern": JWT_PATTERN,
            "description": (
                "A signed JWT (claims `iss`, `sub`, `aud`, `iat`, `exp`, `jti`; header `kid`):"
                " send it to `/sum` as `Authorization: Bearer <access_token>`."
            ),
        },
        "token_type": {"type": "string", "enum": ["Bearer"]},
        "expires_in": {
            "type": "integer",
            "minimum": 1,
            "description": "Seconds the token stays valid.",
        },
    },
    "required": ["access_token", "token_type", "expires_in"],
}

# The canonical text of a sum: an integer without leading zeros (never -0), or a decimal with
# integer digits, a point and fraction digits without trailing zeros; never an exponent.
SUM_PATTERN = r"^(?:0|-?[1-9][0-9]*|-?(?:0|[1-9][0-9]*)\.[0-9]*[1-9])$"

SUM_RESPONSE = {
    "type": "object",
    "properties": {
        "sha256": {
            "type": "string",
            "pattern": "^[0-9a-f]{64}$",
            "description": "SHA-256 of `sum` (its ASCII bytes), in lowercase hex.",
        },
        "sum": {
            "type": "string",
            "pattern": SUM_PATTERN,
            "description": "The exact sum of every number in the document, in canonical form.",
        },
    },
    "required": ["sha256", "sum"],
}

ANY_JSON_DOCUMENT = {
    "description": (
        "Any JSON document: object, array, number, string, `true`, `false` or `null`, nested to"
        " any depth. Every number in it is summed exactly (decimal, never binary floating"
        " point); strings, booleans, null and keys are not."
    ),
}

HEALTH = {
    "type": "object",
    "properties": {"status": {"type": "string", "enum": ["ok"]}},
    "required": ["status"],
}

OPENID_CONFIGURATION = {
    "type": "object",
    "description": "OpenID Provider metadata (OIDC Discovery 1.0 section 3).",
    "properties": {
        "issuer": {"type": "string", "description": "Exactly the tokens' `iss`."},
        "jwks_uri": {"type": "string"},
        "token_endpoint": {"type": "string"},
        **{
            name: {"type": "array", "items": {"type": "string"}}
            for name in (
                "id_token_signing_alg_values_supported",
                "subject_types_supported",
                "response_types_supported",
                "grant_types_supported",
                "token_endpoint_auth_methods_supported",
                "claims_supported",
            )
        },
    },
    "required": [
        "issuer",
        "jwks_uri",
        "token_endpoint",
        "id_token_signing_alg_values_supported",
        "subject_types_supported",
        "response_types_supported",
    ],
}

JWKS = {
    "type": "object",
    "description": (
        "The public keys that verify the tokens (RFC 7517), the signing key first; empty with"
        " HS256, whose shared secret is never published."
    ),
    "properties": {
        "keys": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "kid": {"type": "string"},
                    "kty": {"type": "string", "enum": ["EC", "RSA"]},
                    "alg": {"type": "string"},
                    "use": {"type": "string", "enum": ["sig"]},
                },
                "required": ["kid", "kty", "alg", "use"],
            },
        }
    },
    "required": ["keys"],
}

# --- Answers -----------------------------------------------------------------------------------


def error(description: str) -> OpenApiResponse:
    return OpenApiResponse(ERROR, description=description)


NOT_ALLOWED = error("Any other method (the `Allow` header lists those there are).")
TOO_LARGE = error("The body is over the size limit (`SUMSERVICE_MAX_BODY_BYTES`).")
NOT_JSON = error("The body is not `application/json` (or has a body but no Content-Type).")
THROTTLED = error("Over the rate limit; `Retry-After` says when to try again.")
NOT_ACCEPTABLE = error("An `Accept` header that neither JSON nor the browsable API's HTML meets.")
UNKNOWN_FORMAT = error("A `?format=` other than `json`, or `api` (the browsable API's page).")


def header(name: str, description: str, statuses: list[int]) -> OpenApiParameter:
    return OpenApiParameter(
        name,
        str,
        OpenApiParameter.HEADER,
        description=description,
        response=statuses,
        required=True,
    )


ALLOW = header("Allow", "The methods this path answers.", [405])
RETRY_AFTER = header(
    "Retry-After", "Seconds to wait before the rate limit lets a request in.", [429]
)


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """`Authorization: Bearer <token>`, the token from POST /auth (RFC 6750)."""

    target_class = BearerTokenAuthentication
    name = "bearerAuth"
    priority = 1  # over drf-spectacular's own for SimpleJWT, which the class derives from

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "The `access_token` from `POST /auth`.",
        }


def described(view: type[APIView], **methods: Any) -> type[APIView]:
    """A subclass of `view` carrying the schema of its methods (drf-spectacular generates the
    schema from it instead of the view itself; the view that serves is untouched)."""
    return extend_schema_view(**methods)(type(view.__name__, (view,), {}))


class TokenObtainSchema(OpenApiViewExtension):
    target_class = views.TokenObtainView

    def view_replacement(self) -> type[APIView]:
        return described(
            self.target_class,
            post=extend_schema(
                operation_id="obtain_token",
                summary="Get an access token",
                description=(
                    "Trade a username and a password (not checked against any store) for a"
                    " signed JWT, valid for `expires_in` seconds."
                ),
                tags=["tokens"],
                request={"application/json": TOKEN_REQUEST},
                responses={
                    200: OpenApiResponse(TOKEN_RESPONSE, description="The token."),
                    400: OpenApiResponse(
                        TOKEN_REQUEST_ERRORS,
                        description=(
                            "The body is not JSON or not an object, or a field is missing, not a"
                            " string, blank or too long, or the username holds control, line or"
                            " paragraph separator or bidi formatting characters."
                        ),
                    ),
                    404: UNKNOWN_FORMAT,
                    405: NOT_ALLOWED,
                    406: NOT_ACCEPTABLE,
                    413: error(
                        "The body is over `/auth`'s size limit (`SUMSERVICE_AUTH_MAX_BODY_BYTES`,"
                        " 64 KiB by default)."
                    ),
                    415: NOT_JSON,
                    429: THROTTLED,
                },
                parameters=[
                    header("Cache-Control", "`no-store`: never cache a token.", [200]),
                    RETRY_AFTER,
                    ALLOW,
                ],
                examples=[
                    OpenApiExample(
                        "alice",
                        value={"username": "alice", "password": "secret"},
                        request_only=True,
                    )
                ],
            ),
        )


class SumSchema(OpenApiViewExtension):
    target_class = views.SumView

    def view_replacement(self) -> type[APIView]:
        return described(
            self.target_class,
            post=extend_schema(
                operation_id="sum",
                summary="Sum every number in a JSON document",
                description=(
                    "The exact sum of every number in the document, in canonical form, and the"
                    " SHA-256 of that text."
                ),
                tags=["sum"],
                request={"application/json": ANY_JSON_DOCUMENT},
                responses={
                    200: OpenApiResponse(
                        SUM_RESPONSE,
                        description="The sum and its hash.",
                        examples=[
                            OpenApiExample(
                                "[1, 2, 3, 4]",
                                value={
                                    "sha256": "4a44dc15364204a80fe80e9039455cc1"
                                    "608281820fe2b24f1e5233ade6af1dd5",
                                    "sum": "10",
                                },
                            )
                        ],
                    ),
                    400: error(
                        "The body is not one valid JSON document (empty, truncated, trailing"
                        " data, NaN or Infinity, not UTF-8)."
                    ),
                    401: error(
                        "No token, another scheme, or a token that is malformed, tampered,"
                        " expired, not yet valid, or of another key, issuer or audience."
                    ),
                    404: UNKNOWN_FORMAT,
                    405: NOT_ALLOWED,
                    406: NOT_ACCEPTABLE,
                    413: TOO_LARGE,
                    415: NOT_JSON,
                    422: error(
                        "A number literal is over `SUMSERVICE_MAX_NUMBER_LENGTH` characters, or"
                        " its written exponent beyond `SUMSERVICE_MAX_EXPONENT`."
                    ),
                    429: THROTTLED,
                },
                parameters=[
                    header(
                        "WWW-Authenticate",
                        'The scheme to use (RFC 6750): `Bearer realm="sumservice"`, with'
                        ' `error="invalid_token"` when a token was sent.',
                        [401],
                    ),
                    RETRY_AFTER,
                    ALLOW,
                ],
                examples=[OpenApiExample("numbers", value=[1, 2, 3, 4], request_only=True)],
            ),
        )


# What a GET endpoint answers besides its 200.
READ_ONLY = {404: UNKNOWN_FORMAT, 405: NOT_ALLOWED, 406: NOT_ACCEPTABLE}


class HealthSchema(OpenApiViewExtension):
    target_class = views.HealthView

    def view_replacement(self) -> type[APIView]:
        return described(
            self.target_class,
            get=extend_schema(
                operation_id="health",
                summary="Health check",
                description="For load balancers and container health checks.",
                tags=["operations"],
                responses={200: OpenApiResponse(HEALTH, description="Serving."), **READ_ONLY},
                parameters=[ALLOW],
            ),
        )


def cached(seconds: int) -> OpenApiParameter:
    return header("Cache-Control", f"`public, max-age={seconds}`.", [200])


class OpenIDConfigurationSchema(OpenApiViewExtension):
    target_class = views.OpenIDConfigurationView

    def view_replacement(self) -> type[APIView]:
        from api.oidc import DISCOVERY_MAX_AGE

        return described(
            self.target_class,
            get=extend_schema(
                operation_id="openid_configuration",
                summary="OIDC discovery document",
                description="Where the issuer's keys and token endpoint are.",
                tags=["tokens"],
                responses={
                    200: OpenApiResponse(OPENID_CONFIGURATION, description="Metadata."),
                    **READ_ONLY,
                },
                parameters=[cached(DISCOVERY_MAX_AGE), ALLOW],
            ),
        )


class JWKSSchema(OpenApiViewExtension):
    target_class = views.JWKSView

    def view_replacement(self) -> type[APIView]:
        from api.oidc import JWKS_MAX_AGE

        return described(
            self.target_class,
            get=extend_schema(
                operation_id="jwks",
                summary="The public keys that verify tokens",
                description="Verify a token with the key its header's `kid` names.",
                tags=["tokens"],
                responses={200: OpenApiResponse(JWKS, description="A JWK Set."), **READ_ONLY},
                parameters=[cached(JWKS_MAX_AGE), ALLOW],
            ),
        )


METRICS_OPERATION = {
    "get": {
        "operationId": "metrics",
        "summary": "Metrics, in Prometheus' text format",
        "description": (
            "Requests by endpoint, method and status, latencies, tokens issued, `/sum` body"
            " sizes, rate-limit refusals, the server's own refusals made before Django (by"
            " status) and the rate-limit cache's errors, counted over every worker."
        ),
        "tags": ["operations"],
        "security": [{}],
        "responses": {
            "200": {
                "description": "Prometheus' text exposition format.",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            },
            "404": {
                "description": "Metrics are turned off (`SUMSERVICE_METRICS=false`).",
                "content": {"application/json": {"schema": ERROR}},
            },
            "405": {
                "description": "Any method but GET and HEAD (the `Allow` header lists them).",
                "headers": {"Allow": {"required": True, "schema": {"type": "string"}}},
                "content": {"application/json": {"schema": ERROR}},
            },
        },
    }
}


def describe_plain_views(result: dict, generator: Any, request: Any, public: bool) -> dict:
    """Add the endpoints that are plain Django views, which drf-spectacular does not see."""
    try:
        path = reverse("metrics")
    except NoReverseMatch:  # not served by this configuration
        return result
    result["paths"][path] = METRICS_OPERATION
    return result


def require_request_bodies(result: dict, generator: Any, request: Any, public: bool) -> dict:
    """Every request body of this API is required (drf-spectacular marks a body described by a
    schema rather than a serializer as optional)."""
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            if "requestBody" in operation:
                operation["requestBody"]["required"] = True
    return result


# --- The document ------------------------------------------------------------------------------


class SchemaGeneratedOnce(SchemaGenerator):
    """drf-spectacular's generator, keeping the document it generates for the process's life.

    Served public (SERVE_PUBLIC) from the project's URLconf, the document depends on the code
    and the settings alone, not on who asks, and generating it costs ~6-10 ms of a worker (a
    small /sum: ~0.3): an open endpoint must not let anyone spend that at will. Any other
    document (a view given its own URLconf, a private one) is generated on every request.
    Changed Django settings (tests) empty it."""

    _generated: dict | None = None
    _lock = threading.Lock()

    def get_schema(self, request: Any = None, public: bool = False) -> dict:
        own_urls = self.urlconf is not None or self.patterns is not None
        if not public or self.api_version is not None or own_urls:
            return super().get_schema(request, public)
        with self._lock:
            if SchemaGeneratedOnce._generated is None:
                SchemaGeneratedOnce._generated = super().get_schema(request, public)
            return SchemaGeneratedOnce._generated


@receiver(setting_changed)
def _forget_the_generated_schema(**kwargs: Any) -> None:
    SchemaGeneratedOnce._generated = None


class SchemaGeneratedOnceView:
    generator_class = SchemaGeneratedOnce

    def _get_version_parameter(self, request: Any) -> None:
        # The API has one version: drf-spectacular would take any `?version=` (ALLOWED_VERSIONS
        # unset) into the document's info.version, generating it anew for each request.
        return None


class SchemaJSONView(SchemaGeneratedOnceView, SpectacularJSONAPIView):
    """GET /openapi.json"""


class SchemaYAMLView(SchemaGeneratedOnceView, SpectacularYAMLAPIView):
    """GET /openapi.yaml"""


# --- Pages -------------------------------------------------------------------------------------

# The pages may load from this server only: the browser refuses anything else, such as the
# Redocly logo that Redoc's sidebar asks cdn.redoc.ly for (no option of Redoc's turns it off).
# Both UIs set style attributes, and Redoc renders in blob: workers and draws with data: images.
DOCS_CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "worker-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)


class SameOriginPage:
    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        response["Content-Security-Policy"] = DOCS_CONTENT_SECURITY_POLICY
        return response


class SwaggerView(SameOriginPage, SpectacularSwaggerSplitView):
    """GET /docs/: Swagger UI, its script and styles from the sidecar package, served here. The
    split view serves its start-up script as a file of its own (`?script`), so that the page
    needs no inline script."""


class RedocView(SameOriginPage, SpectacularRedocView):
    """GET /redoc/: Redoc, from the sidecar package; the template drops drf-spectacular's
    Google Fonts links."""

    template_name = "api/redoc.html"
