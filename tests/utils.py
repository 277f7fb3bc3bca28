"""Helpers the tests of real processes share: requests to a running service, its log, tools."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Protocol

import requests

BIN = Path(sys.executable).parent


class Served(Protocol):
    """A running service, or a balancer in front of some: anything answering at `url`."""

    url: str


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def get_token(server: Served, username: str = "alice") -> str:
    response = requests.post(
        server.url + "/auth", json={"username": username, "password": "secret"}, timeout=10
    )
    assert response.status_code == 200, response.text
    assert response.headers["Cache-Control"] == "no-store"
    return response.json()["access_token"]


def post_sum(
    server: Served, body: bytes, token: str, session=requests, timeout: float = 60
) -> requests.Response:
    return session.post(
        server.url + "/sum",
        data=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        timeout=timeout,
    )


def request_log(server) -> list[dict]:
    """The JSON request lines (api/request_log.py) a LiveServer has written so far."""
    return [
        json.loads(line)
        for line in server.log().splitlines()
        if line.startswith("{") and '"request_id"' in line
    ]


def pids_that_answered(server, path: str) -> set[int]:
    """The workers of a LiveServer that answered a POST to `path` with 200, from its log."""
    return {
        line["pid"]
        for line in request_log(server)
        if line["method"] == "POST" and line["path"] == path and line["status"] == 200
    }


def tool(name: str) -> str:
    """A command-line tool from the test requirements: beside this Python, else on PATH."""
    path = BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    assert found, f"{name} is missing: pip install -r requirements-dev.txt (./test.sh does)"
    return found


def run(*command: str, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=300, **kwargs)


def gcc_file(name: str) -> str:
    compiler = shutil.which("gcc")
    assert compiler, "the sanitizer fuzz needs gcc (./test.sh installs it)"
    found = subprocess.run([compiler, f"-print-file-name={name}"], capture_output=True, text=True)
    path = found.stdout.strip()
    assert os.path.isabs(path), f"gcc has no {name}: {found.stdout}{found.stderr}"
    return path


def sanitizer_env() -> dict[str, str]:
    """The environment a Python process needs to load a C extension built with AddressSanitizer
    and UndefinedBehaviorSanitizer (-fsanitize=address,undefined) and stop at its first error."""
    return {
        # ASan's runtime must be loaded first; Python itself is not instrumented, and leaks at
        # exit by design, so only memory errors count.
        "LD_PRELOAD": gcc_file("libasan.so"),
        "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1",
        "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1",
    }
