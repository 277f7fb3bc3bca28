"""The body size limit, enforced before anything reads the body, and the headers that keep the
service's pages out of other sites' frames."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.middleware.clickjacking import XFrameOptionsMiddleware

from api import limits
from api.error_views import json_error

_DRAIN_CHUNK = 64 * 1024


class BodySizeLimitMiddleware:
    """Answer 413 to a request whose declared body is over SUMSERVICE["MAX_BODY_BYTES"], or over
    the smaller limit its view names (`max_body_bytes_setting`, a SUMSERVICE key).

    Django reads at most Content-Length bytes of any body, so the declared length is the bound.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.limit = settings.SUMSERVICE["MAX_BODY_BYTES"]

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return json_error(400, "The Content-Length header is not a number.")
        if length <= self.limit:
            return self.get_response(request)
        return refuse_body(request, length, self.limit)

    def process_view(self, request: HttpRequest, view_func: Callable, *args) -> HttpResponse | None:
        view_class = getattr(view_func, "view_class", None)
        setting = getattr(view_class, "max_body_bytes_setting", None)
        if setting is None:
            return None
        limit = settings.SUMSERVICE[setting]
        # A bad or missing Content-Length was answered in __call__ already.
        length = int(request.META.get("CONTENT_LENGTH") or 0)
        return refuse_body(request, length, limit) if length > limit else None


def refuse_body(request: HttpRequest, length: int, limit: int) -> HttpResponse:
    if length <= limits.REFUSED_BODY_DRAIN_FACTOR * limit:
        while request.read(_DRAIN_CHUNK):
            pass
    return json_error(413, f"The request body is {length} bytes; the limit is {limit} bytes.")


class FrameProtectionMiddleware(XFrameOptionsMiddleware):
    """No page of the service may be shown in another site's frame (clickjacking: the browsable
    API's forms): Django's `X-Frame-Options: DENY`, and CSP's `frame-ancestors 'none'`, which
    browsers now follow first."""

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        response = super().process_response(request, response)
        response.headers.setdefault("Content-Security-Policy", "frame-ancestors 'none'")
        return response
