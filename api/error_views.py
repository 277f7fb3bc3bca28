"""Django's error views (handler400/404/500) for what never reaches a DRF view: unknown paths,
a Host header that is not allowed, a crash. JSON like every other error, never an HTML page."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import JsonResponse

# The Host itself is not echoed: any client sends any Host, and the answer need not repeat it.
HOST_NOT_SERVED = (
    "The Host header names no site this service serves: DJANGO_ALLOWED_HOSTS lists those it does."
)


def json_error(status_code: int, detail: str) -> JsonResponse:
    return JsonResponse({"detail": detail}, status=status_code)


def bad_request(request, exception=None) -> JsonResponse:
    if isinstance(exception, DisallowedHost):
        return json_error(400, HOST_NOT_SERVED)
    return json_error(400, "Bad request.")


def not_found(request, exception=None) -> JsonResponse:
    browser = ", and /docs/ shows it in a browser" if settings.SUMSERVICE["DOCS"] else ""
    return json_error(
        404,
        f"Not found: {request.path}. The endpoints are /auth, /sum, /healthz,"
        " /.well-known/openid-configuration and /.well-known/jwks.json; their description is"
        f" /openapi.json{browser}.",
    )


def server_error(request) -> JsonResponse:
    return json_error(500, "Internal server error.")
