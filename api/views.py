"""HTTP endpoints: each view parses, calls, answers."""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from rest_framework.exceptions import MethodNotAllowed, ParseError, UnsupportedMediaType
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.views import TokenViewBase

from api.authentication import BearerTokenAuthentication
from api.exceptions import NumberTooLarge
from api.oidc import DISCOVERY_MAX_AGE, JWKS_MAX_AGE, discovery_document
from api.parsers import RawBody, RawJSONParser
from api.serializers import TokenObtainSerializer, plainly_valid_subject, token_answer
from api.summing import DocumentError, InvalidDocumentError, NumberTooLargeError, canonical_sum
from api.tokens import token_backend


def require_content_type(request: Request) -> None:
    """DRF skips parsing, and so the 415, when a body comes without a Content-Type."""
    if int(request.META.get("CONTENT_LENGTH") or 0) and not request.content_type:
        raise UnsupportedMediaType(
            media_type="",
            detail="The request has a body but no Content-Type: send application/json.",
        )


class TokenObtainView(TokenViewBase):
    """POST /auth: a username and a password in, a signed access token out (OAuth 2 shape).

    The common request is answered before DRF's machinery (see `plain_token`); everything else
    goes through DRF.
    """

    serializer_class = TokenObtainSerializer

    @classmethod
    def as_view(cls, **initkwargs: Any) -> Callable[..., HttpResponseBase]:
        return _before_drf(plain_token, super().as_view(**initkwargs))

    def post(self, request: Request, *args, **kwargs) -> Response:
        require_content_type(request)
        subject = plainly_valid_subject(request.data)
        if subject is None:
            response = super().post(request, *args, **kwargs)  # the serializer decides
        else:
            response = Response(token_answer(subject))
        # RFC 6749 section 5.1: responses carrying tokens must not be cached.
        response["Cache-Control"] = "no-store"
        response["Pragma"] = "no-cache"
        return response


def _before_drf(
    plain: Callable[[HttpRequest], HttpResponse | None], drf_view: Callable[..., HttpResponseBase]
) -> Callable[..., HttpResponseBase]:
    """A view answering with `plain` when it can, else with the DRF view."""

    @functools.wraps(drf_view)  # keeps view_class, cls, initkwargs and csrf_exempt
    def view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        return plain(request) or drf_view(request, *args, **kwargs)

    return view


def _plain_request(request: HttpRequest) -> bool:
    """A POST of exactly `application/json`, no query string, accepting JSON: for such a
    request DRF would parse with the view's JSON parser and render with the JSON renderer."""
    meta = request.META
    return (
        request.method == "POST"
        and meta.get("CONTENT_TYPE") == "application/json"
        and meta.get("HTTP_ACCEPT") in _PLAIN_ACCEPT
        and not meta.get("QUERY_STRING")
    )


# What DRF adds to a successful answer of these views: their allowed methods, and Vary because
# the answer depends on Accept (the browsable API).
_PLAIN_HEADERS = {"Allow": "POST, OPTIONS", "Vary": "Accept"}
_TOKEN_HEADERS = {**_PLAIN_HEADERS, "Cache-Control": "no-store", "Pragma": "no-cache"}
_PLAIN_ACCEPT = frozenset({None, "*/*", "application/json"})
_JSON = JSONRenderer()


def plain_token(request: HttpRequest) -> HttpResponse | None:
    """Answer the common /auth request as DRF would, without DRF; None for any other request.

    Common: a plain request (_plain_request) whose body is UTF-8 JSON (no NaN or Infinity, as
    DRF's strict parser) holding plainly valid credentials (plainly_valid_subject). Anything
    else, each error included, goes through DRF, which decides and words the answer.
    api/tests/test_fast_paths.py compares whole answers of both paths.
    """
    if not _plain_request(request):
        return None
    try:
        data = json.loads(request.body.decode("utf-8"), parse_constant=_refuse)
    except (ValueError, RecursionError):  # UnicodeDecodeError, JSONDecodeError, deep nesting
        return None
    subject = plainly_valid_subject(data)
    if subject is None:
        return None
    return HttpResponse(
        _JSON.render(token_answer(subject)), content_type="application/json", headers=_TOKEN_HEADERS
    )


def _refuse(constant: str) -> None:
    raise ValueError(constant)


class TokenRequired(IsAuthenticated):
    """A valid token for POST; OPTIONS (a CORS preflight, which carries no credentials) is free."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        return request.method == "OPTIONS" or super().has_permission(request, view)


class SumView(APIView):
    """POST /sum: any JSON document in, the SHA-256 of the exact sum of its numbers out.

    The common request is answered before DRF's machinery (see `plain_sum`); everything else
    goes through DRF.
    """

    authentication_classes = [BearerTokenAuthentication]
    permission_classes = [TokenRequired]
    parser_classes = [RawJSONParser]

    @classmethod
    def as_view(cls, **initkwargs: Any) -> Callable[..., HttpResponseBase]:
        return _before_drf(plain_sum, super().as_view(**initkwargs))

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
        return Response(sum_answer(total))


def plain_sum(request: HttpRequest) -> HttpResponse | None:
    """Answer the common /sum request as DRF would, without DRF; None for any other request.

    Common: a plain request (_plain_request) whose bearer token was verified before and is
    valid now (BearerTokenAuthentication.recognised_token), and whose document sums. For it,
    DRF would negotiate the JSON renderer, authenticate the token's user, permit, and answer 200
    with the body and headers below. Anything else, each error included (the body is read once,
    and DRF reads Django's copy of it), goes through DRF, which decides and words the answer.

    Why: DRF's request, negotiation, authentication, permission and response objects cost
    more than Django itself does for this request (the profile in docs/performance.md).
    api/tests/test_fast_paths.py compares whole answers of both paths.
    """
    if (
        not _plain_request(request)
        or BearerTokenAuthentication.recognised_token(request.META.get("HTTP_AUTHORIZATION"))
        is None
    ):
        return None
    limits = settings.SUMSERVICE
    try:
        total = canonical_sum(
            request.body,
            max_number_length=limits["MAX_NUMBER_LENGTH"],
            max_exponent=limits["MAX_EXPONENT"],
        )
    except DocumentError:
        return None
    return HttpResponse(
        _JSON.render(sum_answer(total)), content_type="application/json", headers=_PLAIN_HEADERS
    )


def sum_answer(total: str) -> dict[str, str]:
    return {"sha256": hashlib.sha256(total.encode()).hexdigest(), "sum": total}


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
