"""Schemathesis fuzzes the live service from its own schema: every answer must match it.

It reads /openapi.json from a real gunicorn and sends what the schema allows (positive mode) and
what it forbids (negative mode), with every check schemathesis has: no 5xx, each status, header,
content type and body as documented, bodies the schema refuses refused and those it accepts
accepted, 405 with Allow for undocumented methods, 401 without the token. A failure names the
request; `--seed` in the output reproduces it.
"""

from __future__ import annotations

import collections
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.liveserver import LiveServer

# Fuzzing examples per operation: about 450 requests in all, some 15 s on 2 busy cores.
MAX_EXAMPLES = 150
# Fixed, so that a run is reproducible and a red suite is a real finding, not the dice.
SEED = 20261206
MIN_REQUESTS = 300


@pytest.fixture(scope="module")
def fuzzed_server() -> Iterator[LiveServer]:
    # Hundreds of token requests from one address: the /auth rate limit would answer most of
    # them with 429 (as documented), and so test the limit instead of the endpoint.
    with LiveServer(env={"SUMSERVICE_AUTH_RATE": "off"}) as server:
        yield server


def schemathesis(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    command = Path(sys.executable).with_name("schemathesis")
    return subprocess.run(
        [str(command), *args],
        cwd=cwd,  # its .hypothesis folder and reports go there, not in the repository
        capture_output=True,
        text=True,
        timeout=300,
    )


def interactions(report: Path) -> list[dict]:
    """Every request schemathesis sent and recorded, from its NDJSON event stream."""
    recorded = []
    for line in report.read_text().splitlines():
        event = json.loads(line)
        recorder = event.get("ScenarioFinished", {}).get("recorder", {})
        recorded += [
            {"label": recorder["label"], **interaction}
            for interaction in recorder.get("interactions", {}).values()
        ]
    return recorded


def test_the_service_answers_as_its_schema_says(fuzzed_server: LiveServer, tmp_path: Path) -> None:
    token = requests.post(
        fuzzed_server.url + "/auth", json={"username": "fuzz", "password": "secret"}, timeout=10
    ).json()["access_token"]
    report = tmp_path / "events.ndjson"
    run = schemathesis(
        "run",
        fuzzed_server.url + "/openapi.json",
        "--checks=all",
        "--mode=all",
        f"--max-examples={MAX_EXAMPLES}",
        f"--seed={SEED}",
        "--header",
        f"Authorization: Bearer {token}",
        "--request-timeout=30",
        "--generation-database=none",
        "--report=ndjson",
        f"--report-ndjson-path={report}",
        "--no-color",
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stdout[-20_000:] + run.stderr[-5_000:]
    assert "No issues found" in run.stdout, run.stdout[-20_000:]

    sent = interactions(report)
    assert len(sent) >= MIN_REQUESTS, len(sent)
    statuses = collections.Counter((i["label"], i["response"]["status_code"]) for i in sent)
    # Both modes reached both endpoints: answers, refusals and the token checked on /sum.
    for expected in [
        ("POST /auth", 200),
        ("POST /auth", 400),
        ("POST /sum", 200),
        ("POST /sum", 401),
        ("POST /sum", 415),
    ]:
        assert statuses[expected], (expected, statuses)
    assert not [key for key in statuses if key[1] >= 500], statuses
