"""Request body parsers: raw bytes for /sum, and DRF's JSON parser made safe for the rest."""

from __future__ import annotations

from typing import IO, Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError

# The WSGI environ key (a server extension, PEP 3333) under which sumservice.asgi offers the body
# it received whole: a read-only memoryview of its buffer, released once the answer is made.
RECEIVED_BODY = "sumservice.received_body"


class RawJSONParser(parsers.BaseParser):
    """Accept `application/json` and hand over the body unparsed, as a read-only memoryview.

    The summing reads the bytes itself, as it needs every number literal's exact text, which a
    parse into Python values (floats) would lose. Where the server received the body whole
    (sumservice.asgi), the view is of that buffer: the body is not copied on its way to the
    kernel. Elsewhere (gunicorn's sync worker, Django's test client) it is of the bytes read
    from the stream. DRF keeps what a parser returns on its Request, which the view and the
    response refer to in cycles that only the cyclic collector frees: the view releases the
    memoryview once summed, so those cycles keep no bytes.
    """

    media_type = "application/json"

    def parse(
        self, stream: IO[bytes], media_type: str | None = None, parser_context: Any = None
    ) -> memoryview:
        request = (parser_context or {}).get("request")
        received = request.META.get(RECEIVED_BODY) if request is not None else None
        return received if received is not None else memoryview(stream.read())


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, answering a document nested deeper than the stdlib parser's recursion
    limit with a 400 instead of a crash (DRF catches only ValueError)."""

    def parse(self, stream: IO[bytes], media_type: str | None = None, parser_context: Any = None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the document is nested too deeply.") from None
