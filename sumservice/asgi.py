"""ASGI entry point: the Django application as gunicorn's asyncio worker serves it.

gunicorn's `asgi` worker parses requests in its event loop, so a client that trickles its
headers or body, or never closes, costs a socket and a few objects rather than a whole worker.
The service itself is WSGI (Django, DRF). `BufferedWSGIApplication` joins the two: it receives
the whole body in the event loop, then runs the WSGI application on it, right there when the
body is at most `inline_body_bytes` (up to 1 MiB: a few milliseconds of the compiled kernel, where
a thread hop would cost more than it saves), or in a thread when it is larger, so that a long
summing (which releases the GIL in the compiled kernel) leaves the loop free for the others.

The body is received once, into one buffer (made at its size when the Content-Length is known),
and stays there: Django reads it as a file, and /sum's parser takes it in place
(`api.parsers.RECEIVED_BODY`), so the kernel sums the very bytes that came off the socket.
"""

from __future__ import annotations

import asyncio
import contextvars
import io
import mmap
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.wsgi import WsgiToAsgiInstance
from django.conf import settings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sumservice.settings")

from api import limits, summing  # noqa: E402
from api.parsers import RECEIVED_BODY  # noqa: E402
from sumservice.worker import REFUSE_EXTENSION, UNREAD_EXTENSION  # noqa: E402
from sumservice.wsgi import application as wsgi_application  # noqa: E402

Message = dict[str, Any]
Buffer = bytearray | mmap.mmap
Receive = Callable[[], Any]
Send = Callable[[Message], Any]

# A body over this size is received into a memory mapping, and the memory it takes counts in its
# worker's large-body budget until it is answered: what a worker holds in bodies stays bounded.
LARGE_BODY_BYTES = 64 * 1024

# A chunked body past the large size moves to a mapping of at least this size, then doubles.
_FIRST_CHUNKED_MAPPING = 1 << 20
_HUGE_PAGE = 2 << 20  # x86-64's and arm64's (4 KiB base pages) transparent huge page

# While bodies wait for memory, one that holds some and has arrived slower than this, measured
# afresh every few seconds (its first seconds aside), is refused with 408, and its memory goes
# to those waiting: a client that fills memory slowly, or sends most of its body and then
# trickles the rest, would otherwise hold up the large bodies of every other.
SLOW_BODY_BYTES_PER_SECOND = 32 * 1024
SLOW_BODY_GRACE_SECONDS = 2.0
_SLOW_BODY_CHECK_SECONDS = 0.5

# How long a request that asked for a 100 (Continue) is watched for its body's first bytes
# before it is taken to be waiting for the 100.
CONTINUE_WAIT_SECONDS = 0.25


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
        large_body_bytes: int = LARGE_BODY_BYTES,
    ) -> None:
        self.wsgi = wsgi
        self.max_body_bytes = max_body_bytes
        self.inline_body_bytes = inline_body_bytes
        self.large_body_bytes = large_body_bytes
        self.threads = threads
        self.executor = ThreadPoolExecutor(threads, thread_name_prefix="large-request")
        # Twice the threads' worth of the largest bodies: one being summed and the next being
        # received, per thread, when they are that large; more of them when they are smaller.
        self.large_bodies = LargeBodyBudget(2 * threads * _huge_pages(max_body_bytes))
        self._thread_contexts = threading.local()

    async def __call__(self, scope: dict, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            raise ValueError(f"An HTTP application, given a {scope['type']!r} scope.")
        extensions = scope.get("extensions", {})
        claim = BodyClaim(extensions.get(REFUSE_EXTENSION), extensions.get(UNREAD_EXTENSION))
        in_thread: asyncio.Future | None = None
        try:
            received = await self._receive_body(scope, receive, claim)
            if received is None:
                return  # the client went away
            buffer, length = received
            del received
            with memoryview(buffer) as whole:
                body = whole[:length].toreadonly()
            translator = WsgiToAsgiInstance(self.wsgi)
            translator.scope = scope  # build_environ reads the headers from there
            environ = translator.build_environ(scope, _BodyStream(buffer, length))
            environ[RECEIVED_BODY] = body
            environ["CONTENT_LENGTH"] = str(length)
            environ["wsgi.input_terminated"] = True
            client = scope.get("client")
            if client:
                environ["REMOTE_PORT"] = str(client[1])
            if length <= self.inline_body_bytes:
                status, headers, content = self._thread_context().run(self._run, environ)
            else:
                loop = asyncio.get_running_loop()
                in_thread = loop.run_in_executor(self.executor, self._run, environ)
                # Shielded: a request cancelled (its client gone) leaves the thread reading its
                # body until it answers, and the body's memory is given back only then.
                status, headers, content = await asyncio.shield(in_thread)
        finally:
            # The body's buffer is let go here, in the loop's thread, which maps the next body:
            # unmapped in the executor's thread, it made the next one's huge page slower to
            # fault in (docs/performance.md, "The body's mapping, let go in the loop").
            buffer = None
            if in_thread is not None and not in_thread.done():
                in_thread.add_done_callback(lambda _: self.large_bodies.give_back(claim))
            else:
                self.large_bodies.give_back(claim)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})

    async def _receive_body(
        self, scope: dict, receive: Receive, claim: BodyClaim
    ) -> tuple[Buffer, int] | None:
        """A buffer that starts with the body (empty when over the limit), and the body's
        length; None if the client left."""
        declared = _declared_length(scope)
        if declared is not None and declared <= self.inline_body_bytes:
            claim.inline_length = declared
        if (
            declared is not None
            and declared > self.max_body_bytes
            and (
                declared > limits.REFUSED_BODY_DRAIN_FACTOR * self.max_body_bytes
                or await _waits_for_continue(scope, claim)
            )
        ):
            # Not worth reading; or not sent yet, the client waiting for a 100 (Continue) that
            # a request sure to be refused is not given (RFC 9110 section 10.1.1). The 413
            # says the connection closes.
            return bytearray(), declared
        # A body over the limit is counted, not kept (a chunked one, from where it passes it).
        keep = declared is None or declared <= self.max_body_bytes
        mapped = keep and declared is not None and declared > self.large_body_bytes
        buffer: Buffer = bytearray()  # chunked: grown as it comes
        if keep and declared is not None:
            # The size is known: the buffer is made once, at that size, and filled in place (a
            # mapping's pages take memory only as they are filled).
            buffer = _large_buffer(declared) if mapped else bytearray(declared)
        length = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return None
            chunk = message.get("body", b"")
            end = length + len(chunk)
            if keep and end <= self.max_body_bytes:
                claim.arrived = end  # here, as it waits for memory if it must
                if (mapped or end > self.large_body_bytes) and _huge_pages(end) > claim.taken:
                    # The memory of a mapping is taken page by page as the body fills it, and
                    # waits for room in the worker's budget: a client holds what it has sent,
                    # however slowly, and no more (gunicorn stops reading a socket whose bytes
                    # wait).
                    granted = await self.large_bodies.take(claim, _huge_pages(end))
                    if not granted:
                        return None  # refused as too slow, and its connection closed
                if end > len(buffer):
                    buffer = self._grown(buffer, end)
                buffer[length:end] = chunk
            elif keep:
                keep = False
                buffer = bytearray()  # past the limit
                self.large_bodies.give_back(claim)
            length = end
            drained_enough = length > limits.REFUSED_BODY_DRAIN_FACTOR * self.max_body_bytes
            if drained_enough or not message.get("more_body"):
                break
        if length > self.max_body_bytes:
            return bytearray(), length
        self.large_bodies.whole(claim)
        return buffer, length

    def _grown(self, buffer: Buffer, size: int) -> Buffer:
        """Room for `size` bytes of a chunked body: a bytearray up to the large size, then a
        mapping that doubles (mremap: its pages are not copied), up to the limit."""
        if size <= self.large_body_bytes:
            return buffer  # a bytearray: the slice assignment grows it
        room = min(self.max_body_bytes, max(size, 2 * len(buffer), _FIRST_CHUNKED_MAPPING))
        if isinstance(buffer, mmap.mmap):
            buffer.resize(_huge_pages(room))
            return buffer
        mapping = _large_buffer(room)
        mapping[: len(buffer)] = buffer
        return mapping

    def _thread_context(self) -> contextvars.Context:
        """The context the application runs in on this thread, the same for every request.
        Django keeps per-thread state (its caches and their connections) in asgiref Locals,
        which live in the running context: in each request's own task they would be made anew
        for every request. The executor's threads keep their own context already."""
        context = getattr(self._thread_contexts, "context", None)
        if context is None:
            context = self._thread_contexts.context = contextvars.Context()
        return context

    def _run(self, environ: dict) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """Call the WSGI application; its status, headers and whole body."""
        started: list = []
        written: list[bytes] = []

        def start_response(status: str, headers: list, exc_info: Any = None) -> Callable:
            if exc_info is not None and started:
                raise exc_info[1].with_traceback(exc_info[2])
            started[:] = [status, headers]
            return written.append

        try:
            result = self.wsgi(environ, start_response)
            try:
                content = b"".join(written) + b"".join(result) if written else b"".join(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        finally:
            # Django's and DRF's request objects hold the environ in reference cycles that only
            # the cyclic collector frees; closed and released, the input and the view let go of
            # the buffer now. Here, where the application ran: a cancelled request's thread
            # may still be reading them.
            environ["wsgi.input"].close()
            environ[RECEIVED_BODY].release()
        status, headers = started
        if environ["REQUEST_METHOD"] == "HEAD":
            content = b""  # the server's part (RFC 9110 9.3.2): Django leaves a GET's body in
        code = int(status[:3])
        encoded = [
            (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers
        ]
        # The whole body is here: framed by its length, not chunked, even where the application
        # set none (an error answered before CommonMiddleware adds it).
        if (
            environ["REQUEST_METHOD"] != "HEAD"
            and code not in (204, 304)
            and all(name != b"content-length" for name, _ in encoded)
        ):
            encoded.append((b"content-length", str(len(content)).encode("latin-1")))
        return code, encoded, content


def _large_buffer(size: int) -> mmap.mmap:
    """A large body's buffer: an anonymous mapping of its own, given back to the system as soon
    as it is let go (glibc keeps freed large blocks in its heaps for reuse, and RSS with them).

    Private: a shared anonymous mapping cannot grow (SIGBUS past its first size). In whole huge
    pages, asked for: a fresh mapping costs a page fault per page it fills, ~0.6 ms per MiB in
    4 KiB pages here and ~0.1 in 2 MiB ones (Linux aligns such a mapping on a huge page)."""
    buffer = mmap.mmap(-1, _huge_pages(size), flags=mmap.MAP_PRIVATE)
    if hasattr(mmap, "MADV_HUGEPAGE"):
        buffer.madvise(mmap.MADV_HUGEPAGE)
    return buffer


def _huge_pages(size: int) -> int:
    return -(-size // _HUGE_PAGE) * _HUGE_PAGE


class _BodyStream(io.RawIOBase):
    """The WSGI input over the received body, for what Django reads as a file (copies of the
    parts read); /sum's parser takes the whole body in place instead."""

    def __init__(self, buffer: Buffer, length: int) -> None:
        super().__init__()
        self._buffer: Buffer = buffer
        self._length = length
        self._position = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        start = self._position
        end = self._length
        if size is not None and size >= 0:
            end = min(end, start + size)
        if end <= start:
            return b""
        self._position = end
        with memoryview(self._buffer) as whole:
            return whole[start:end].tobytes()

    def readinto(self, target: Any) -> int:
        with memoryview(target) as view, view.cast("B") as out:
            data = self.read(len(out))
            out[: len(data)] = data
        return len(data)

    def readline(self, size: int | None = -1) -> bytes:
        end = self._length
        if size is not None and size >= 0:
            end = min(end, self._position + size)
        newline = self._buffer.find(b"\n", self._position, end)
        return self.read((end if newline == -1 else newline + 1) - self._position)

    def close(self) -> None:
        self._buffer, self._length = bytearray(), 0
        super().close()


class BodyClaim:
    """The memory one request's body holds in its worker's large-body budget, and how fast the
    body comes."""

    __slots__ = (
        "arrived",
        "arrived_before",
        "inline_length",
        "refuse",
        "refused",
        "since",
        "taken",
        "unread",
        "waited",
        "whole",
    )

    def __init__(
        self,
        refuse: Callable[[int, str], Any] | None = None,
        unread: Callable[[], tuple[int, bool]] | None = None,
    ) -> None:
        self.taken = 0
        self.whole = False  # received in full: its memory comes back once it is answered
        self.arrived = 0  # bytes of the body received
        # Its Content-Length where it is answered in the event loop (up to the inline size);
        # None for any other (larger, or chunked).
        self.inline_length: int | None = None
        # The window its rate is measured over: from when it first took memory, moved on at
        # each look (the loop's clock), and the bytes that had arrived before it (taken, and
        # waiting unread where that is known).
        self.since: float | None = None
        self.arrived_before = 0
        self.waited = 0.0  # seconds it has waited for memory within it: not its client's doing
        # Answers the request with a status and a message, and closes its connection: the
        # server's (REFUSE_EXTENSION); None where there is none.
        self.refuse = refuse
        self.refused = False
        # The bytes that have come and wait unread, and whether the server stopped reading for
        # them (UNREAD_EXTENSION); None where there is no telling.
        self.unread = unread

    def answerable_at_once(self) -> bool:
        """Whether the whole body has come (some of it perhaps unread: at most what the server
        holds before it stops reading, 256 KiB) and is answered in the event loop. Such a body
        takes its memory past the budget, ahead of any waiting: it gives it back within its
        answer, where bodies still coming may hold theirs for seconds (slowly, for up to two
        graces before they are refused)."""
        if self.inline_length is None or self.unread is None:
            return False
        return self.arrived + self.unread()[0] >= self.inline_length


class LargeBodyBudget:
    """The memory a worker's large bodies hold at once, received or being answered, bounded.

    A body takes memory as it arrives (in whole huge pages, as it fills them), so a client that
    sends its body slowly holds what it has sent and no more; past the budget, a body waits for
    memory given back by one answered, in turn. While bodies wait, one that holds memory and
    fills it slower than SLOW_BODY_BYTES_PER_SECOND is refused (408) and its memory goes to
    them. When bodies wait and none is whole (being answered, sure to give its memory back
    soon), the first of them goes past the budget and on to its end: a worker holds at most the
    budget and one body more, beside a body answered in the event loop as soon as it has all
    come (`BodyClaim.answerable_at_once`), which takes its memory past the budget, ahead of any
    waiting, and gives it back within its answer.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0
        self.answering = 0  # whole bodies, each to give its memory back
        self.overdrawing: BodyClaim | None = None
        self._waiting: deque[tuple[BodyClaim, int, asyncio.Future, float]] = deque()
        self._receiving: set[BodyClaim] = set()  # bodies holding memory, not yet whole
        self._check: asyncio.TimerHandle | None = None

    async def take(self, claim: BodyClaim, total: int) -> bool:
        """Wait until `claim` may hold `total` bytes in all; False if it was refused meanwhile
        (or before), as too slow."""
        if claim.refused:
            return False
        needed = total - claim.taken
        if (
            claim is self.overdrawing
            or (not self._waiting and self.held + needed <= self.limit)
            or claim.answerable_at_once()
        ):
            self._grant(claim, needed)
            return True
        loop = asyncio.get_running_loop()
        granted = loop.create_future()
        self._waiting.append((claim, needed, granted, loop.time()))
        self._refuse_slow_bodies()
        self._let_in()
        return await granted  # cancelled (the client left): _let_in passes over it

    def whole(self, claim: BodyClaim) -> None:
        self._receiving.discard(claim)
        if claim.taken and not claim.whole:
            claim.whole = True
            self.answering += 1
        if claim is self.overdrawing:
            self.overdrawing = None

    def give_back(self, claim: BodyClaim) -> None:
        self._receiving.discard(claim)
        self.held -= claim.taken
        claim.taken = 0
        if claim.whole:
            claim.whole = False
            self.answering -= 1
        if claim is self.overdrawing:
            self.overdrawing = None
        self._let_in()

    def _grant(self, claim: BodyClaim, needed: int) -> None:
        if claim.since is None:
            claim.since = asyncio.get_running_loop().time()
        self.held += needed
        claim.taken += needed
        if not claim.whole:
            self._receiving.add(claim)

    def _let_in(self) -> None:
        while self._waiting:
            turn, at_once = self._next_turn()
            claim, needed, granted, waiting_since = self._waiting[turn]
            if granted.done():
                del self._waiting[turn]
                continue
            if self.held + needed > self.limit and not at_once:
                if self.answering or self.overdrawing is not None:
                    # Memory will come back, or a body is on its way past the budget; slow
                    # ones are looked for meanwhile.
                    self._check_again()
                    return
                self.overdrawing = claim
            del self._waiting[turn]
            if claim.since is not None:  # a wait for its first memory is before its window
                # Only the part of the wait within its window: one judged meanwhile started anew.
                now = asyncio.get_running_loop().time()
                claim.waited += now - max(waiting_since, claim.since)
            self._grant(claim, needed)
            granted.set_result(True)

    def _next_turn(self) -> tuple[int, bool]:
        """Where in the queue the next body to let in is, and whether it is answerable at once:
        the first that is, else the first."""
        for turn, (claim, _, granted, _) in enumerate(self._waiting):
            if not granted.done() and claim.answerable_at_once():
                return turn, True
        return 0, False

    def _check_again(self) -> None:
        if self._check is None:
            loop = asyncio.get_running_loop()
            self._check = loop.call_later(_SLOW_BODY_CHECK_SECONDS, self._checked)

    def _checked(self) -> None:
        self._check = None
        self._refuse_slow_bodies()
        self._let_in()

    def _refuse_slow_bodies(self) -> None:
        """Refuse the bodies that hold memory and have come slower than the least rate over
        their window, when others wait for memory. A window as long as the grace starts anew
        once looked at, so a body that slows down is refused within two graces, however much of
        it came before.

        A body that holds memory and waits for more is not read meanwhile: it is judged by what
        its client sends all the same, which waits unread, unless the server stopped reading it
        (its client is as fast as the server lets it be). Otherwise clients that each send a
        page's worth at once and then trickle would hold the whole budget, waiting, unjudged.
        """
        if not self._waiting:
            return
        now = asyncio.get_running_loop().time()
        waiting = {entry[0]: entry[2] for entry in self._waiting}
        for claim in list(self._receiving):
            if claim.refuse is None or claim.since is None:
                continue
            received = claim.arrived
            if claim.unread is not None:
                unread, held_up = claim.unread()
                if held_up:
                    continue
                received += unread
            elif claim in waiting:
                continue  # not read meanwhile, and no telling what its client sends
            seconds = now - claim.since - claim.waited
            if seconds < SLOW_BODY_GRACE_SECONDS:
                continue
            rate = (received - claim.arrived_before) / seconds
            if rate < SLOW_BODY_BYTES_PER_SECOND:
                claim.refuse(
                    408,
                    f"The request's body came at {rate:,.0f} bytes/s while other requests"
                    f" waited for memory; a large body must come at {SLOW_BODY_BYTES_PER_SECOND:,}"
                    " bytes/s or more then.",
                )
                claim.refused = True
                granted = waiting.get(claim)
                if granted is not None and not granted.done():
                    granted.set_result(False)  # passed over by _let_in from here
                self.give_back(claim)
            else:  # a window of at least the grace, judged: the next one starts
                claim.since, claim.arrived_before, claim.waited = now, received, 0.0


async def _waits_for_continue(scope: dict, claim: BodyClaim) -> bool:
    """Whether the client asked for a 100 (Continue) and waits for it: none of its body has
    come, nor comes within CONTINUE_WAIT_SECONDS. A client may send its body without waiting,
    and one refused and closed on mid-body sees a reset, not the 413. An HTTP/1.0 request's
    Expect is ignored (RFC 9110 section 10.1.1)."""
    expects = any(
        name == b"expect" and value.lower() == b"100-continue" for name, value in scope["headers"]
    )
    if not expects or scope.get("http_version") == "1.0" or claim.unread is None:
        return False
    if claim.unread()[0] == 0:
        await asyncio.sleep(CONTINUE_WAIT_SECONDS)
    return claim.unread()[0] == 0


def _declared_length(scope: dict) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def inline_body_bytes() -> int:
    """SUMSERVICE_INLINE_BODY_BYTES where the compiled kernel sums; where the Python path does
    (not built, turned off, or limits beyond the kernel's), holding the GIL 0.2-0.35 s per MiB,
    at most limits.PYTHON_PATH_INLINE_BODY_BYTES."""
    configured = settings.SUMSERVICE["INLINE_BODY_BYTES"]
    if summing.sums_in_kernel(
        settings.SUMSERVICE["MAX_NUMBER_LENGTH"], settings.SUMSERVICE["MAX_EXPONENT"]
    ):
        return configured
    return min(configured, limits.PYTHON_PATH_INLINE_BODY_BYTES)


application = BufferedWSGIApplication(
    wsgi_application,
    max_body_bytes=settings.SUMSERVICE["MAX_BODY_BYTES"],
    inline_body_bytes=inline_body_bytes(),
    threads=settings.SUMSERVICE["LARGE_REQUEST_THREADS"],
)
