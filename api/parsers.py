"""Request body parsers: raw bytes for /sum, and DRF's JSON parser made safe for the rest."""

from __future__ import annotations

from typing import IO, Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError


class RawJSONParser(parsers.BaseParser):
    """Accept `application/json` and hand over the body unread: its stream.

    The summing reads the bytes itself, as it needs every number literal's exact text, which a
    parse into Python values (floats) would lose. The stream rather than its bytes: DRF keeps
    what a parser returns on its Request, which the view and the response refer to in cycles
    that only the cyclic collector frees, while bytes read from the stream live only as long as
    their reader keeps them.
    """

    media_type = "application/json"

    def parse(
        self, stream: IO[bytes], media_type: str | None = None, parser_context: Any = None
    ) -> IO[bytes]:
        return stream


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, answering a document nested deeper than the stdlib parser's recursion
    limit with a 400 instead of a crash (DRF catches only ValueError)."""

    def parse(self, stream: IO[bytes], media_type: str | None = None, parser_context: Any = None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the document is nested too deeply.") from None
