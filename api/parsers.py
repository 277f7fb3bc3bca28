"""Request body parsers: raw bytes for /sum, and DRF's JSON parsing, made safe, for the rest."""

from __future__ import annotations

from typing import IO, Any

from rest_framework import parsers, renderers
from rest_framework import settings as drf_settings
from rest_framework.exceptions import ParseError
from rest_framework.utils import json

# The WSGI environ key (a server extension, PEP 3333) under which sumservice.asgi offers the body
# it received whole: a read-only memoryview of its buffer, released once the answer is made.
RECEIVED_BODY = "sumservice.received_body"


def received_body(parser_context: Any) -> memoryview | None:
    """The body the server received whole, in place, where it offers one."""
    request = (parser_context or {}).get("request")
    return request.META.get(RECEIVED_BODY) if request is not None else None


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
        received = received_body(parser_context)
        return received if received is not None else memoryview(stream.read())


class JSONParser(parsers.BaseParser):
    """DRF's JSON parsing (the request's charset, STRICT_JSON, the same 400s), of the body the
    server received whole, read in place; and a 400 rather than a crash for a document nested
    deeper than the stdlib parser's recursion limit (DRF catches only ValueError).

    Not a subclass of DRF's JSONParser, for which DRF reads the body through Django and copies
    it into a new stream before parsing (~3 % of a token request's instructions).
    """

    media_type = "application/json"
    renderer_class = renderers.JSONRenderer

    def parse(self, stream: IO[bytes], media_type: str | None = None, parser_context: Any = None):
        parser_context = parser_context or {}
        body = received_body(parser_context)
        if body is None:
            # Read through Django, which keeps it: request.body stays readable, as with DRF's.
            request = parser_context.get("request")
            body = request.body if request is not None else stream.read()
        encoding = parsers.get_encoding(parser_context)
        parse_constant = json.strict_constant if drf_settings.api_settings.STRICT_JSON else None
        try:
            return json.loads(str(body, encoding), parse_constant=parse_constant)
        except ValueError as error:
            raise ParseError(f"JSON parse error - {error}") from None
        except RecursionError:
            raise ParseError("JSON parse error - the document is nested too deeply.") from None
