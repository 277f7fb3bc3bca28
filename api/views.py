"""HTTP endpoints: each view parses, calls, answers."""

from __future__ import annotations

import hashlib

from django.conf import settings
from rest_framework.exceptions import MethodNotAllowed, ParseError, UnsupportedMediaType
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.views import TokenViewBase

from api import metrics
from api.authentication import BearerTokenAuthentication
from api.exceptions import NumberTooLarge
from api.oidc import DISCOVERY_MAX_AGE, JWKS_MAX_AGE, discovery_document
from api.parsers import RawBody, RawJSONParser
from api.serializers import TokenObtainSerializer
from api.summing import InvalidDocumentError, NumberTooLargeError, canonical_sum
from api.throttling import AuthRateThrottle, SumRateThrottle
from api.tokens import token_backend


def require_content_type(request: Request) -> None:
    """DRF skips parsing, and so the 415, when a body comes without a Content-Type."""
    if int(request.META.get("CONTENT_LENGTH") or 0) and not request.content_type:
        raise UnsupportedMediaType(
            media_type="",
            detail="The request has a body but no Content-Type: send application/json.",
        )


class TokenObtainView(TokenViewBase):
    """POST /auth: a username and a password in, a signed access token out (OAuth 2 shape)."""

    serializer_class = TokenObtainSerializer
    throttle_classes = [AuthRateThrottle]
    # Two short strings: a larger body is refused before it is read (api.middleware).
    max_body_bytes_setting = "AUTH_MAX_BODY_BYTES"

    def post(self, request: Request, *args, **kwargs) -> Response:
        require_content_type(request)
        response = super().post(request, *args, **kwargs)
        # RFC 6749 section 5.1: responses carrying tokens must not be cached.
        response["Cache-Control"] = "no-store"
        response["Pragma"] = "no-cache"
        return response


class TokenRequired(IsAuthenticated):
    """A valid token for POST; OPTIONS (a CORS preflight, which carries no credentials) is free."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        return request.method == "OPTIONS" or super().has_permission(request, view)


class SumView(APIView):
    """POST /sum: any JSON document in, the SHA-256 of the exact sum of its numbers out."""

    authentication_classes = [BearerTokenAuthentication]
    permission_classes = [TokenRequired]
    parser_classes = [RawJSONParser]
    throttle_classes = [SumRateThrottle]

    def perform_authentication(self, request: Request) -> None:
        # A wrong method is wrong whoever sends it: 405 before authentication (and after content
        # negotiation, so a browser still gets the browsable page).
        if request.method not in self.allowed_methods:
            raise MethodNotAllowed(request.method)
        super().perform_authentication(request)

    def post(self, request: Request) -> Response:
        require_content_type(request)
        body = request.data
        # DRF's stand-in for an empty body is an empty dict
        document = body.take() if isinstance(body, RawBody) else b""
        metrics.SUM_BODY_BYTES.observe(len(document))
        limits = settings.SUMSERVICE
        try:
            total = canonical_sum(
                document,
                max_number_length=limits["MAX_NUMBER_LENGTH"],
                max_exponent=limits["MAX_EXPONENT"],
            )
        except InvalidDocumentError as error:
            raise ParseError(str(error)) from None
        except NumberTooLargeError as error:
            raise NumberTooLarge(str(error)) from None
        return Response({"sha256": hashlib.sha256(total.encode()).hexdigest(), "sum": total})


class HealthView(APIView):
    """GET /healthz: for load balancers and container health checks; no authentication."""

    def get(self, request: Request) -> Response:
        return Response({"status": "ok"})


class OpenIDConfigurationView(APIView):
    """GET /.well-known/openid-configuration: where the issuer's keys and token endpoint are."""

    def get(self, request: Request) -> Response:
        response = Response(discovery_document(token_backend()))
        response["Cache-Control"] = f"public, max-age={DISCOVERY_MAX_AGE}"
        return response


class JWKSView(APIView):
    """GET /.well-known/jwks.json: the public keys that verify the tokens (RFC 7517), the
    current one first. Empty with HS256: a shared secret is never published."""

    def get(self, request: Request) -> Response:
        response = Response(token_backend().keyring.jwks())
        response["Cache-Control"] = f"public, max-age={JWKS_MAX_AGE}"
        return response
