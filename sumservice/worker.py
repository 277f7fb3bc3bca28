"""The gunicorn worker the service runs: gunicorn's asyncio (`asgi`) worker, made to hold up
against slow, idle and hostile clients on its own, with nothing in front.

On top of gunicorn's worker it adds, through its override points (the protocol's error
response and parser callbacks, the worker's serve and shutdown steps):

- refusals as JSON: what gunicorn answers itself (400, 414, 431, 501...) has the service's
  `{"detail": ...}` body, as every other error does;
- a header timeout (a connection that has not sent a whole request head in time gets 408) and
  a body timeout (likewise for the body), beside gunicorn's keep-alive timeout; a pause within a
  body is waited for up to the body timeout (`PatientBodyReceiver`); and a send timeout (a
  client that reads none of its answer for that long is dropped);
- a chunked body fed to the parser a piece at a time, and its chunks handed over together: a
  body of tiny chunks costs the parser, and the loop, time in proportion to its size;
- refusals counted and logged as Django's answers are;
- for the application, a way to refuse a request whose body is still coming (the scope's
  `REFUSE_EXTENSION`: sumservice.asgi's large bodies that come too slowly), and to know how
  much of it has come that it has not taken (`UNREAD_EXTENSION`);
- gunicorn's TLS settings served (a certificate that cannot be loaded stops the start);
- open files: the limit raised for `worker_connections` at start, and a worker that runs out
  waits a second before it accepts again rather than spin;
- a limit on the connections a worker holds (`worker_connections`): one more gets 503; those
  still being set up (a TLS handshake) count too, and while they take the worker past it, it
  takes no more (they wait in the listen queue, or another worker takes them);
- connections spread over the workers: each wakes for a new connection, and the one holding
  the fewest takes it (counts kept in memory the workers share); and a worker holding more
  than its share (its clients reconnected to it while another restarted) closes the excess
  kept-alive connections after a response, announced, for their clients to reconnect;
- a graceful stop that also serves the connections waiting in the listen queue: on SIGTERM the
  worker accepts what is queued (within its limit) before it closes its listening socket, then
  answers every request on every connection it holds (gunicorn's own drain), within the
  graceful timeout, its heartbeat going on meanwhile (the master watches a recycled worker as
  it drains);
- glibc's malloc kept from giving the heap back after every large body (`tune_malloc`).

The timeouts are class attributes that gunicorn.conf.py sets from the environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import json
import multiprocessing
import os
import resource
import signal
import socket
import ssl
import sys
import urllib.parse
from http import HTTPStatus

from gunicorn import sock as gunicorn_sock
from gunicorn.asgi import parser as python_parser
from gunicorn.asgi import protocol as gunicorn_protocol
from gunicorn.asgi.protocol import _MAX_FINISHING_APP_CALLS as MAX_FINISHING_APP_CALLS
from gunicorn.asgi.protocol import ASGIProtocol, BodyReceiver
from gunicorn.util import http_date
from gunicorn.workers.gasgi import ASGIWorker

# How long a stopping worker keeps an idle kept-alive connection open for a request the client
# may be sending already (gunicorn's gthread worker does the same).
STOP_KEEPALIVE_LINGER = 2.0

# The ASGI scope extension (a callable, status and message) through which the application ends
# a request with a JSON error and closes its connection, its body still arriving: sumservice.asgi
# refuses a large body that comes too slowly while others wait for memory.
REFUSE_EXTENSION = "sumservice.refuse"
# The ASGI scope extension (a callable, no arguments) that tells how many bytes of the request's
# body have come and wait unread, and whether the connection stopped reading for them (its buffer
# full): how fast a client sends while the application takes none of its body.
UNREAD_EXTENSION = "sumservice.unread"

# gunicorn's table of status lines' reason phrases lacks some the application answers (a 406
# from DRF's content negotiation went out as "406 Unknown"): the standard ones fill the gaps.
for _status in HTTPStatus:
    gunicorn_protocol._REASON_PHRASES.setdefault(_status.value, _status.phrase)

# How long a TLS connection being closed waits for the client's close_notify. asyncio's and
# uvloop's 30 s kept a closed connection counted that long, and a graceful stop waiting for it.
TLS_SHUTDOWN_SECONDS = 2.0

# What gunicorn_h1c keeps of the bytes that follow a finished request (a pipelined request),
# instead of its 64 KiB: gunicorn closes a connection that sent more. Reading pauses while a
# request is whole (SumProtocol._http1_buffered, and the connection loop), so what follows it
# is at most the rest of one read: 256 KiB with asyncio's loop, 250 KB with uvloop's.
PIPELINED_BYTES = 256 * 1024


def _use_h1c_when_installed() -> None:
    """gunicorn's `auto` parser choice records whether gunicorn_h1c (its C HTTP parser) is
    installed on the protocol class that asks, SumProtocol, but reads the answer from
    ASGIProtocol: asked here, on ASGIProtocol, the C parser serves whenever it is installed."""
    if ASGIProtocol._check_h1c_protocol_available():
        base = ASGIProtocol._h1c_protocol_class

        class H1CProtocol(base):
            def __init__(self, **options) -> None:
                super().__init__(limit_remaining=PIPELINED_BYTES, **options)

        ASGIProtocol._h1c_protocol_class = H1CProtocol


_use_h1c_when_installed()


def http_parser_in_use(setting: str) -> str:
    """Which parser gunicorn's `http_parser` setting (auto, fast, python) gives the workers.
    `fast` without gunicorn_h1c is refused here, at startup: gunicorn finds out only as each
    connection opens, and drops it."""
    installed = ASGIProtocol._h1c_available and ASGIProtocol._h1c_has_limits
    if setting == "fast" and not installed:
        raise RuntimeError(
            "GUNICORN_HTTP_PARSER=fast, but gunicorn_h1c is not installed"
            " (pip install -r requirements-compiled.txt, with a C compiler)"
        )
    if setting == "python" or not installed:
        return "gunicorn's Python HTTP parser"
    return "gunicorn_h1c, gunicorn's C HTTP parser"


class PatientBodyReceiver(BodyReceiver):
    """gunicorn's body receiver, waiting for the body as long as the connection's body timeout
    (a JSON 408) allows. gunicorn's own stops waiting after GUNICORN_TIMEOUT without a byte and
    tells the application that the client left while it is still connected: a 500 for it."""

    @property
    def all_received(self) -> bool:
        """Whether the body's last byte has come (some of it perhaps not taken yet)."""
        return self._complete

    def _pop_chunk(self) -> dict:
        # A body sent in tiny chunks (2 bytes each, in 7 on the wire) leaves thousands waiting
        # after each read: small ones are given together, up to JOIN_CHUNK_BYTES, not a
        # message (and a loop turn) each. Large ones go as they came, one at a time, as the
        # application takes memory for a large body as it arrives.
        chunks = self._chunks
        if len(chunks) > 1 and len(chunks[0]) + len(chunks[1]) <= JOIN_CHUNK_BYTES:
            joined = [chunks.popleft()]
            size = len(joined[0])
            while chunks and size + len(chunks[0]) <= JOIN_CHUNK_BYTES:
                size += len(chunks[0])
                joined.append(chunks.popleft())
            chunks.appendleft(b"".join(joined))
        return super()._pop_chunk()

    async def _wait_for_data(self) -> None:
        if self._chunks or self._complete or self._disconnected:
            return
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter  # woken by a chunk, the body's end, or the connection's close
        finally:
            self._waiter = None


class SumProtocol(ASGIProtocol):
    """One HTTP/1.1 connection, as gunicorn's protocol serves it, with timeouts and JSON errors."""

    def __init__(self, worker: SumWorker) -> None:
        super().__init__(worker)
        self._deadline: asyncio.TimerHandle | None = None
        self._send_deadline: asyncio.TimerHandle | None = None  # while the send buffer is full
        self._sent_mark = 0  # _delivered() when that deadline was set
        self._moving = False  # closed after this response, for its client to reconnect
        self._received_any = False  # whether the client has sent a byte yet
        # From a request's last byte until the next request's first; when that came.
        self._between_requests = False
        self._head_begun_at: float | None = None
        self._move_decided_on = 0  # the request (req_count) that decision was made on
        # Kept open, the worker stopping, for a request already received behind this one.
        self._serving_pipelined = False
        self._stopping_since: float | None = None  # when this connection heard of the stop

    def connection_made(self, transport: asyncio.Transport) -> None:
        worker = self.worker
        worker._connecting.pop(self, None)  # counted in nr_conns from here on
        super().connection_made(transport)
        worker.protocols.add(self)
        worker.publish_count()
        if worker.nr_conns > worker.worker_connections:
            self._refuse(
                503,
                f"This worker holds its {worker.worker_connections} connections; try again.",
                [("Retry-After", "1")],
            )
            return
        self._set_deadline(worker.header_timeout, "headers")
        if not worker.alive:
            # Taken from the listen queue by a stopping worker, after it told the others.
            self.worker_stopping()

    def data_received(self, data) -> None:
        if not self._received_any:
            self._received_any = True
            if not self.worker.alive:
                # Its first bytes came while the worker stops: the header timeout rules now,
                # not the stop's short wait for a connection that had sent nothing.
                self._cancel_keepalive_timer()
        super().data_received(data)

    def _build_http_scope(self, request, sockname, peername) -> dict:
        scope = super()._build_http_scope(request, sockname, peername)
        extensions = scope.setdefault("extensions", {})
        extensions[REFUSE_EXTENSION] = self._refuse
        extensions[UNREAD_EXTENSION] = self._unread
        return scope

    def _unread(self) -> tuple[int, bool]:
        """UNREAD_EXTENSION: the bytes of the body come and not taken, and whether its client
        cannot send more now: reading stopped, or the whole body has come."""
        receiver = self._body_receiver
        if receiver is None:
            return 0, True
        return receiver.buffered, self._reading_paused or receiver.all_received

    def _on_headers_complete(self):
        self._set_deadline(self.worker.body_timeout, "body")
        skip_body = super()._on_headers_complete()
        request = self._current_request
        if request.version >= (1, 1) and not any(
            name == b"host" for name, _ in request.headers_bytes
        ):
            self._refuse(400, "A Host header is required in HTTP/1.1 (RFC 9112 section 3.2).")
            return True
        if request.raw_path[:8].lower().startswith((b"http://", b"https://")):
            try:
                _to_origin_form(request)
            except ValueError:
                self._refuse(400, "Invalid request target.")
                return True
        if request.chunked and _transfer_codings(request) != [b"chunked"]:
            # The parsers frame the body by its last coding, chunked, and ignore those before
            # it (gzip): the application would be given the body still compressed.
            self._refuse(
                501,
                "A Transfer-Encoding other than chunked alone is not supported: send the body"
                " chunked, or with a Content-Length.",
            )
            return True
        # No byte of the body has come yet: the parser feeds it once this returns.
        self._body_receiver = PatientBodyReceiver(self._current_request, self)
        return skip_body

    def _on_message_complete(self) -> None:
        self._clear_deadline()
        self._between_requests = True
        self._head_begun_at = None
        super()._on_message_complete()

    def _feed_callback_parser(self, data) -> bool:
        # Empty lines before a request line are no request yet (RFC 9112 section 2.2).
        if self._between_requests and data.lstrip(b"\r\n"):
            self._next_head_begun()
        try:
            return self._feed_in_pieces(data)
        except ValueError:
            # gunicorn's Python parser reads Content-Length with int(), which refuses over
            # 4,300 digits (CPython's limit) with an error gunicorn leaves unanswered.
            self._refuse(400, "Invalid Content-Length.")
            return False

    def _feed_in_pieces(self, data) -> bool:
        """Feed the parser a chunked body (or a head, which may start one) FEED_PIECE_BYTES
        at a time: gunicorn_h1c moves what it holds to the front of its buffer after every
        chunk, so a read of tiny chunks fed whole costs the square of its size, all of it in
        the event loop (186 ms for 256 KiB of 2-byte chunks, 5.6 ms in 4 KiB pieces). A body
        of known length is fed whole, as it comes."""
        start = 0
        parser = self._callback_parser
        while (
            len(data) - start > FEED_PIECE_BYTES
            and parser is not None
            and parser.content_length is None
        ):
            if not super()._feed_callback_parser(data[start : start + FEED_PIECE_BYTES]):
                return False
            start += FEED_PIECE_BYTES
            parser = self._callback_parser
        if start == 0:
            return super()._feed_callback_parser(data)
        return parser is not None and super()._feed_callback_parser(data[start:])

    def _next_head_begun(self) -> None:
        """The first bytes of a kept-alive connection's next request: no longer idle, its head
        has the header timeout (and its JSON 408), as a new connection's has."""
        self._between_requests = False
        self._head_begun_at = self.worker.loop.time()
        if self._keepalive_handle is not None:  # waiting for it, idle until now
            self._cancel_keepalive_timer()
            self._set_deadline(self.worker.header_timeout, "headers")

    def _http1_buffered(self) -> int:
        """What the connection holds that the application has not taken: as good as full
        once a request is whole, until the connection loop takes the next one (it resumes
        reading then). The next request's bytes wait in the socket meanwhile: gunicorn_h1c
        keeps only PIPELINED_BYTES of what follows a finished request, and gunicorn closes a
        connection that sent more, as a keep-alive client's next large body could be."""
        parser = self._callback_parser
        if parser is not None and parser.is_complete:
            return self._max_buffer_size + 1
        return super()._http1_buffered()

    def connection_lost(self, exc: Exception | None) -> None:
        self._clear_deadline()
        self._cancel_send_deadline()
        super().connection_lost(exc)
        self.worker.protocols.discard(self)
        self.worker.publish_count()
        self.worker.accept_again()

    def _will_close(self, request, response_requires_close) -> bool:
        """gunicorn's keep-alive decision (announced in the response's head), with a request
        already received behind this one (pipelined) answered too when the worker stops or
        recycles, and one more reason to close: this worker holds more than its share. Decided
        once per request, as gunicorn may ask again once the response is written."""
        if self._closed or getattr(self._callback_parser, "remaining_truncated", False):
            # More came behind this request than the parser keeps (over TLS, a read can hold
            # more than PIPELINED_BYTES): the rest is lost, so this answer says it is the last.
            return True
        receiver = self._body_receiver
        if isinstance(receiver, PatientBodyReceiver) and not receiver.all_received:
            # Answered before its body came (a 413 for a body too large to read, or not sent
            # yet, waiting for a 100): the connection cannot carry another request.
            return True
        if super()._will_close(request, response_requires_close):
            # Past the request's own reasons, gunicorn closes when the worker stops or recycles.
            # A request already received behind this one is answered, within the stop's
            # linger: a client that keeps pipelining does not keep the worker.
            own_reasons = response_requires_close or request.should_close() or not self._keepalive
            lingering = (
                self._stopping_since is None
                or self.worker.loop.time() - self._stopping_since < STOP_KEEPALIVE_LINGER
            )
            if own_reasons or not lingering or not self._next_request_received():
                return True
            self._serving_pipelined = True  # the connection loop goes on to it
            return False
        if self._next_request_received():
            return False  # not moved elsewhere: it would be lost
        if self.req_count != self._move_decided_on:
            self._move_decided_on = self.req_count
            self._moving = self.worker.should_move_a_connection()
        return self._moving

    def _next_request_received(self) -> bool:
        """Whether the head of a next request, pipelined, has come behind the request being
        answered, already read: the connection loop takes it next."""
        parser = self._callback_parser
        return parser is not None and parser.is_complete and b"\r\n\r\n" in parser.remaining()

    async def _handle_connection(self):
        """gunicorn's connection loop (gunicorn/asgi/protocol.py, 27.0.1), less its uWSGI
        branch and its WebSocket one (the service has no WebSocket endpoint: an upgrade request
        is answered as the plain HTTP request it also is), with three changes, marked below.
        (The response that reaches max_requests announces "Connection: close" itself:
        gunicorn's _will_close counts it.)"""
        cancelled = False
        try:
            peername = self.transport.get_extra_info("peername")
            sockname = self.transport.get_extra_info("sockname")

            effective_peer = None
            while not self._closed:
                self.req_count += 1

                # Wait for headers to be parsed (callback sets the event and _current_request)
                # Don't clear if request already arrived (data_received ran before us)
                if not self._request_ready.is_set():
                    # Arm the keepalive timer while we wait for the next
                    # request to become available. While an application
                    # call is still running the connection is not idle;
                    # _finishing_call_done arms it once the last one ends.
                    if self.req_count > 1 and not self._finishing_calls:
                        self._arm_keepalive_timer()
                    self._awaiting_request = True
                    try:
                        await self._request_ready.wait()
                    except asyncio.CancelledError:
                        cancelled = True
                        break
                    finally:
                        self._awaiting_request = False
                self._cancel_keepalive_timer()

                if self._closed or self._current_request is None:
                    break

                request = self._current_request

                # If PROXY protocol provided a real client address, use it.
                # The PROXY header only opens a connection, so the answer
                # holds for every request on it.
                if effective_peer is None:
                    effective_peer = self._effective_peername(peername)

                # Check for cleartext HTTP/2 upgrade
                if self._h2c_upgrade_settings is not None:
                    await self._handle_h2c_upgrade(request)
                    break  # HTTP/2 takes over the connection

                # Bound the application calls left running on this
                # connection before starting another one.
                while len(self._finishing_calls) >= MAX_FINISHING_APP_CALLS:
                    await asyncio.wait(
                        list(self._finishing_calls), return_when=asyncio.FIRST_COMPLETED
                    )

                # Handle HTTP request
                self._serving_pipelined = False
                keepalive = await self._serve_http_request(request, sockname, effective_peer)

                # Increment worker request count
                self.worker.nr += 1

                # Check max_requests
                if self.worker.nr >= self.worker.max_requests and self.worker.alive:
                    # Changed: the worker stops accepting now, not at its next heartbeat, and
                    # only while the others serve (one recycle at a time).
                    self.worker.retire_in_turn()

                # Changed: a response that announced keep-alive
                # keeps its connection even when the worker is stopping or has reached
                # max_requests (gunicorn closes it then, and a client already sending its
                # next request gets a reset). That next request, if it comes within the
                # linger, is answered with "Connection: close". And one already received
                # (pipelined) is answered: gunicorn's keep-alive answer, worked out again
                # from the worker's state once the response is written, says no then.
                if not (keepalive or self._serving_pipelined):
                    break

                # Check connection limits for keepalive
                if not self._keepalive:
                    break

                # Refuse keepalive if the previous request body was not fully
                # framed: residual bytes in the transport stream would be parsed
                # as the start of the next request (smuggling).  Only _complete
                # signals a cleanly framed message; _closed is set on transport
                # disconnect *and* on receive timeout, neither of which means
                # the body finished framing.
                receiver = self._body_receiver
                if receiver is not None and not receiver._complete:
                    break

                # A pipelined next request already sits in the parser buffer
                # (feed() leaves the tail after a completed message); reset()
                # would clear it, so recover it and re-feed it below.
                pipelined = b""
                if self._callback_parser:
                    if getattr(self._callback_parser, "remaining_truncated", False):
                        # A capped tail cannot be safely replayed.
                        break
                    pipelined = self._callback_parser.remaining()
                    self._callback_parser.reset()

                # Clear request state for next iteration
                self._current_request = None
                self._body_receiver = None
                self._request_ready.clear()

                # Re-feed the pipelined request so it is served rather than
                # dropped; _feed_callback_parser fires _on_headers_complete
                # synchronously and closes the connection (returns False) on a
                # malformed tail.
                if pipelined and not self._feed_callback_parser(pipelined):
                    break
                # Changed: reading resumes once the tail is fed again, and not when the tail
                # held a whole request (gunicorn resumed before: a next read would add to a
                # finished request's tail, over what gunicorn_h1c keeps).
                self._maybe_resume_reading()

        except asyncio.CancelledError:
            cancelled = True
        except Exception as e:
            self.log.exception("Error handling connection: %s", e)
        finally:
            await self._finish_app_calls(cancelled)
            self._close_transport()

    def worker_stopping(self) -> None:
        """A connection with nothing to answer gets the stop's short wait: an idle kept-alive
        one where more remains of its keep-alive timeout, and one that has sent nothing yet
        (a browser's speculative connection) rather than the whole header timeout. The worker
        exits, and a recycled one is replaced, once its connections are closed."""
        if self._stopping_since is None:
            self._stopping_since = self.worker.loop.time()
        if self._closed:
            return
        if not self._received_any:
            self._close_if_idle_after(STOP_KEEPALIVE_LINGER)
            return
        handle = self._keepalive_handle
        if handle is None:
            return
        if handle.when() - self.worker.loop.time() > STOP_KEEPALIVE_LINGER:
            self._arm_keepalive_timer()

    def _arm_keepalive_timer(self) -> None:
        """While the worker stops, a kept-alive connection waits briefly for a request already
        on its way, not the whole keep-alive timeout. One whose next head began to arrive
        while the last request was answered is not idle: the rest of its header timeout."""
        if not self._between_requests and self._head_begun_at is not None:
            waited = self.worker.loop.time() - self._head_begun_at
            self._set_deadline(self.worker.header_timeout, "headers", waited)
            return
        if self.worker.alive:
            super()._arm_keepalive_timer()
            return
        self._close_if_idle_after(min(self._keepalive, STOP_KEEPALIVE_LINGER))

    def _close_if_idle_after(self, seconds: float) -> None:
        """gunicorn's keep-alive timer, set to `seconds`: a request that arrives cancels it."""
        self._cancel_keepalive_timer()
        self._keepalive_handle = self.worker.loop.call_later(seconds, self._keepalive_timeout)

    def pause_writing(self) -> None:
        """The send buffer is full: the client reads slowly, or not at all. One that reads
        none of it for the send timeout is dropped (it would read no answer): pipelining and
        never reading, it would hold its connection, and the answers waiting for it, for good.
        A large answer is written in one piece, so the buffer may stay full for as long as a
        slow client reads it: what it read since is what counts."""
        super().pause_writing()
        timeout = self.worker.send_timeout
        if timeout > 0 and self._send_deadline is None:
            self._watch_send_buffer(timeout)

    def _watch_send_buffer(self, timeout: float) -> None:
        self._sent_mark = self._delivered()
        self._send_deadline = self.worker.loop.call_later(timeout, self._unread_too_long, timeout)

    def _delivered(self) -> int:
        """A count that grows as the client reads: the bytes its TCP acknowledged (Linux's
        TCP_INFO, tcpi_bytes_acked), which also sees through TLS, whose write buffer does not
        shrink as the socket's drains; elsewhere, less what waits in the write buffer."""
        sock = self.transport.get_extra_info("socket")
        try:
            info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_BYTES)
        except (OSError, AttributeError):
            info = b""
        if len(info) >= _TCP_INFO_BYTES:
            return int.from_bytes(info[_BYTES_ACKED], sys.byteorder)
        return -self.transport.get_write_buffer_size()

    def resume_writing(self) -> None:
        super().resume_writing()
        self._cancel_send_deadline()

    def _cancel_send_deadline(self) -> None:
        if self._send_deadline is not None:
            self._send_deadline.cancel()
            self._send_deadline = None

    def _unread_too_long(self, seconds: float) -> None:
        self._send_deadline = None
        if self._delivered() >= self._sent_mark + SEND_PROGRESS_BYTES:
            self._watch_send_buffer(seconds)  # it reads: slowly, but it does
            return
        self.worker.log.info(
            "Dropped a client that read under %d bytes of its answer in %g s.",
            SEND_PROGRESS_BYTES,
            seconds,
        )
        self.transport.abort()

    def _set_deadline(self, seconds: float, what: str, elapsed: float = 0.0) -> None:
        """Answer 408 once `what` has not arrived in `seconds`, `elapsed` of them gone."""
        self._clear_deadline()
        if seconds > 0:
            self._deadline = self.worker.loop.call_later(
                max(0.0, seconds - elapsed), self._expired, seconds, what
            )

    def _clear_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self, seconds: float, what: str) -> None:
        self._deadline = None
        self._refuse(408, f"The request's {what} did not arrive within {seconds:g} s.")

    def _refuse(self, status: int, detail: str, extra_headers=()) -> None:
        self._send_error_response(status, detail, extra_headers)
        self._close_transport()
        if self._request_ready is not None:
            self._request_ready.set()  # the connection's task sees it closed and ends

    def _send_response_start(self, status, headers, request, close=False) -> None:
        # An HTTP/1.0 client keeps its connection only when told it stays open (RFC 9112
        # appendix C.2.2); gunicorn says only when it closes.
        if (
            not close
            and request.version == (1, 0)
            and all(name.lower() != b"connection" for name, _ in headers)
        ):
            headers = [*headers, (b"connection", b"keep-alive")]
        super()._send_response_start(status, headers, request, close=close)

    def _send_error_response(self, status: int, message: str, extra_headers=()) -> None:
        """gunicorn's refusals with the service's JSON error body instead of plain text."""
        if self._closed:
            return  # a timeout answered already, and closed
        # gunicorn calls this from the `except` that caught its parser's error.
        body = json.dumps({"detail": _sentence(message, status, sys.exc_info()[1])}).encode()
        # The request's own fields where its head was read, as Django's answers use them.
        request = self._current_request
        request_id = _request_id(_field(request, b"x-request-id"))
        head = [
            f"HTTP/1.1 {status} {_reason(status)}",
            "Content-Type: application/json",
            f"Content-Length: {len(body)}",
            *(f"{name}: {value}" for name, value in extra_headers),
            f"Date: {http_date()}",
            f"X-Request-ID: {request_id}",
            "Connection: close",
            "",
            "",
        ]
        self._safe_write("\r\n".join(head).encode("latin-1") + body)
        if self._received_any or status != 408:  # not the 408 of a connection left unused
            peer = self.transport.get_extra_info("peername") if self.transport else None
            peer_address = peer[0] if isinstance(peer, tuple) else ""
            forwarded = _field(request, b"x-forwarded-for")
            _record_refusal(status, len(body), request_id, peer_address, forwarded)


def _field(request, name: bytes) -> str:
    """A request header's value (its values joined, as Django joins them); empty without a
    head read or the header."""
    if request is None:
        return ""
    return ",".join(
        value.decode("latin-1") for field, value in request.headers_bytes if field == name
    )


# The api modules are imported where a worker serves, not at this module's import: the master
# imports this module before it makes the metrics folder, which prometheus_client must know of
# before it is first imported.
def _request_id(sent: str) -> str:
    from api import request_log

    return request_log.request_id_or_new(sent)


def _record_refusal(status: int, size: int, request_id: str, peer: str, forwarded: str) -> None:
    """Count and log a refusal made before Django, as Django's answers are."""
    from api import client_address, metrics, request_log

    metrics.count_refusal(status)
    client = client_address.address_behind(peer, forwarded)
    request_log.log_refusal(status, size, client, request_id)


class ConnectionCounts:
    """How many connections each worker of this gunicorn holds, and which workers are leaving
    new connections to the others, in memory the workers share.

    Made in the master when gunicorn.conf.py imports this module, so every worker forked from
    it sees the same pages. A worker claims a slot when it starts and writes its count there on
    every change; it releases the slot when it stops accepting, and the master frees it when it
    reaps the worker (`forget`, from gunicorn.conf.py's child_exit), however the worker died.
    Reads look at claimed slots only: no system call per worker on every accept."""

    SLOTS = 256

    def __init__(self) -> None:
        self._pids = multiprocessing.RawArray("q", self.SLOTS)
        self._counts = multiprocessing.RawArray("q", self.SLOTS)
        self._deferring = multiprocessing.RawArray("b", self.SLOTS)
        # How many workers the master keeps (gunicorn.conf.py's nworkers_changed: SIGTTIN and
        # SIGTTOU change it, the workers' own configuration does not know); 0 until it says.
        self._workers = multiprocessing.RawValue("i", 0)
        # One past the highest slot ever claimed: slots are claimed lowest first, so the scans
        # stop there rather than at SLOTS.
        self._high_water = multiprocessing.RawValue("i", 0)
        self._lock = multiprocessing.Lock()

    def claim(self, pid: int) -> int:
        with self._lock:
            for slot in range(self.SLOTS):
                if self._pids[slot] in (0, pid) or not _alive(self._pids[slot]):
                    self._pids[slot], self._counts[slot] = pid, 0
                    self._deferring[slot] = False
                    self._high_water.value = max(self._high_water.value, slot + 1)
                    return slot
        return -1  # more workers than slots: this one takes connections whenever it wakes

    def release(self, slot: int) -> None:
        if slot >= 0:
            self._pids[slot] = 0

    def forget(self, pid: int) -> None:
        """The worker `pid` has exited (gunicorn's master calls this as it reaps it): its slot
        is free, even if it died without releasing it and its pid is taken again."""
        for slot in range(self._high_water.value):
            if self._pids[slot] == pid:
                self._pids[slot] = 0

    def keep_workers(self, workers: int) -> None:
        """The master keeps `workers` workers from now on."""
        self._workers.value = workers

    def leave_in_turn(self, slot: int, configured: int, overdue: bool) -> bool:
        """Release `slot` and say yes if every worker the master keeps serves (`configured`
        where the master has not said): one leaves at a time. When `overdue`, if any other
        serves: the one away may take long to go (its connections drain) and come back. Else
        keep it and say no; a lone worker always leaves. Under the lock: of two workers that
        ask at once, one leaves."""
        if slot < 0:
            return True
        with self._lock:
            workers = self._workers.value or configured
            serving = sum(self._pids[other] != 0 for other in range(self._high_water.value))
            if workers > 1 and serving < (2 if overdue else workers):
                return False
            self._pids[slot] = 0
            return True

    def set(self, slot: int, count: int) -> None:
        if slot >= 0:
            self._counts[slot] = count

    def defer(self, slot: int, deferring: bool) -> None:
        """Say that the worker in `slot` leaves new connections to the others, or no longer."""
        if slot >= 0:
            self._deferring[slot] = deferring

    def elsewhere(self, slot: int) -> list[int]:
        """The connections each other worker holds."""
        return [
            self._counts[other]
            for other in range(self._high_water.value)
            if other != slot and self._pids[other] != 0
        ]

    def fewest_elsewhere(self, slot: int) -> int | None:
        """The fewest connections another worker holds, among those not leaving new ones
        to the others (two workers each waiting for the other would leave a connection to no
        one); None when there is none."""
        fewest = None
        for other in range(self._high_water.value):
            pid = self._pids[other]
            if other == slot or pid == 0 or self._deferring[other]:
                continue
            count = self._counts[other]
            if fewest is None or count < fewest:
                fewest = count
        return fewest


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


COUNTS = ConnectionCounts()

# How much of a read the HTTP parser is fed at a time, in a chunked body (SumProtocol), and
# up to how much of a body's small chunks the application is given joined.
FEED_PIECE_BYTES = 4096
JOIN_CHUNK_BYTES = 64 * 1024
# What a client must read of its answer per GUNICORN_SEND_TIMEOUT not to be dropped: asyncio's
# low-water mark, so that the deadline is cancelled at least once by then.
SEND_PROGRESS_BYTES = 16 * 1024
# Linux's struct tcp_info, up to tcpi_bytes_acked (a u64 at offset 120, since Linux 4.1).
_TCP_INFO_BYTES = 128
_BYTES_ACKED = slice(120, 128)

# glibc's malloc, left to itself, maps each 256 KiB piece of a large body read off the socket
# afresh and trims the heap back after each request: a page fault per page, ~1 ms of a 1 MiB
# request (docs/performance.md). A worker keeps up to 8 MiB of free heap instead, and takes
# blocks up to 1 MiB from it.
MALLOC_TRIM_THRESHOLD = 8 << 20
MALLOC_MMAP_THRESHOLD = 1 << 20
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)


def tune_malloc() -> bool:
    """Set the thresholds above; False where there is no mallopt (musl, macOS), or where the
    operator sets either threshold (GLIBC_TUNABLES, or glibc's older MALLOC_*_ variables)."""
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    if any(
        name in tunables for name in ("glibc.malloc.trim_threshold", "glibc.malloc.mmap_threshold")
    ) or any(name in os.environ for name in ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_")):
        return False
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is None:
        return False
    trim = mallopt(_M_TRIM_THRESHOLD, MALLOC_TRIM_THRESHOLD)
    return bool(trim and mallopt(_M_MMAP_THRESHOLD, MALLOC_MMAP_THRESHOLD))


# Files a worker has open besides its connections: listeners, logs, the event loop's, the metrics
# files, the rate limits' Redis connection. Allowed for on top of worker_connections.
OTHER_OPEN_FILES = 128


def raise_open_files_limit(wanted: int) -> int | None:
    """Raise this process's soft limit on open files (RLIMIT_NOFILE) towards `wanted`, within
    the hard limit; the limit now in force, None for no limit. Containers often start with a
    soft limit of 1024, under what the default 1000 connections and the rest need."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return None
    raised = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if raised <= soft:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
    except (OSError, ValueError):  # refused (a sandbox): the limit stays as it was
        return soft
    return raised


# accept()'s errors that leave the connection in the listen queue and the listener readable:
# accepting again at once would spin. asyncio's own server waits a second, as does this one.
ACCEPT_RESOURCE_ERRORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
ACCEPT_RETRY_SECONDS = 1.0

# The signals gunicorn's asyncio worker handles in its event loop.
LOOP_SIGNALS = frozenset(
    {signal.SIGQUIT, signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGWINCH, signal.SIGABRT}
)

# How long a worker holding more connections than another leaves a new one to that other
# worker before taking it itself (the other may be busy answering, or waiting for a core).
DEFER_ACCEPT_SECONDS = 0.003
# How often a worker may close a kept-alive connection to even out the workers: its client
# reconnects (a busy one within milliseconds) before the next is looked at, and a worker whose
# clients come back to it (the others stopped, or busy) closes at most this often.
MOVE_INTERVAL_SECONDS = 0.05


# The deadlines' defaults, in seconds (GUNICORN_HEADER_TIMEOUT, _BODY_, _SEND_); 0 turns one off.
HEADER_TIMEOUT = 10.0
BODY_TIMEOUT = 60.0
SEND_TIMEOUT = 60.0


class SumWorker(ASGIWorker):
    """gunicorn's asyncio worker serving connections through SumProtocol."""

    # gunicorn.conf.py sets them from the environment.
    header_timeout: float = HEADER_TIMEOUT
    body_timeout: float = BODY_TIMEOUT
    send_timeout: float = SEND_TIMEOUT
    _accepting = False
    _deferred = False
    # Listening sockets not watched until a connection being set up ends (_accept_one).
    _waiting_for_room: set[socket.socket]
    _slot = -1
    # Accepted connections whose connection_made has not run yet, and the tasks setting them up.
    _connecting: dict[SumProtocol, asyncio.Task]
    _stop_requested: asyncio.Event | None = None
    protocols: set[SumProtocol]  # the connections set up, until they close
    _next_move_at = 0.0  # loop time before which no connection is closed to even out workers
    _tls: ssl.SSLContext | None = None

    def init_process(self) -> None:
        # uvloop sees a signal only while its loop runs, and loses one that comes before (between
        # the fork and the loop's start): a SIGHUP's or a `docker stop`'s SIGTERM would then
        # never stop this worker. They are held from here until the loop runs (_serve).
        signal.pthread_sigmask(signal.SIG_BLOCK, LOOP_SIGNALS)
        tune_malloc()  # this worker's heap, from its fork on
        if self.cfg.is_ssl:
            # gunicorn's TLS settings (--certfile, --keyfile...), as its own workers read them.
            # Made here, a certificate that cannot be loaded stops the start, where gunicorn's
            # asyncio worker would log it and serve plain HTTP.
            try:
                self._tls = gunicorn_sock.ssl_context(self.cfg)
            except OSError as error:  # ssl.SSLError among them
                files = (self.cfg.certfile, self.cfg.keyfile)
                self.log.error("Cannot serve TLS with %s and %s: %s", *files, error)
                raise
        wanted = self.worker_connections + OTHER_OPEN_FILES
        open_files = raise_open_files_limit(wanted)
        if open_files is not None and open_files < wanted:
            self.log.warning(
                "Workers may open %d files, fewer than the %d that %d connections and the rest"
                " need: connections past that wait in the listen queue.",
                open_files,
                wanted,
                self.worker_connections,
            )
        super().init_process()

    async def _serve(self) -> None:
        """Serve every listening socket until told to stop, then stop gracefully.

        gunicorn's own steps, less the ASGI lifespan (the service has no startup work: the
        application is loaded before the worker serves), with SumProtocol, and accepting one
        connection at a time (asyncio's server takes all that wait at once, so on a socket
        the workers share, a burst of connections goes to whichever worker woke first)."""
        signal.pthread_sigmask(signal.SIG_UNBLOCK, LOOP_SIGNALS)  # held by init_process
        self._connecting = {}
        self._waiting_for_room = set()
        self.protocols = set()
        for listener in self.sockets:
            listener.sock.setblocking(False)
            self.loop.add_reader(listener.sock, self._accept_one, listener.sock)
        self._accepting = True
        self._slot = COUNTS.claim(os.getpid())  # now that it serves: others leave it its share
        self._stop_requested = asyncio.Event()
        try:
            while self.alive:
                self.notify()
                if self.ppid != os.getppid():
                    self.log.info("Parent changed, shutting down: %s", self)
                    self.alive = False
                    break
                # A SIGTERM ends the wait at once rather than at the next heartbeat.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop_requested.wait(), 1.0)
        except asyncio.CancelledError:
            pass
        await self._shutdown()

    def _accept_one(self, listener: socket.socket) -> None:
        """Every worker wakes for a new connection; the one holding the fewest takes it. One
        holding more than another (that is not itself leaving connections to others) leaves it
        for a few milliseconds, then takes it if it is still there (the other may be busy).

        One past the limit is taken (and answered 503 once set up), but no more while it, or a
        TLS handshake, is being set up: a client that never finishes its handshake holds a
        socket and its TLS state for the header timeout, and a flood of them would otherwise
        take every open file."""
        if self._set_ups_past_the_limit:
            self.loop.remove_reader(listener)
            self._waiting_for_room.add(listener)
            return
        if not self._deferred:
            fewest = COUNTS.fewest_elsewhere(self._slot)
            if fewest is not None and self.connections_held > fewest:
                self._deferred = True
                COUNTS.defer(self._slot, True)
                self.loop.remove_reader(listener)
                self.loop.call_later(DEFER_ACCEPT_SECONDS, self._resume_accepting, listener)
                return
        self._deferred = False
        try:
            connection, _ = listener.accept()
        except OSError as error:  # taken by another worker (EAGAIN), or aborted by the client
            if error.errno in ACCEPT_RESOURCE_ERRORS:
                self.log.error("Cannot accept a connection: %s; next try in 1 s.", error.strerror)
                self.loop.remove_reader(listener)
                self.loop.call_later(ACCEPT_RETRY_SECONDS, self._resume_accepting, listener)
            return
        self._take(connection)

    def _resume_accepting(self, listener: socket.socket) -> None:
        COUNTS.defer(self._slot, False)
        if self._accepting:
            self.loop.add_reader(listener, self._accept_one, listener)

    @property
    def connections_held(self) -> int:
        return self.nr_conns + len(self._connecting)

    @property
    def _set_ups_past_the_limit(self) -> bool:
        """Whether connections being set up take this worker past worker_connections."""
        return bool(self._connecting) and self.connections_held > self.worker_connections

    def should_move_a_connection(self) -> bool:
        """Whether to close the kept-alive connection being answered, for its client to
        reconnect to the worker holding the fewest: kept-alive clients that all reconnected
        here while a worker restarted would otherwise stay here for good. So when this worker
        holds more than an even share and two more than the least busy worker; looked at
        once per MOVE_INTERVAL_SECONDS at most."""
        now = self.loop.time()
        if now < self._next_move_at or self.connections_held < 3:
            return False
        self._next_move_at = now + MOVE_INTERVAL_SECONDS
        others = COUNTS.elsewhere(self._slot)
        mine = self.connections_held
        even_share = (mine + sum(others)) // (len(others) + 1)
        return bool(others) and mine > even_share and mine - min(others) >= 2

    def retire_in_turn(self) -> None:
        """max_requests reached: retire, once every other worker serves. Workers that share the
        load evenly reach it together, and retired together they left the service with none
        accepting until a replacement served. Past half as many requests again, once another
        serves at all (the one away may be draining for seconds); never while it is the only
        one accepting."""
        overdue = self.nr >= self.max_requests * 3 // 2
        if not COUNTS.leave_in_turn(self._slot, self.cfg.workers, overdue):
            return
        self._slot = -1  # left: a new worker may claim it now
        self.retire()

    def retire(self) -> None:
        """Stop accepting now, answer what this worker holds, and exit; gunicorn forks the
        replacement once this one has exited."""
        self.log.info("Autorestarting worker after current request.")
        self.alive = False
        if self._stop_requested is not None:
            self._stop_requested.set()

    def publish_count(self) -> None:
        """Tell the other workers how many connections this one holds."""
        COUNTS.set(self._slot, self.connections_held)

    def _take(self, connection: socket.socket) -> None:
        """Set the connection up in a task. gunicorn counts it (nr_conns) from connection_made,
        a loop turn or two later: until then it is counted here, or this worker would look
        empty and take a whole burst of connections, and a stop would not wait for it and
        drop it unanswered."""
        connection.setblocking(False)
        protocol = SumProtocol(self)
        tls = {}
        if self._tls is not None:
            # The handshake comes before the request's head, and has as long as the head does
            # (None, where that is no limit: asyncio's 60 s).
            handshake = self.header_timeout or None
            tls = {
                "ssl": self._tls,
                "ssl_handshake_timeout": handshake,
                "ssl_shutdown_timeout": TLS_SHUTDOWN_SECONDS,
            }
        task = self.loop.create_task(
            self.loop.connect_accepted_socket(lambda: protocol, connection, **tls)
        )
        self._connecting[protocol] = task
        task.add_done_callback(lambda done: self._set_up_ended(protocol, done))
        self.publish_count()

    def _set_up_ended(self, protocol: SumProtocol, setting_up: asyncio.Task) -> None:
        if self._connecting.pop(protocol, None) is not None:  # failed before connection_made
            self.publish_count()
        if not setting_up.cancelled() and setting_up.exception() is not None:
            # A TLS handshake that failed (plain HTTP to the port, a scanner): the client's.
            self.log.debug("Connection not set up: %r", setting_up.exception())
        self.accept_again()

    def accept_again(self) -> None:
        """A connection has been set up, or has closed: watch the listening sockets again
        (_accept_one looks at the room there is)."""
        while self._waiting_for_room:
            self._resume_accepting(self._waiting_for_room.pop())

    def handle_exit_signal(self) -> None:
        """SIGTERM: stop accepting at once, not at the next heartbeat a second later (after a
        SIGHUP, the new workers may already be signing with a key these ones do not know)."""
        super().handle_exit_signal()
        self.loop.create_task(self._stop_accepting())
        if self._stop_requested is not None:
            self._stop_requested.set()

    async def _stop_accepting(self) -> None:
        """Take the connections still waiting in the listen queue, so that closing the
        listening socket resets none of them (each is then served like any other); then stop
        listening, and shorten the wait of the idle connections. As many as _accept_one would:
        past the limit, the rest stay queued for the workers that go on (a whole stop resets
        them), rather than a flood of silent TLS clients taking every file."""
        if not self._accepting:
            return
        self._accepting = False
        COUNTS.release(self._slot)
        self._slot = -1  # free for a new worker: this one writes no count or flag there again
        for listener in self.sockets:
            self.loop.remove_reader(listener.sock)  # a deferred accept will not resume either
            while not self._set_ups_past_the_limit:
                try:
                    connection, _ = listener.sock.accept()
                except OSError:  # nothing queued (EAGAIN)
                    break
                self._take(connection)
            listener.close()
        for protocol in list(self.protocols):
            protocol.worker_stopping()

    async def _shutdown(self) -> None:
        # The master restarts a worker silent for GUNICORN_TIMEOUT, and still watches one that
        # drains after reaching max_requests: the heartbeat goes on until it exits.
        heartbeat = self.loop.create_task(self._notify_every_second())
        try:
            if not self._quick_shutdown:
                await self._stop_accepting()
                if self._connecting:
                    await asyncio.wait(list(self._connecting.values()))
            await super()._shutdown()
        finally:
            heartbeat.cancel()

    async def _notify_every_second(self) -> None:
        while True:
            self.notify()
            await asyncio.sleep(1.0)


def _to_origin_form(request) -> None:
    """A request target in absolute form (`POST http://host/sum`, as sent to a proxy), which a
    server must accept (RFC 9112 section 3.2.2), as the path it names, its authority the host
    in place of the Host header. ValueError for one that cannot be read (`http://[::1/sum`)."""
    target = urllib.parse.urlsplit(request.raw_path)
    request.raw_path = target.path or b"/"
    request.path = urllib.parse.unquote_to_bytes(request.raw_path).decode("utf-8", "replace")
    others = [(name, value) for name, value in request.headers_bytes if name != b"host"]
    request.headers_bytes = [(b"host", target.netloc), *others]


def _transfer_codings(request) -> list[bytes]:
    """The request's transfer codings, in order, lower-case (RFC 9112 section 6.1)."""
    return [
        coding.strip().lower()
        for name, value in request.headers_bytes
        if name == b"transfer-encoding"
        for coding in value.split(b",")
        if coding.strip()
    ]


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


# What gunicorn's Python parser refused, for its errors whose message is only the text refused
# ("get", "HTTP/1.1", a header's name) rather than a sentence (its others are sentences).
_PARSER_REFUSALS = {
    python_parser.InvalidRequestMethod: "Invalid HTTP method",
    python_parser.InvalidHTTPVersion: "Invalid HTTP version",
    python_parser.InvalidHeaderName: "Invalid header name",
    python_parser.UnsupportedTransferCoding: "Unsupported Transfer-Encoding",
}


def _sentence(message: str, status: int, error: BaseException | None = None) -> str:
    """gunicorn's messages are terse: say what its Python parser refused (`error`, the
    exception it caught), and which status they explain when they are empty."""
    if status == 414:  # each parser words it its own way, gunicorn_h1c's misleadingly
        return "The request line is too long: send a shorter target."
    refused = _PARSER_REFUSALS.get(type(error))
    if refused:
        # The refused value itself, quoted to show its spaces; not what ran into the rest of the
        # head (over a bare CR), which may carry the request's credentials.
        if message and message.isprintable() and len(message) <= 64:
            return f'{refused}: "{message}".'
        return f"{refused}."
    # gunicorn_h1c 0.6.10 formats one message with `%.*s`, which Python's PyErr_Format leaves
    # as it is ("Header field not allowed in trailer: %.*s").
    message = message.replace(": %.*s", ".").strip()
    return message or f"{status} {_reason(status)}"
