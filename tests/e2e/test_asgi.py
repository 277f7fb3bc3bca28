"""The bridge between gunicorn's asyncio worker and Django (sumservice/asgi.py), end to end:
request bodies, chunked or not, reach the service whole and within the size limit.

Cost: ~5 s (the over-limit bodies are ~11 MiB each)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import mmap
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import requests
from django.conf import settings
from django.test import override_settings

from api import limits, summing
from api.parsers import RECEIVED_BODY
from sumservice import asgi
from sumservice.asgi import BodyClaim, BufferedWSGIApplication, LargeBodyBudget
from tests.e2e.clients import connect, read_response, sum_request, token
from tests.liveserver import LiveServer

MIB = 1024 * 1024
LIMIT = 10 * MIB
SUM_10 = "4a44dc15364204a80fe80e9039455cc1608281820fe2b24f1e5233ade6af1dd5"


def post_sum(server: LiveServer, data: bytes | Iterator[bytes]) -> requests.Response:
    return requests.post(
        server.url + "/sum",
        data=data,
        headers={"Authorization": f"Bearer {token(server)}", "Content-Type": "application/json"},
        timeout=60,
    )


def test_a_chunked_body_is_read_whole(server: LiveServer) -> None:
    answer = post_sum(server, iter([b"[1,", b"2,", b"3,4", b"]"]))  # requests sends it chunked
    assert answer.request.headers["Transfer-Encoding"] == "chunked"
    assert answer.status_code == 200
    assert answer.json() == {"sha256": SUM_10, "sum": "10"}


def test_a_chunked_body_of_exactly_the_limit_is_accepted(server: LiveServer) -> None:
    body = b"[" + b" " * (LIMIT - 3) + b"7]"
    answer = post_sum(server, (body[start : start + MIB] for start in range(0, LIMIT, MIB)))
    assert answer.status_code == 200, answer.text[:200]
    assert answer.json()["sum"] == "7"


def test_a_chunked_body_over_the_limit_is_413(server: LiveServer) -> None:
    body = b"[" + b" " * (LIMIT - 2) + b"7]"  # one byte over
    answer = post_sum(server, (body[start : start + MIB] for start in range(0, len(body), MIB)))
    assert answer.status_code == 413
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.json()["detail"]
    assert requests.get(server.url + "/healthz", timeout=5).status_code == 200


def test_a_body_over_the_limit_is_413_with_content_length(server: LiveServer) -> None:
    answer = post_sum(server, b"[" + b" " * LIMIT + b"]")
    assert answer.status_code == 413
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.json()["detail"]


def test_a_large_body_is_answered_beside_small_ones(server: LiveServer) -> None:
    """Over the inline size a request runs in the worker's thread; its answer is the same."""
    numbers = b",".join(b"%d" % n for n in range(200_000))
    answer = post_sum(server, b"[" + numbers + b"]")
    assert answer.status_code == 200
    assert answer.json()["sum"] == str(sum(range(200_000)))


@contextlib.contextmanager
def trickling(stalled: list[socket.socket]) -> Iterator[None]:
    """A byte a second to each of the `stalled` connections, and every one closed at the end."""
    stop = threading.Event()

    def trickle() -> None:
        while not stop.wait(1):
            for sock in stalled:
                with contextlib.suppress(OSError):
                    sock.send(b" ")

    trickler = threading.Thread(target=trickle)
    trickler.start()
    try:
        yield
    finally:
        stop.set()
        trickler.join()
        for sock in stalled:
            sock.close()


def refused_as_slow(stalled: list[socket.socket], within: float) -> list:
    """The answers the `stalled` connections got within `within` seconds: each a JSON 408 for
    a body that came too slowly; at least one."""
    refused = []
    deadline = time.monotonic() + within
    for sock in stalled:
        sock.settimeout(max(deadline - time.monotonic(), 0.1))
        with contextlib.suppress(OSError):
            refused.append(read_response(sock))
    assert refused, "no slow body was refused"
    for status, headers, detail in refused:
        assert status == 408 and headers["content-type"] == "application/json"
        assert b"while other requests waited for memory" in detail
    return refused


def test_clients_sending_large_bodies_slowly_hold_up_no_other_large_body(
    server: LiveServer,
) -> None:
    """48 clients each declare a 1 MiB body, send 100 kB of it and then a byte a second: each
    holds a 2 MiB page of its worker's memory, more than the budget has (20 pages). Other
    large bodies are answered all the same: the slow ones are refused as they wait."""
    numbers = b",".join(b"%d" % n for n in range(170_000))
    body = b"[" + numbers + b"]"
    assert len(body) > MIB
    stalled: list[socket.socket] = []
    with trickling(stalled):
        for _ in range(48):
            sock = connect(server)
            request = sum_request(token(server), body)
            sock.sendall(request[: len(request) - len(body) + 100_000])
            stalled.append(sock)
        for _ in range(3):
            answer = post_sum(server, body)
            assert answer.status_code == 200
            assert answer.json()["sum"] == str(sum(range(170_000)))
            assert answer.elapsed.total_seconds() < 2 * asgi.SLOW_BODY_GRACE_SECONDS + 1
        refused_as_slow(stalled, within=0.1 * len(stalled))


def test_slow_clients_waiting_for_more_memory_hold_up_no_other_large_body() -> None:
    """24 clients each declare a 10 MiB body, send its first 2 MiB page and a few bytes more at
    once, and then a byte a second: most of them hold a page and wait for a second one, more
    than the worker's budget (10 pages with one thread). Waiting, they are judged by what their
    clients send all the same, and refused; a large body that has all come meanwhile is
    answered at once, ahead of them, not once their body timeout ends them."""
    numbers = b",".join(b"%d" % n for n in range(20_000))
    body = b"[" + numbers + b"]"
    assert asgi.LARGE_BODY_BYTES < len(body) < 256 * 1024  # all of it read before it has memory
    declared = b"[" + b" " * (10 * MIB - 2) + b"]"
    environment = {"SUMSERVICE_LARGE_REQUEST_THREADS": "1", "GUNICORN_BODY_TIMEOUT": "30"}
    stalled: list[socket.socket] = []
    with LiveServer(workers=1, env=environment) as server, trickling(stalled):
        access_token = token(server)
        for _ in range(24):
            sock = connect(server, timeout=1)
            request = sum_request(access_token, declared)
            head = len(request) - len(declared)
            with contextlib.suppress(TimeoutError):  # sent as far as the server reads
                sock.sendall(request[: head + 2 * MIB + 8])
            stalled.append(sock)
        answer = post_sum(server, body)
        assert answer.status_code == 200
        assert answer.json()["sum"] == str(sum(range(20_000)))
        assert answer.elapsed.total_seconds() < 2
        refused = refused_as_slow(stalled, within=3 * asgi.SLOW_BODY_GRACE_SECONDS + 2)
        # At least those that held the budget's 10 pages, waiting: none was exempt for waiting.
        assert len(refused) >= 5


# --- in process: the bridge alone, given what gunicorn's receive hands over ---------------------


def http_scope(headers: list[tuple[bytes, bytes]]) -> dict:
    return {
        "type": "http",
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/sum",
        "raw_path": b"/sum",
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
    }


def bridge(wsgi, inline_body_bytes: int = 32) -> BufferedWSGIApplication:
    """A bridge to `wsgi` with a 1 KiB limit, a 32-byte large size (and inline size, unless
    given) and one thread."""
    return BufferedWSGIApplication(
        wsgi,
        max_body_bytes=1024,
        inline_body_bytes=inline_body_bytes,
        large_body_bytes=32,
        threads=1,
    )


def serve(
    wsgi,
    chunks: list[bytes],
    *,
    chunked: bool = False,
    left_after: int | None = None,
    inline_body_bytes: int = 32,
):
    """One request through a bridge with a 1 KiB limit and a 32-byte large size (and inline
    size, unless given): its body in `chunks` (with a Content-Length of their total unless
    `chunked`), the client leaving after `left_after` of them if given. The messages sent back."""
    app = bridge(wsgi, inline_body_bytes)
    messages = [
        {"type": "http.request", "body": chunk, "more_body": index < len(chunks) - 1}
        for index, chunk in enumerate(chunks)
    ][:left_after]
    messages.append({"type": "http.disconnect"})
    headers = [] if chunked else [(b"content-length", str(sum(map(len, chunks))).encode())]
    sent: list[dict] = []

    async def receive() -> dict:
        return messages.pop(0)

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(app(http_scope(headers), receive, send))
    app.executor.shutdown()
    return sent


@pytest.mark.parametrize("size", [3, 64])  # answered inline, and in the worker's thread
def test_the_body_is_let_go_once_answered(size: int) -> None:
    """Django's and DRF's request objects outlive a request in reference cycles until the
    collector runs; the bridge closes the input it made and releases the body it offered, so
    they no longer hold the body."""
    seen: list[dict] = []

    def wsgi(environ: dict, start_response):
        seen.append(environ)
        body = environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b'{"length": %d}' % len(body)]

    sent = serve(wsgi, [b"[" + b"1" * (size - 2) + b"]"])

    assert sent[-1]["body"] == b'{"length": %d}' % size
    assert seen[0]["wsgi.input"].closed
    with pytest.raises(ValueError, match="released"):
        seen[0][RECEIVED_BODY].tobytes()


@pytest.mark.parametrize(
    ("size", "buffer", "thread"),
    [
        (20, "bytearray", "MainThread"),  # small
        (100, "mmap", "MainThread"),  # large (a mapping, in the large-body budget), yet inline
        (128, "mmap", "MainThread"),  # at the inline size
        (129, "mmap", "large-request_0"),  # past it
    ],
)
def test_a_body_runs_in_the_event_loop_up_to_the_inline_size(
    size: int, buffer: str, thread: str
) -> None:
    """The inline size (where the application runs) and the large size (which buffer, counted
    in the large-body budget) are two settings."""
    ran: list[tuple[str, str]] = []

    def wsgi(environ: dict, start_response):
        ran.append((type(environ[RECEIVED_BODY].obj).__name__, threading.current_thread().name))
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b"{}"]

    sent = serve(wsgi, [b"[" + b"1" * (size - 2) + b"]"], inline_body_bytes=128)
    assert sent[0]["status"] == 200
    assert ran == [(buffer, thread)]


@pytest.mark.parametrize(
    ("configured", "kernel", "max_number_length", "inline"),
    [
        (limits.MAX_INLINE_BODY_BYTES, True, limits.MAX_NUMBER_LENGTH, 1024 * 1024),
        (limits.MAX_INLINE_BODY_BYTES, False, limits.MAX_NUMBER_LENGTH, 64 * 1024),
        # limits beyond the kernel's: the Python path sums even where the kernel is built
        (limits.MAX_INLINE_BODY_BYTES, True, 2 * 1024 * 1024, 64 * 1024),
        (1000, True, limits.MAX_NUMBER_LENGTH, 1000),
        (1000, False, limits.MAX_NUMBER_LENGTH, 1000),
    ],
)
def test_the_loop_sums_up_to_1_mib_with_the_kernel_and_64_kib_on_the_python_path(
    monkeypatch: pytest.MonkeyPatch,
    configured: int,
    kernel: bool,
    max_number_length: int,
    inline: int,
) -> None:
    assert summing.kernel is not None, "the summing kernel is not built: run ./test.sh"
    if not kernel:
        monkeypatch.setattr(summing, "kernel", None)
    serving = {"INLINE_BODY_BYTES": configured, "MAX_NUMBER_LENGTH": max_number_length}
    with override_settings(SUMSERVICE={**settings.SUMSERVICE, **serving}):
        assert asgi.inline_body_bytes() == inline


def test_an_exponent_limit_beyond_the_kernels_keeps_the_loop_to_64_kib() -> None:
    beyond = {"MAX_EXPONENT": 2 * 1024 * 1024}
    with override_settings(SUMSERVICE={**settings.SUMSERVICE, **beyond}):
        assert asgi.inline_body_bytes() == 64 * 1024


def test_the_served_application_takes_its_inline_size_from_the_settings() -> None:
    assert asgi.application.inline_body_bytes == asgi.inline_body_bytes() == 1024 * 1024


def test_a_large_body_is_let_go_in_the_event_loops_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Answered in the large-request thread, its mapping is still unmapped in the loop's thread,
    which maps the next body: unmapped in another, the next one was slower to fault in."""
    unmapped_in: list[str] = []

    class Mapping(mmap.mmap):
        def __del__(self) -> None:
            unmapped_in.append(threading.current_thread().name)

    monkeypatch.setattr(asgi, "_large_buffer", lambda size: Mapping(-1, size))
    ran_in: list[str] = []

    def wsgi(environ: dict, start_response):
        ran_in.append(threading.current_thread().name)
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b"{}"]

    sent = serve(wsgi, [b"[" + b"1" * 98 + b"]"])  # over the large and the inline size
    assert sent[0]["status"] == 200
    assert (ran_in, unmapped_in) == (["large-request_0"], ["MainThread"])


def test_an_answer_the_application_gave_no_length_gets_its_length() -> None:
    """Django's answer to an error raised before CommonMiddleware has no Content-Length: the
    bridge holds the whole body, so it frames it by its length rather than chunked."""

    def wsgi(environ: dict, start_response):
        start_response("400 Bad Request", [("Content-Type", "application/json")])
        return [b'{"detail": ', b'"Bad request."}']

    sent = serve(wsgi, [b"[1]"])
    assert sent[-1]["body"] == b'{"detail": "Bad request."}'
    assert (b"content-length", b"26") in sent[0]["headers"]


def test_the_application_keeps_its_per_thread_state_across_requests() -> None:
    """As in a WSGI server's threads: Django's caches (and the connections they hold) made in
    one request are there for the next on the same thread, though each request runs in a task
    of its own, inline or in the large-request thread."""
    from django.core.cache import caches

    seen: list[tuple[str, object]] = []

    def wsgi(environ: dict, start_response):
        seen.append((threading.current_thread().name, caches["default"]))
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b"{}"]

    app = bridge(wsgi)

    async def request(size: int) -> None:
        body = b"[" + b"1" * (size - 2) + b"]"
        messages = [{"type": "http.request", "body": body, "more_body": False}]

        async def receive() -> dict:
            return messages.pop(0) if messages else {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            pass

        await app(http_scope([(b"content-length", str(size).encode())]), receive, send)

    async def in_tasks_of_their_own() -> None:
        for size in (3, 3, 64, 64):  # inline twice, then in the thread twice
            await asyncio.create_task(request(size))

    asyncio.run(in_tasks_of_their_own())
    app.executor.shutdown()
    threads = [thread for thread, _ in seen]
    assert threads == ["MainThread", "MainThread", "large-request_0", "large-request_0"]
    assert seen[0][1] is seen[1][1]
    assert seen[2][1] is seen[3][1]


def reader(environ: dict, start_response):
    """Reads the body as Django may (lines, sizes, the rest) and as /sum's parser does (the
    received view), and answers what each saw."""
    stream = environ["wsgi.input"]
    parts = [stream.readline(), stream.read(5), stream.readline(4), stream.read(), stream.read()]
    start_response("200 OK", [("Content-Type", "application/json")])
    seen = {
        "CONTENT_LENGTH": environ["CONTENT_LENGTH"],
        "read": [part.decode() for part in parts],
        "received": environ[RECEIVED_BODY].tobytes().decode(),
        "read-only": environ[RECEIVED_BODY].readonly,
    }
    return [json.dumps(seen).encode()]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize("size", [20, 32, 33, 700, 1024])  # inline, at it, past it, the limit
def test_the_body_reaches_the_application_whole_as_a_file_and_in_place(
    size: int, chunked: bool
) -> None:
    body = (b"first line\nsecond\n" + b"x" * size)[:size]
    chunks = [body[start : start + 7] for start in range(0, size, 7)]
    sent = serve(reader, chunks, chunked=chunked)
    assert sent[0]["status"] == 200
    seen = json.loads(sent[-1]["body"])
    assert seen["CONTENT_LENGTH"] == str(size)
    assert "".join(seen["read"]) == seen["received"] == body.decode()
    assert seen["read"][0] == body[: body.index(b"\n") + 1].decode()
    assert seen["read-only"]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_body_over_the_limit_reaches_the_application_empty_with_its_length(
    chunked: bool,
) -> None:
    """The application (BodySizeLimitMiddleware) answers it 413 from the length alone."""
    sent = serve(reader, [b"[" + b"1" * 600, b"2" * 423 + b"]"], chunked=chunked)  # 1025 bytes
    seen = json.loads(sent[-1]["body"])
    assert seen["CONTENT_LENGTH"] == "1025"
    assert seen["received"] == "".join(seen["read"]) == ""


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_client_that_leaves_mid_body_gets_no_answer(chunked: bool) -> None:
    called: list[dict] = []
    chunks = [b"[1,", b"2]"] * 40
    sent = serve(lambda environ, _: called.append(environ), chunks, chunked=chunked, left_after=30)
    assert sent == [] and called == []


def test_a_declared_large_body_takes_memory_from_its_first_byte() -> None:
    """Its mapping's first page is filled by the first byte: the budget counts it then."""
    app = bridge(reader)
    held: list[int] = []
    messages = [{"type": "http.request", "body": b"[1,", "more_body": True}]

    async def receive() -> dict:
        held.append(app.large_bodies.held)
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    asyncio.run(app(http_scope([(b"content-length", b"100")]), receive, lambda m: None))
    app.executor.shutdown()
    assert held == [0, 2 * MIB]  # one 2 MiB page; the client then left
    assert app.large_bodies.held == 0


def test_a_body_declared_over_the_limit_is_counted_not_kept() -> None:
    app = bridge(reader)
    held: list[int] = []
    messages = [
        {"type": "http.request", "body": b"[" + b"1" * 600, "more_body": True},
        {"type": "http.request", "body": b"2" * 423 + b"]", "more_body": False},
    ]
    sent: list[dict] = []

    async def receive() -> dict:
        held.append(app.large_bodies.held)
        return messages.pop(0)

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(app(http_scope([(b"content-length", b"1025")]), receive, send))
    app.executor.shutdown()
    assert held == [0, 0]
    assert json.loads(sent[-1]["body"])["received"] == ""


def test_a_body_whose_client_left_while_it_is_summed_is_held_until_the_thread_is_done() -> None:
    """The thread still reads the body: its memory is not given back to others before."""
    release = threading.Event()
    app = bridge(lambda environ, start_response: release.wait(5) and [])
    body = b"[" + b"1" * 98 + b"]"
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict:
        return messages.pop(0)

    async def steps() -> list[int]:
        scope = http_scope([(b"content-length", b"100")])
        request = asyncio.create_task(app(scope, receive, lambda m: None))
        await asyncio.sleep(0.1)  # in the thread
        request.cancel()
        await asyncio.sleep(0.1)
        seen = [app.large_bodies.held]
        release.set()
        await asyncio.sleep(0.2)
        return [*seen, app.large_bodies.held]

    held_then, held_after = asyncio.run(steps())
    app.executor.shutdown()
    assert (held_then, held_after) == (2 * MIB, 0)  # one 2 MiB page


# --- the large-body budget ----------------------------------------------------------------------


def run_budget(steps) -> None:
    """Run `steps(budget)`, a coroutine function, on a budget of 10 bytes."""
    asyncio.run(steps(LargeBodyBudget(10)))


async def waiting(budget: LargeBodyBudget, claim: BodyClaim, total: int) -> asyncio.Task:
    """`claim` asking for `total` bytes in all, in a task of its own, run until it waits."""
    task = asyncio.get_running_loop().create_task(budget.take(claim, total))
    await asyncio.sleep(0)
    return task


def test_bodies_take_memory_as_they_fill_it_within_the_budget() -> None:
    async def steps(budget: LargeBodyBudget) -> None:
        first, second = BodyClaim(), BodyClaim()
        await budget.take(first, 4)
        await budget.take(first, 6)  # the same body, grown: 2 more
        await budget.take(second, 4)
        assert (first.taken, second.taken, budget.held) == (6, 4, 10)
        budget.whole(first)
        budget.give_back(first)
        assert budget.held == 4

    run_budget(steps)


def test_past_the_budget_a_body_waits_for_one_answered_and_bodies_go_in_turn() -> None:
    async def steps(budget: LargeBodyBudget) -> None:
        answered, receiving = BodyClaim(), BodyClaim()
        await budget.take(answered, 6)
        budget.whole(answered)
        await budget.take(receiving, 3)
        first = await waiting(budget, BodyClaim(), 4)
        second = await waiting(budget, BodyClaim(), 1)  # would fit, but waits its turn
        assert not first.done() and not second.done()
        budget.give_back(answered)
        await asyncio.sleep(0)
        assert first.done() and second.done()
        assert budget.held == 3 + 4 + 1

    run_budget(steps)


def test_when_no_body_is_whole_the_first_waiting_goes_past_the_budget_alone() -> None:
    async def steps(budget: LargeBodyBudget) -> None:
        holding = BodyClaim()
        await budget.take(holding, 8)  # its client then sends nothing more
        first, second = BodyClaim(), BodyClaim()
        first_task = await waiting(budget, first, 4)
        second_task = await waiting(budget, second, 4)
        assert first_task.done() and not second_task.done()
        assert budget.overdrawing is first
        await budget.take(first, 12)  # on to its end, past the budget
        assert budget.held == 20
        budget.whole(first)  # whole: its memory comes back once answered
        await asyncio.sleep(0)
        assert not second_task.done()
        budget.give_back(first)
        await asyncio.sleep(0)
        # The slow one still holds 8, and no body is whole: the next goes past in its turn.
        assert second_task.done() and budget.overdrawing is second
        assert budget.held == 8 + 4

    run_budget(steps)


def test_a_body_whose_client_left_while_waiting_is_passed_over() -> None:
    async def steps(budget: LargeBodyBudget) -> None:
        answered = BodyClaim()
        await budget.take(answered, 10)
        budget.whole(answered)
        left, next_one = BodyClaim(), BodyClaim()
        left_task = await waiting(budget, left, 4)
        next_task = await waiting(budget, next_one, 4)
        left_task.cancel()
        budget.give_back(answered)
        await asyncio.sleep(0)
        assert left_task.cancelled() and next_task.done()
        assert (left.taken, next_one.taken, budget.held) == (0, 4, 4)

    run_budget(steps)


def slow_claim(refused: list, arrived: int) -> BodyClaim:
    """A body of which `arrived` bytes have come; its refusals are recorded in `refused`."""
    claim = BodyClaim(lambda status, detail: refused.append((status, detail)))
    claim.arrived = arrived
    return claim


async def holding(budget: LargeBodyBudget, claim: BodyClaim, total: int, since: float) -> None:
    """`claim` holding `total` bytes, taken `since` seconds ago."""
    await budget.take(claim, total)
    claim.since = asyncio.get_running_loop().time() - since


def test_while_bodies_wait_a_body_come_too_slowly_is_refused_and_its_memory_given() -> None:
    async def steps(budget: LargeBodyBudget) -> None:
        refused: list = []
        seconds = asgi.SLOW_BODY_GRACE_SECONDS + 1
        slow = slow_claim(refused, arrived=100)
        fast = slow_claim(refused, arrived=2 * asgi.SLOW_BODY_BYTES_PER_SECOND * seconds)
        await holding(budget, slow, 4, since=seconds)
        await holding(budget, fast, 4, since=seconds)
        answered = BodyClaim()
        await budget.take(answered, 2)
        budget.whole(answered)  # whole: a body that waits waits for memory given back
        waiting_body = await waiting(budget, BodyClaim(), 4)
        assert waiting_body.done()
        assert [status for status, _ in refused] == [408]
        assert "came at 33 bytes/s while other requests waited for memory" in refused[0][1]
        assert slow.taken == 0 and fast.taken == 4

    run_budget(steps)


def test_no_body_is_refused_in_its_first_seconds_or_while_none_waits() -> None:
    async def steps(budget: LargeBodyBudget) -> None:
        refused: list = []
        young = slow_claim(refused, arrived=0)
        old = slow_claim(refused, arrived=0)
        await holding(budget, young, 4, since=asgi.SLOW_BODY_GRACE_SECONDS / 2)
        await holding(budget, old, 4, since=asgi.SLOW_BODY_GRACE_SECONDS + 10)
        await budget.take(BodyClaim(), 2)  # fits: no one waits
        assert refused == []
        answered = BodyClaim()
        budget.whole(answered)
        waiting_body = await waiting(budget, BodyClaim(), 4)  # now one waits
        assert len(refused) == 1 and old.taken == 0 and young.taken == 4
        assert waiting_body.done()

    run_budget(steps)


def test_a_body_sent_fast_and_then_trickled_is_refused_within_its_window(monkeypatch) -> None:
    """Most of a body sent at once and the rest a byte at a time: its average over its whole
    time stays high for minutes, the rate over its last seconds does not."""
    monkeypatch.setattr(asgi, "SLOW_BODY_GRACE_SECONDS", 0.2)
    monkeypatch.setattr(asgi, "_SLOW_BODY_CHECK_SECONDS", 0.1)

    async def steps(budget: LargeBodyBudget) -> None:
        refused: list = []
        trickling = slow_claim(refused, arrived=100 * asgi.SLOW_BODY_BYTES_PER_SECOND)
        await holding(budget, trickling, 8, since=10)  # 10 x the least rate, on average
        answered = BodyClaim()
        await budget.take(answered, 2)
        budget.whole(answered)
        waiting_body = await waiting(budget, BodyClaim(), 4)
        assert refused == [] and not waiting_body.done()
        await asyncio.sleep(0.1)
        trickling.arrived += 1
        # Within a few windows (its average would keep it for minutes), however late the loop.
        deadline = asyncio.get_running_loop().time() + 2
        while not refused and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        assert [status for status, _ in refused] == [408]
        await asyncio.wait_for(waiting_body, 1)  # its memory went to the body waiting
        assert trickling.taken == 0

    run_budget(steps)


def test_a_bodys_wait_for_its_first_memory_is_not_added_to_its_grace(monkeypatch) -> None:
    """The window starts when the body takes memory: the wait before that was its turn in the
    queue, not time to be taken off what it has sent since."""
    monkeypatch.setattr(asgi, "SLOW_BODY_GRACE_SECONDS", 0.2)
    monkeypatch.setattr(asgi, "_SLOW_BODY_CHECK_SECONDS", 0.1)

    async def steps(budget: LargeBodyBudget) -> None:
        loop = asyncio.get_running_loop()
        answering, answered = BodyClaim(), BodyClaim()
        await budget.take(answering, 2)
        budget.whole(answering)  # whole: a body that waits waits for memory given back
        await budget.take(answered, 8)
        budget.whole(answered)
        refused: list = []
        queued = slow_claim(refused, arrived=0)
        queued_task = await waiting(budget, queued, 8)
        await asyncio.sleep(1)  # its turn comes after a second in the queue
        budget.give_back(answered)
        await queued_task
        granted = loop.time()
        next_body = await waiting(budget, BodyClaim(), 4)  # then it sends nothing while one waits
        while not refused and loop.time() - granted < 2:
            await asyncio.sleep(0.05)
        assert refused and loop.time() - granted < 0.6
        await asyncio.wait_for(next_body, 1)  # the refused body's memory goes to it

    run_budget(steps)


def test_a_body_waiting_for_more_memory_is_judged_by_what_its_client_sends() -> None:
    """It is not read while it waits, so what its client sends waits unread: counted all the
    same, and refused when too little, its wait given up; unless the server stopped reading it
    (its client is as fast as the server lets it be)."""

    async def steps(budget: LargeBodyBudget) -> None:
        loop = asyncio.get_running_loop()
        refused: list = []
        since = asgi.SLOW_BODY_GRACE_SECONDS + 1
        fast_first = 10 * asgi.SLOW_BODY_BYTES_PER_SECOND * since  # fast, on average
        trickling, held_up = slow_claim(refused, fast_first), slow_claim(refused, fast_first)
        trickling.unread = lambda: (8, False)  # 8 bytes more since, and reading goes on
        held_up.unread = lambda: (256 * 1024, True)  # reading stopped: its client waits for us
        await holding(budget, trickling, 4, since)
        await holding(budget, held_up, 4, since)
        answering = BodyClaim()
        await budget.take(answering, 2)
        budget.whole(answering)
        trickling_more = await waiting(budget, trickling, 6)
        held_up_more = await waiting(budget, held_up, 6)
        assert refused == []  # fast over its first window: the next one starts
        trickling.since = held_up.since = loop.time() - since  # a window later, nothing more
        newcomer = await waiting(budget, BodyClaim(), 2)
        assert [status for status, _ in refused] == [408]
        assert await asyncio.wait_for(trickling_more, 1) is False
        assert not held_up.refused
        assert await budget.take(trickling, 8) is False  # refused: no memory any more
        # The memory given back went to those waiting after it.
        assert await asyncio.wait_for(held_up_more, 1) is True
        assert await asyncio.wait_for(newcomer, 1) is True

    run_budget(steps)


def test_a_body_answerable_at_once_takes_memory_ahead_of_those_waiting() -> None:
    """All of it has come (some unread) and it is answered in the event loop: it gives the
    memory back within its answer, where those ahead of it may hold theirs for seconds."""

    async def steps(budget: LargeBodyBudget) -> None:
        holding_all = BodyClaim()
        await budget.take(holding_all, 10)  # its client sends nothing more
        first = await waiting(budget, BodyClaim(), 4)
        complete = BodyClaim(unread=lambda: (60, False))
        complete.arrived, complete.inline_length = 40, 100
        assert await asyncio.wait_for(budget.take(complete, 4), 1) is True
        assert budget.held == 10 + 4 + 4  # past the budget, as the first waiting one is
        budget.whole(complete)
        budget.give_back(complete)
        assert first.done() and budget.held == 10 + 4
        larger = BodyClaim(unread=lambda: (60, False))  # all come, but answered in a thread
        larger.arrived = 40
        assert not (await waiting(budget, larger, 4)).done()

    run_budget(steps)


def test_a_body_that_slows_while_another_waits_is_refused_at_the_next_look() -> None:
    async def steps(budget: LargeBodyBudget) -> None:
        refused: list = []
        slowing = slow_claim(refused, arrived=0)
        await holding(budget, slowing, 8, since=asgi.SLOW_BODY_GRACE_SECONDS - 0.1)
        answered = BodyClaim()
        await budget.take(answered, 2)
        budget.whole(answered)
        waiting_body = await waiting(budget, BodyClaim(), 4)
        assert refused == [] and not waiting_body.done()  # still in its first seconds
        await asyncio.sleep(asgi._SLOW_BODY_CHECK_SECONDS + 0.2)
        assert len(refused) == 1 and waiting_body.done()

    run_budget(steps)


def test_a_head_answer_has_the_get_answers_length_and_no_body(server: LiveServer) -> None:
    """Django leaves a GET's body in a HEAD answer: the bridge drops it, or gunicorn would, with
    a warning in the log for every load balancer's HEAD probe."""
    logged_before = len(server.log())
    get = requests.get(server.url + "/healthz", timeout=10)

    with connect(server) as sock:
        sock.sendall(b"HEAD /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk

    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert f"content-length: {len(get.content)}".encode() in head.lower()
    assert body == b""
    assert "no-body response" not in server.log()[logged_before:]
