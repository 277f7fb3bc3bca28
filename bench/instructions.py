#!/usr/bin/env python
"""Count the CPU instructions a request costs the service, in process, with cachegrind.

    .venv/bin/python bench/instructions.py               # /auth and a small /sum
    .venv/bin/python bench/instructions.py auth          # /auth only
    DJANGO_SETTINGS_MODULE=my_variant .venv/bin/python bench/instructions.py auth

Timings on the shared 2-core machine move by up to 2 x between runs; an instruction count
repeats to about 1 % (the token's random claims vary it a little), so a change of a few percent
in a request's cost shows here where a timing cannot tell it from noise. Each figure is the
count of a run of N requests less that of a run of none, after the same warm-up, over N: what
sumservice.asgi's application (the bridge, Django, DRF and the view) executes for a request, not
gunicorn's HTTP parsing or the socket. Needs valgrind (`apt-get install valgrind`).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.asgi import post_scope  # noqa: E402
from bench.run import CREDENTIALS, SMALL  # noqa: E402

WARM_UP = 300
REQUESTS = 400
ENDPOINTS = ("auth", "sum")


def count(endpoint: str, requests: int) -> int:
    """Instructions executed by a whole child process that serves `requests` after the warm-up."""
    with tempfile.TemporaryDirectory() as metrics:
        run = subprocess.run(
            [
                "valgrind",
                "--tool=cachegrind",
                "--cache-sim=no",
                "--cachegrind-out-file=/dev/null",
                sys.executable,
                __file__,
                "--serve",
                endpoint,
                str(requests),
            ],
            # Rate limits off, as in bench/run.py; metrics counted as under gunicorn.
            env={**os.environ, "SUMSERVICE_AUTH_RATE": "off", "PROMETHEUS_MULTIPROC_DIR": metrics},
            capture_output=True,
            text=True,
            check=True,
        )
    refs = re.search(r"I\s+refs:\s+([\d,]+)", run.stderr)
    if refs is None:
        raise RuntimeError(f"no instruction count from cachegrind:\n{run.stderr[-2000:]}")
    return int(refs.group(1).replace(",", ""))


def serve(endpoint: str, requests: int) -> None:
    """The child: `requests` requests through the ASGI application, after the warm-up."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sumservice.settings")
    import django

    django.setup()
    from api.tokens import SumAccessToken
    from sumservice.asgi import application

    body = json.dumps(CREDENTIALS).encode() if endpoint == "auth" else SMALL
    headers = [
        (b"host", b"127.0.0.1:8000"),
        (b"accept", b"*/*"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if endpoint == "sum":
        token = str(SumAccessToken.for_subject(CREDENTIALS["username"]))
        headers.append((b"authorization", f"Bearer {token}".encode()))
    scope = post_scope(f"/{endpoint}", headers)
    statuses = []

    async def receive() -> dict:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    async def run(times: int) -> None:
        for _ in range(times):
            await application(dict(scope), receive, send)

    loop = asyncio.new_event_loop()
    loop.run_until_complete(run(WARM_UP))
    gc.collect()
    gc.freeze()  # as gunicorn.conf.py does before the workers fork
    loop.run_until_complete(run(requests))
    if set(statuses) != {200}:
        raise SystemExit(f"/{endpoint} answered {sorted(set(statuses))}, not only 200")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("endpoints", nargs="*", metavar="auth|sum", help="default: both")
    parser.add_argument("--requests", type=int, default=REQUESTS)
    parser.add_argument("--serve", nargs=2, metavar=("ENDPOINT", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve[0], int(args.serve[1]))
        return
    unknown = set(args.endpoints) - set(ENDPOINTS)
    if unknown:
        parser.error(f"unknown endpoints: {', '.join(sorted(unknown))} (auth, sum)")
    settings = os.environ.get("DJANGO_SETTINGS_MODULE", "sumservice.settings")
    for endpoint in args.endpoints or ENDPOINTS:
        per_request = (count(endpoint, args.requests) - count(endpoint, 0)) / args.requests
        print(f"/{endpoint}: {per_request:,.0f} instructions per request ({settings})")


if __name__ == "__main__":
    main()
