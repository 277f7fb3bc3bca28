"""One JSON line per request, with a request id, for an operator to search.

The request id is the client's (or the proxy's) `X-Request-ID` when it is a plain token of up to
128 characters, a fresh one otherwise; it is echoed in the response's `X-Request-ID`, so a
client reporting a problem can name its request. The line holds no header, no query string and
no body: nothing a token or a password could hide in.
"""

from __future__ import annotations

import logging
import os
import random
import re
import time
from collections.abc import Callable
from functools import lru_cache
from json.encoder import encode_basestring_ascii as json_string

from django.http import HttpRequest, HttpResponse

from api.client_address import client_address

logger = logging.getLogger("sumservice.requests")

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def request_id(request: HttpRequest) -> str:
    return request_id_or_new(request.META.get("HTTP_X_REQUEST_ID", ""))


def request_id_or_new(sent: str) -> str:
    """The id a client sent, when it is letters, digits and `._:-` only; else a new one."""
    return sent if _REQUEST_ID.fullmatch(sent) else new_request_id()


def new_request_id() -> str:
    # A label to find a request by, not a secret: 128 random bits (the random module reseeds
    # in each forked worker), without uuid4's system call per request.
    return f"{random.getrandbits(128):032x}"


@lru_cache(maxsize=1)
def _utc_second(epoch_second: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch_second))


def utc_timestamp(epoch_ns: int) -> str:
    """A time in nanoseconds since the epoch as `datetime.isoformat(timespec="milliseconds")`
    writes it in UTC (cut, not rounded, to the millisecond); the part up to the second is made
    once a second."""
    second, nanoseconds = divmod(epoch_ns, 1_000_000_000)
    return f"{_utc_second(second)}.{nanoseconds // 1_000_000:03d}+00:00"


def log_line(
    when: str,
    request_id: str,
    method: str | None,
    path: str | None,
    status: int,
    size: int,
    duration_ms: float | None,
    client: str,
    pid: int,
) -> str:
    """A request's line: byte for byte what `json.dumps` writes for these fields (strings
    escaped to ASCII, None as null), for a fraction of its cost, as it is written for every
    request."""
    return (
        f'{{"time": {json_string(when)}, "request_id": {json_string(request_id)},'
        f' "method": {"null" if method is None else json_string(method)},'
        f' "path": {"null" if path is None else json_string(path)}, "status": {status},'
        f' "bytes": {size}, "duration_ms": {"null" if duration_ms is None else repr(duration_ms)},'
        f' "client": {json_string(client)}, "pid": {pid}}}'
    )


def write_line(line: str) -> None:
    # Logger.handle rather than .info: the record needs no caller lookup (file, line).
    logger.handle(logger.makeRecord(logger.name, logging.INFO, __file__, 0, line, None, None))


def log_refusal(status: int, size: int, client: str, request_id: str) -> None:
    """The line of a request the server refused before Django saw it (sumservice/worker.py):
    no method, path or duration (its head may not have been read, or read at all)."""
    if logger.isEnabledFor(logging.INFO):
        when = utc_timestamp(time.time_ns())
        write_line(log_line(when, request_id, None, None, status, size, None, client, os.getpid()))


def body_size(request: HttpRequest, response: HttpResponse) -> int:
    """The bytes of body the response sends: none to a HEAD; a streamed one (a static file)
    as its Content-Length says, as it is not read here."""
    if request.method == "HEAD":
        return 0
    if response.streaming:
        return int(response.get("Content-Length") or 0)
    return len(response.content)


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
        line = log_line(
            utc_timestamp(time.time_ns()),
            request.request_id,
            request.method,
            request.path,
            response.status_code,
            body_size(request, response),
            round(duration * 1000, 3),
            client_address(request),
            os.getpid(),
        )
        write_line(line)
        return response
