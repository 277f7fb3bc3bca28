"""One JSON line per request, with a request id, for an operator to search.

The request id is the client's (or the proxy's) `X-Request-ID` when it is a plain token of up to
128 characters, a fresh one otherwise; it is echoed in the response's `X-Request-ID`, so a
client reporting a problem can name its request. The line holds no header, no query string and
no body: nothing a token or a password could hide in.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime

from django.http import HttpRequest, HttpResponse

from api.client_address import client_address

logger = logging.getLogger("sumservice.requests")

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def request_id(request: HttpRequest) -> str:
    sent = request.META.get("HTTP_X_REQUEST_ID", "")
    # A label to find a request by, not a secret: 128 random bits (the random module reseeds
    # in each forked worker), without uuid4's system call per request.
    return sent if _REQUEST_ID.fullmatch(sent) else f"{random.getrandbits(128):032x}"


class RequestLogMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        request.request_id = request_id(request)
        response = self.get_response(request)
        response["X-Request-ID"] = request.request_id
        if not logger.isEnabledFor(logging.INFO):
            return response
        duration = time.perf_counter() - started
        content = b"" if response.streaming else response.content
        line = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "request_id": request.request_id,
            "method": request.method,
            "path": request.path,
            "status": response.status_code,
            "bytes": len(content),
            "duration_ms": round(duration * 1000, 3),
            "client": client_address(request),
            "pid": os.getpid(),
        }
        # Logger.handle rather than .info: the record needs no caller lookup (file, line).
        record = logger.makeRecord(
            logger.name, logging.INFO, __file__, 0, json.dumps(line), None, None
        )
        logger.handle(record)
        return response
