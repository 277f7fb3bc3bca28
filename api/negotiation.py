"""Content negotiation with a shortcut for what API clients send."""

from __future__ import annotations

from django.http import Http404
from rest_framework.exceptions import NotFound, UnsupportedMediaType
from rest_framework.negotiation import DefaultContentNegotiation

from api.exceptions import UnsupportedContentEncoding


class ContentNegotiation(DefaultContentNegotiation):
    """DRF's negotiation, answering at once for the Accept headers of API clients, and saying
    what is missing when a body comes without a Content-Type.

    With no Accept header, `*/*` or exactly the first renderer's media type (JSON), and no
    `?format=` or format suffix, DRF's own algorithm picks the first renderer with its media type;
    this returns the same without parsing and ranking the header. Anything else (a browser's
    Accept list, `?format=api`) goes through DRF's algorithm unchanged.
    """

    def select_renderer(self, request, renderers, format_suffix=None):
        accept = request.META.get("HTTP_ACCEPT", "*/*")
        first = renderers[0] if renderers else None
        if (
            first is not None
            and not format_suffix
            and not request.META.get("QUERY_STRING")
            and (accept == "*/*" or accept == first.media_type)
        ):
            return first, first.media_type
        try:
            return super().select_renderer(request, renderers, format_suffix)
        except Http404:
            # DRF's answer to a format no renderer has, as for a URL's format suffix; from a
            # query string, "Not found." would send the client looking for another path.
            format_ = format_suffix or request.query_params.get(self.settings.URL_FORMAT_OVERRIDE)
            formats = " or ".join(dict.fromkeys(renderer.format for renderer in renderers))
            raise NotFound(f"No answer format {format_!r}: ?format= takes {formats}.") from None

    def select_parser(self, request, parsers):
        # A compressed body would reach the parsers as bytes they cannot read (a 400 saying it
        # is not UTF-8): what is wrong is the coding.
        coding = request.META.get("HTTP_CONTENT_ENCODING", "").strip()
        if coding and coding.lower() != "identity":
            raise UnsupportedContentEncoding
        # DRF asks only when there is a body; without a Content-Type its 415 would name "".
        if not request.content_type:
            raise UnsupportedMediaType(
                media_type="",
                detail="The request has a body but no Content-Type: send application/json.",
            )
        # DRF matches a wildcard in the request's type against any parser; a body has one type.
        if "*" in request.content_type.partition(";")[0]:
            raise UnsupportedMediaType(
                media_type=request.content_type,
                detail=f'A body has one media type, not "{request.content_type}": send'
                " application/json.",
            )
        return super().select_parser(request, parsers)
