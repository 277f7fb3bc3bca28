"""HTTP endpoints: each view parses, calls, answers."""

from __future__ import annotations

import hashlib

from django.conf import settings
from rest_framework.exceptions import MethodNotAllowed
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.views import TokenViewBase

from api import metrics
from api.authentication import BearerTokenAuthentication
from api.oidc import DISCOVERY_MAX_AGE, JWKS_MAX_AGE, discovery_document
from api.parsers import RawJSONParser
from api.serializers import TokenObtainSerializer
from api.summing import canonical_sum
from api.throttling import AuthRateThrottle, SumRateThrottle
from api.tokens import token_backend


class MethodCheckedFirst(APIView):
    """Answers a method the view does not serve with 405 before authentication and rate limits:
    a wrong method is wrong whoever sends it, and spends no client's budget."""

    def initial(self, request: Request, *args, **kwargs) -> None:
        # `allowed_methods`, as Django's dispatch() tells them, without building the list.
        method = request.method.lower()
        if method not in self.http_method_names or not hasattr(self, method):
            # The format is known first, so that the 405 is rendered as negotiated (a browser
            # still gets the browsable page).
            self.format_kwarg = self.get_format_suffix(**kwargs)
            raise MethodNotAllowed(request.method)
        super().initial(request, *args, **kwargs)


class RawJSONView(MethodCheckedFirst):
    """A view whose body is one JSON document, handed over unparsed by `document()`."""

    parser_classes = [RawJSONParser]

    @staticmethod
    def document(request: Request) -> memoryview:
        """The body, in place, to be released once read (`with`); empty for no body, for which
        DRF runs no parser."""
        body = request.data  # RawJSONParser's, after the Content-Type check (415)
        return body if request.stream is not None else memoryview(b"")


class TokenObtainView(MethodCheckedFirst, TokenViewBase):
    """POST /auth: a username and a password in, a signed access token out (OAuth 2 shape)."""

    serializer_class = TokenObtainSerializer
    throttle_classes = [AuthRateThrottle]
    # Two short strings: a larger body is refused before it is read (api.middleware).
    max_body_bytes_setting = "AUTH_MAX_BODY_BYTES"

    def post(self, request: Request, *args, **kwargs) -> Response:
        response = super().post(request, *args, **kwargs)
        # RFC 6749 section 5.1: responses carrying tokens must not be cached.
        response["Cache-Control"] = "no-store"
        response["Pragma"] = "no-cache"
        return response


class TokenRequired(IsAuthenticated):
    """A valid token for POST; OPTIONS (a CORS preflight, which carries no credentials) is free."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        return request.method == "OPTIONS" or super().has_permission(request, view)


class SumView(RawJSONView):
    """POST /sum: any JSON document in, the SHA-256 of the exact sum of its numbers out."""

    authentication_classes = [BearerTokenAuthentication]
    permission_classes = [TokenRequired]
    throttle_classes = [SumRateThrottle]

    def perform_authentication(self, request: Request) -> None:
        # DRF authenticates every request here, before the permission that lets OPTIONS through:
        # a token sent with an OPTIONS is not looked at (a bad one would make it a 401).
        if request.method != "OPTIONS":
            super().perform_authentication(request)

    def post(self, request: Request) -> Response:
        service = settings.SUMSERVICE
        with self.document(request) as document:
            metrics.observe_sum_body(len(document))
            total = canonical_sum(
                document,
                max_number_length=service["MAX_NUMBER_LENGTH"],
                max_exponent=service["MAX_EXPONENT"],
            )
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
