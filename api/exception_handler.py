"""DRF's exception handler (REST_FRAMEWORK["EXCEPTION_HANDLER"]): the summing's errors as API
errors, with the headers the RFCs ask for."""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import AuthenticationFailed, ParseError
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from api.exceptions import NumberTooLarge, UnsupportedContentEncoding
from api.summing import InvalidDocumentError, NumberTooLargeError


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    # The summing's errors, which know nothing of HTTP, as the API errors they are.
    if isinstance(exc, InvalidDocumentError):
        exc = ParseError(str(exc))
    elif isinstance(exc, NumberTooLargeError):
        exc = NumberTooLarge(str(exc))
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(exc, AuthenticationFailed):
        # RFC 6750 section 3.1: a token was sent but is not acceptable.
        response["WWW-Authenticate"] += ', error="invalid_token"'
    elif response is not None and isinstance(exc, UnsupportedContentEncoding):
        response["Accept-Encoding"] = "identity"
    return response
