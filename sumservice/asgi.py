"""ASGI entry point: the Django application as gunicorn's asyncio worker serves it.

gunicorn's `asgi` worker parses requests in its event loop, so a client that trickles its
headers or body, or never closes, costs a socket and a few objects rather than a whole worker.
The service itself is WSGI (Django, DRF). `BufferedWSGIApplication` joins the two: it receives
the whole body in the event loop, then runs the WSGI application on it, right there when the
body is small (no thread hop: most requests), or in a thread when it is large, so that a long
summing (which releases the GIL in the compiled kernel) leaves the loop free for the others.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from io import BytesIO
from typing import Any

from asgiref.wsgi import WsgiToAsgiInstance
from django.conf import settings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sumservice.settings")

from sumservice.wsgi import application as wsgi_application  # noqa: E402

Message = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[Message], Any]

# A body over the limit is still read (and dropped) up to this many times the limit, so that the
# client, still sending, gets the 413 rather than a reset; as BodySizeLimitMiddleware does.
_DRAIN_FACTOR = 4


class BufferedWSGIApplication:
    """An ASGI application that runs a WSGI one on the whole, already received, request body.

    The body is framed by gunicorn (Content-Length or chunked), so the WSGI side always sees a
    CONTENT_LENGTH: a chunked body reaches Django in full. At most `max_body_bytes` are held; a
    body over it is counted (up to a few times the limit) but not kept, and the application is
    given its length with no bytes, which BodySizeLimitMiddleware answers with a 413.
    """

    def __init__(
        self,
        wsgi: Callable[[dict, Callable], Iterable[bytes]],
        *,
        max_body_bytes: int,
        inline_body_bytes: int,
        threads: int,
    ) -> None:
        self.wsgi = wsgi
        self.max_body_bytes = max_body_bytes
        self.inline_body_bytes = inline_body_bytes
        self.threads = threads
        self.executor = ThreadPoolExecutor(threads, thread_name_prefix="large-request")
        self._large_slots: asyncio.Semaphore | None = None  # made in the worker's event loop

    def large_slots(self) -> asyncio.Semaphore:
        if self._large_slots is None:
            # Twice the threads: one body being summed and the next being received, per thread.
            self._large_slots = asyncio.Semaphore(2 * self.threads)
        return self._large_slots

    async def __call__(self, scope: dict, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return  # no WebSocket endpoint: gunicorn closes the connection
        slot = _LargeBodySlot(self)
        try:
            received = await self._receive_body(scope, receive, slot)
            if received is None:
                return  # the client went away
            body, length = received
            translator = WsgiToAsgiInstance(self.wsgi)
            translator.scope = scope  # build_environ reads the headers from there
            environ = translator.build_environ(scope, BytesIO(body))
            del body
            environ["CONTENT_LENGTH"] = str(length)
            environ["wsgi.input_terminated"] = True
            client = scope.get("client")
            if client:
                environ["REMOTE_PORT"] = str(client[1])
            try:
                if length <= self.inline_body_bytes:
                    status, headers, content = self._run(environ)
                else:
                    loop = asyncio.get_running_loop()
                    status, headers, content = await loop.run_in_executor(
                        self.executor, self._run, environ
                    )
            finally:
                # Django's and DRF's request objects hold the environ in reference cycles that
                # only the cyclic collector frees; closed, the input lets go of the body now.
                environ["wsgi.input"].close()
        finally:
            slot.release()
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})

    async def _receive_body(
        self, scope: dict, receive: Receive, slot: _LargeBodySlot
    ) -> tuple[bytes, int] | None:
        """The body (empty when over the limit) and its length; None if the client left."""
        declared = _declared_length(scope)
        if declared is not None and declared > _DRAIN_FACTOR * self.max_body_bytes:
            return b"", declared  # not worth reading: the connection is closed after the 413
        chunks: list[bytes] = []
        length = 0
        while True:
            if length > self.inline_body_bytes:
                # Past the inline size, a body waits for one of the worker's few large-body
                # slots: what the worker holds in bodies stays bounded, however many clients
                # send large ones (gunicorn stops reading a socket whose bytes wait).
                await slot.acquire()
            message = await receive()
            if message["type"] != "http.request":
                return None
            chunk = message.get("body", b"")
            length += len(chunk)
            if length <= self.max_body_bytes:
                chunks.append(chunk)
            else:
                chunks.clear()
                if length > _DRAIN_FACTOR * self.max_body_bytes:
                    break
            if not message.get("more_body", False):
                break
        if length > self.max_body_bytes:
            return b"", length
        return (chunks[0] if len(chunks) == 1 else b"".join(chunks)), length

    def _run(self, environ: dict) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """Call the WSGI application; its status, headers and whole body."""
        started: list = []
        written: list[bytes] = []

        def start_response(status: str, headers: list, exc_info: Any = None) -> Callable:
            if exc_info is not None and started:
                raise exc_info[1].with_traceback(exc_info[2])
            started[:] = [status, headers]
            return written.append

        result = self.wsgi(environ, start_response)
        try:
            content = b"".join(written) + b"".join(result) if written else b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        status, headers = started
        encoded = [
            (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers
        ]
        return int(status[:3]), encoded, content

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.executor.shutdown(wait=True)
                await send({"type": "lifespan.shutdown.complete"})
                return


class _LargeBodySlot:
    """One request's claim on a large-body slot, taken at most once and given back once."""

    __slots__ = ("app", "held")

    def __init__(self, app: BufferedWSGIApplication) -> None:
        self.app = app
        self.held = False

    async def acquire(self) -> None:
        if not self.held:
            await self.app.large_slots().acquire()
            self.held = True

    def release(self) -> None:
        if self.held:
            self.held = False
            self.app.large_slots().release()


def _declared_length(scope: dict) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


application = BufferedWSGIApplication(
    wsgi_application,
    max_body_bytes=settings.SUMSERVICE["MAX_BODY_BYTES"],
    inline_body_bytes=settings.SUMSERVICE["INLINE_BODY_BYTES"],
    threads=settings.SUMSERVICE["LARGE_REQUEST_THREADS"],
)
