"""Errors as JSON bodies a person can act on, with the headers the RFCs ask for."""

from __future__ import annotations

from typing import Any

from django.http import JsonResponse
from rest_framework import status
from rest_framework.exceptions import APIException, AuthenticationFailed
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


class NumberTooLarge(APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = "A number in the document is beyond the service's limits."
    default_code = "number_too_large"


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(exc, AuthenticationFailed):
        # RFC 6750 section 3.1: a token was sent but is not acceptable.
        response["WWW-Authenticate"] += ', error="invalid_token"'
    return response


def json_error(status_code: int, detail: str) -> JsonResponse:
    return JsonResponse({"detail": detail}, status=status_code)


# Django's own error pages, for what never reaches a DRF view (unknown paths, a Host header that
# is not allowed, a crash): JSON like every other error, never an HTML page.
def bad_request(request, exception=None) -> JsonResponse:
    return json_error(400, "Bad request.")


def not_found(request, exception=None) -> JsonResponse:
    return json_error(
        404,
        f"Not found: {request.path}. The endpoints are /auth, /sum, /healthz,"
        " /.well-known/openid-configuration and /.well-known/jwks.json; their description is"
        " /openapi.json.",
    )


def server_error(request) -> JsonResponse:
    return json_error(500, "Internal server error.")
