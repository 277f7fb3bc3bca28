"""Differential fuzz of gunicorn_h1c, the C HTTP parser the workers use when it is installed,
against gunicorn's Python parser (the reference).

    python -m tests.http_parser_fuzz --seconds 20 --seed 1 [--h1c FOLDER]

Each case is a connection's bytes: one or more requests (methods, targets, versions, header
fields, bodies framed by Content-Length or chunked, with extensions and trailers), fed to both
parsers in the same random pieces, as a worker does (after each piece, a finished request's
tail is taken and fed again to a reset parser, for the next request). Half the cases are then
mutated: bytes flipped, inserted, dropped or cut off, bare CR or LF, NUL, folded lines, repeated
or conflicting framing headers, overlong lines.

What each parser finds goes through the worker's own checks (CallbackRequest.from_parser).
Both must find the same requests (method, target, version, header fields, body) up to where
either refuses; a mismatch prints the case and exits 1, and so does an error that the worker
would not answer with a 4xx (it would drop the connection without a word). Where one parser
serves a request that the other refuses (gunicorn_h1c takes several spaces between the parts
of a request line, and bytes over 0x7f in a chunk extension), or both refuse at different
points, the run counts it by kind without failing. test_http_parser.py runs it on a copy of
gunicorn_h1c built with AddressSanitizer and UndefinedBehaviorSanitizer (--h1c), where any
memory error or undefined behaviour aborts the process.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

from gunicorn.asgi.parser import (
    CallbackRequest,
    InvalidChunkExtension,
    LimitRequestHeaders,
    LimitRequestLine,
    ParseError,
    PythonProtocol,
    UnsupportedTransferCoding,
)
from gunicorn.asgi.protocol import ASGIProtocol
from gunicorn.http.errors import ParseException

# As gunicorn.conf.py leaves them: gunicorn's defaults.
LIMITS = {
    "limit_request_line": 4094,
    "limit_request_fields": 100,
    "limit_request_field_size": 8190,
}
METHODS = [b"GET", b"POST", b"PUT", b"HEAD", b"OPTIONS", b"DELETE", b"PATCH", b"get", b"M-SEARCH"]
TARGETS = [
    b"/", b"/sum", b"/auth", b"/a%20b?x=1&y=%ff", b"*", b"http://h/p?q", b"/" + b"a" * 200,
    b"/%00", b"/?", b"//x", b"/\xc3\xa9",
]  # fmt: skip
VERSIONS = [b"HTTP/1.1", b"HTTP/1.1", b"HTTP/1.0"]
NAMES = [
    b"Host", b"Accept", b"X-Request-ID", b"Authorization", b"Content-Type", b"User-Agent",
    b"X-Forwarded-For", b"Cookie", b"A", b"x-" + b"n" * 60, b"Expect", b"Connection",
]  # fmt: skip
VALUES = [
    b"a", b"", b"*/*", b"Bearer abc.def.ghi", b"application/json", b"v  v", b"\t x \t",
    b"\x80\xff", b"keep-alive", b"close", b"100-continue", b"a" * 300,
]  # fmt: skip
NASTY = [
    b"\r", b"\n", b"\r\n", b"\x00", b" ", b"\t", b":", b";", b"0", b"F", b"-", b"\r\n\r\n",
    b"\r\n ", b"Content-Length: 5\r\n", b"Transfer-Encoding: chunked\r\n",
    b"Content-Length: -1\r\n", b"Transfer-Encoding: gzip, chunked\r\n", b"\xff",
]  # fmt: skip


def chunked(body: bytes, rnd: random.Random) -> bytes:
    out = b""
    while body:
        size = rnd.randint(1, max(1, len(body)))
        piece, body = body[:size], body[size:]
        extension = rnd.choice([b"", b"", b";a=b", b';name="q"'])
        digits = rnd.choice(["%x", "%X", "%04x"]) % len(piece)
        out += digits.encode() + extension + b"\r\n" + piece + b"\r\n"
    trailer = rnd.choice([b"", b"", b"T: 1\r\n"])
    return out + b"0\r\n" + trailer + b"\r\n"


def request(rnd: random.Random) -> bytes:
    method = rnd.choice(METHODS)
    fields = [(rnd.choice(NAMES), rnd.choice(VALUES)) for _ in range(rnd.randint(0, 6))]
    body = bytes(rnd.getrandbits(8) for _ in range(rnd.choice([0, 0, 1, 10, 300, 5000])))
    framing = rnd.random()
    if framing < 0.4 and body:
        fields.append((b"Transfer-Encoding", b"chunked"))
        body = chunked(body, rnd)
    elif framing < 0.9 or body:
        fields.append((b"Content-Length", str(len(body)).encode()))
    rnd.shuffle(fields)
    head = b" ".join([method, rnd.choice(TARGETS), rnd.choice(VERSIONS)]) + b"\r\n"
    head += b"".join(name + b":" + rnd.choice([b" ", b"", b"  "]) + value + b"\r\n"
                     for name, value in fields)  # fmt: skip
    return head + b"\r\n" + body


def mutate(data: bytes, rnd: random.Random) -> bytes:
    for _ in range(rnd.randint(1, 4)):
        at = rnd.randint(0, len(data))
        kind = rnd.random()
        if kind < 0.3:
            data = data[:at] + rnd.choice(NASTY) + data[at:]
        elif kind < 0.5:
            data = data[:at] + data[at + rnd.randint(1, 4) :]
        elif kind < 0.7 and data:
            at = min(at, len(data) - 1)
            data = data[:at] + bytes([rnd.getrandbits(8)]) + data[at + 1 :]
        elif kind < 0.8:
            data = data[:at]
        elif kind < 0.9:
            data = data[:at] + rnd.choice([b"a", b"0", b" "]) * rnd.choice([5000, 9000]) + data[at:]
        else:
            data = data[:at] + data[at : at + rnd.randint(1, 40)] + data[at:]
    return data


def pieces(data: bytes, rnd: random.Random) -> list[bytes]:
    cuts = sorted(rnd.sample(range(1, len(data)), min(len(data) - 1, rnd.randint(0, 6))))
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


def parse(parser_class, chunks: list[bytes]) -> tuple[list, str | None]:
    """The requests a parser finds in these pieces, and where it refused (None: it did not)."""
    found: list = []
    parser = None

    def headers_complete() -> bool:
        CallbackRequest.from_parser(parser)  # the worker's own checks of what was parsed
        headers = getattr(parser, "asgi_headers", None) or parser.headers
        found.append([parser.method, parser.path, parser.http_version, list(headers), b""])
        return False

    def body(chunk) -> None:
        found[-1][4] += bytes(chunk)

    def message_complete() -> None:
        found[-1].append("complete")

    parser = parser_class(
        on_headers_complete=headers_complete,
        on_body=body,
        on_message_complete=message_complete,
        permit_unconventional_http_method=False,
        permit_unconventional_http_version=False,
        **LIMITS,
    )
    try:
        for chunk in chunks:
            parser.feed(chunk)
            while parser.is_complete:
                tail = parser.remaining()
                parser.reset()
                if not tail:
                    break
                parser.feed(tail)
    except Exception as error:
        if not answered(error):
            raise UnansweredError(error) from error
        return found, f"refused after {len(found)} requests"
    return found, None


class UnansweredError(Exception):
    """A parser raised what the worker does not answer with an error response: it would drop
    the connection without a word."""


class _Refusal:
    """What ASGIProtocol._handle_h1c_exception needs of a protocol, to ask it."""

    def _send_error_response(self, *args) -> None:
        pass

    def _close_transport(self) -> None:
        pass


def answered(error: Exception) -> bool:
    """Whether the worker answers this parser error with a 4xx or 5xx, as gunicorn's
    ASGIProtocol._feed_callback_parser does (gunicorn/asgi/protocol.py, 27.0.1), and
    SumProtocol's on top of it (a ValueError)."""
    answered_as_is = (
        LimitRequestLine,
        LimitRequestHeaders,
        UnsupportedTransferCoding,
        InvalidChunkExtension,
        ParseError,
        ParseException,
        ValueError,
    )
    return isinstance(error, answered_as_is) or ASGIProtocol._handle_h1c_exception(
        _Refusal(), error
    )


def complete(found: list) -> int:
    return sum(1 for request in found if request[-1] == "complete")


def load_h1c(folder: Path | None):
    if folder is not None:
        sys.path.insert(0, str(folder))
    from gunicorn_h1c import H1CProtocol

    # As the workers do (sumservice/worker.py): gunicorn's error handling reads the parser's
    # exception classes from ASGIProtocol.
    ASGIProtocol._check_h1c_protocol_available()
    return H1CProtocol


def main() -> int:
    arguments = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    arguments.add_argument("--seconds", type=float, default=20)
    arguments.add_argument("--seed", type=int, default=0)
    arguments.add_argument("--h1c", type=Path, help="a folder holding a gunicorn_h1c build")
    options = arguments.parse_args()
    h1c = load_h1c(options.h1c)
    print(f"gunicorn_h1c from {sys.modules[h1c.__module__].__file__}")
    rnd = random.Random(options.seed)
    cases = refused = 0
    differ = {"only gunicorn_h1c refuses": 0, "only Python refuses": 0, "refused elsewhere": 0}
    deadline = time.monotonic() + options.seconds
    while time.monotonic() < deadline:
        data = b"".join(request(rnd) for _ in range(rnd.choice([1, 1, 2, 3])))
        if rnd.random() < 0.5:
            data = mutate(data, rnd)
        chunks = pieces(data, rnd) if data else []
        try:
            expected, expected_refusal = parse(PythonProtocol, chunks)
            got, refusal = parse(h1c, chunks)
        except UnansweredError as error:
            print(
                f"unanswered {error.__cause__!r} on {data!r} in pieces {[len(c) for c in chunks]}"
            )
            return 1
        cases += 1
        refused += refusal is not None
        agree = [request[:5] for request in got] == [request[:5] for request in expected]
        if refusal is not None or expected_refusal is not None:
            # Where one refuses, the requests both finished before it must still agree.
            finished = min(complete(got), complete(expected))
            agree = [r[:5] for r in got[:finished]] == [r[:5] for r in expected[:finished]]
            if refusal != expected_refusal:
                kind = (
                    "only Python refuses"
                    if refusal is None
                    else "only gunicorn_h1c refuses"
                    if expected_refusal is None
                    else "refused elsewhere"
                )
                differ[kind] += 1
        if not agree:
            print(f"mismatch on {data!r} in pieces {[len(c) for c in chunks]}")
            print(f"  gunicorn's Python parser: {expected} ({expected_refusal})")
            print(f"  gunicorn_h1c:             {got} ({refusal})")
            return 1
    differences = ", ".join(f"{kind}: {count}" for kind, count in differ.items())
    print(f"{cases} cases, {refused} refused by gunicorn_h1c ({differences}), 0 mismatches")
    return 0


if __name__ == "__main__":
    sys.exit(main())
