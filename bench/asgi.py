"""What the in-process benchmarks hand sumservice.asgi's application: a request as gunicorn's
asyncio worker would."""

from __future__ import annotations


def post_scope(path: str, headers: list[tuple[bytes, bytes]]) -> dict:
    """The ASGI scope of a POST to `path` over HTTP/1.1 from a loopback client."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
