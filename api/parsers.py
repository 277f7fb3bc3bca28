"""Request body parsing for /sum: the document is handed on as raw bytes."""

from __future__ import annotations

from typing import IO, Any

from rest_framework.parsers import BaseParser


class RawJSONParser(BaseParser):
    """Accept `application/json` and return the body's bytes unparsed.

    The summing reads the bytes itself: it needs every number literal's exact text, which a parse
    into Python values (floats) would lose.
    """

    media_type = "application/json"

    def parse(
        self, stream: IO[bytes] | None, media_type: str | None = None, parser_context: Any = None
    ) -> bytes:
        return stream.read() if stream is not None else b""
