"""DRF's exception handler (REST_FRAMEWORK["EXCEPTION_HANDLER"]), with the headers the RFCs ask
for."""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import AuthenticationFailed
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(exc, AuthenticationFailed):
        # RFC 6750 section 3.1: a token was sent but is not acceptable.
        response["WWW-Authenticate"] += ', error="invalid_token"'
    return response
