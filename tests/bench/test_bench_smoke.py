"""The benchmark still runs: bench/run.py --quick, and its JSON holds every figure.

Only that the figures are there and are numbers: a benchmark is never a timed unit test.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
KINDS = {"int", "float", "string", "nested"}

pytestmark = pytest.mark.skipif(
    shutil.which("wrk") is None, reason="wrk is not installed (./bench/run.sh installs it)"
)


def number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("bench") / "results.json"
    finished = subprocess.run(
        [sys.executable, "bench/run.py", "--quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert "canonical_sum MB/s" in finished.stdout  # the table
    return json.loads(out.read_text())


def test_machine_is_described(results: dict) -> None:
    machine = results["machine"]
    assert number(machine["nproc"])
    assert machine["cpu_model"] and machine["python"] and machine["wrk"]


@pytest.mark.parametrize("side", ["service", "ceiling"])
@pytest.mark.parametrize("endpoint", ["sum", "auth"])
def test_small_requests_have_every_figure(results: dict, side: str, endpoint: str) -> None:
    figures = results[side][endpoint]
    assert number(figures["requests_per_s"])
    assert number(figures["server_cpu_ms_per_request"])
    assert number(figures["latency_ms"]["p50"]) and number(figures["latency_ms"]["p99"])
    ratios = results["ratios"][endpoint]
    assert number(ratios["server_cpu_ms_per_request"]) and number(ratios["requests_per_s"])


def test_every_document_kind_has_every_figure(results: dict) -> None:
    docs = results["documents"]
    assert {doc["kind"] for doc in docs} == KINDS
    for doc in docs:
        assert doc["exact"] is True
        assert number(doc["http"]["mb_per_s"])
        assert number(doc["inprocess"]["json_loads_mb_per_s"])
        assert number(doc["inprocess"]["canonical_sum_mb_per_s"])
        assert number(doc["ratio_canonical_sum_to_json_loads"])
        assert number(doc["ratio_http_to_json_loads"])
        assert number(doc["inprocess"]["python_path_mb_per_s"])
        assert number(doc["http_python_path"]["mb_per_s"])  # the quick run has one size
        assert number(doc["ratio_http_to_python_path"])
    assert results["deep"] and all(number(row["canonical_sum_mb_per_s"]) for row in results["deep"])
    assert all(number(row["python_path_mb_per_s"]) for row in results["deep"])


def test_the_kernel_is_measured(results: dict) -> None:
    assert results["summing_backend"] == "kernel"
    gil = results["gil"]
    assert number(gil["with_canonical_sum_per_s"]) and number(gil["alone_per_s"])
    assert number(gil["ratio"])


def test_memory_has_every_figure(results: dict) -> None:
    memory = results["memory"]
    for key in ("idle_rss_mib", "peak_rss_mib", "limit_rss_mib", "rss_growth_in_bodies"):
        assert number(memory[key]), key


def test_every_target_is_judged(results: dict) -> None:
    targets = results["targets"]
    # two CPU targets, one per document, one per document of the largest size over HTTP against
    # the pure-Python path, one per deep document, one for memory
    docs, largest = results["documents"], max(doc["size_bytes"] for doc in results["documents"])
    over_http = sum(doc["size_bytes"] == largest for doc in docs)
    assert len(targets) == 2 + len(docs) + over_http + len(results["deep"]) + 1
    assert all(isinstance(target["met"], bool) and number(target["figure"]) for target in targets)


@pytest.mark.parametrize("side", ["flask", "sync", "service"])
@pytest.mark.parametrize("load", ["sum", "sum_close", "auth"])
def test_the_serving_part_has_every_figure(results: dict, side: str, load: str) -> None:
    figures = results["serving"]["small"][side][load]
    assert number(figures["requests_per_s"]) and number(figures["server_cpu_ms_per_request"])
    assert figures["errors"] == 0
    first = figures["rounds"][0]
    assert all(isinstance(count, int) for count in first["established_connections_by_worker"])
    assert sum(first["answers_by_worker"]) > 0


def test_the_serving_probes_and_targets_are_there(results: dict) -> None:
    serving = results["serving"]
    for side in ("flask", "service"):
        probe = serving["slow_clients"][side]
        assert number(probe["within_1s"]) and probe["sent"] >= 1
    for side in ("sync", "service"):
        assert number(serving["head_of_line"][side]["small_p50_ms"])
        assert all(number(value) for value in serving["large_mb_per_s"][side].values())
        assert all(number(value) for value in serving["large"]["cpu_ms_per_request"][side].values())
    assert all(number(ratio) for ratio in serving["large"]["mb_per_s_ratio"].values())
    # Each side says which HTTP parser it ran: the service gunicorn_h1c (./test.sh installs
    # it), the sync worker and the Flask peer gunicorn's own, as issue 13 measured them.
    assert serving["http_parser"]["service"].startswith("gunicorn_h1c")
    assert serving["http_parser"]["sync"] == "gunicorn's Python HTTP parser"
    assert serving["http_parser"]["flask"] == "gunicorn's Python HTTP parser"
    assert serving["targets"]
    assert all(isinstance(t["met"], bool) and number(t["figure"]) for t in serving["targets"])


def test_the_operating_benchmark_runs() -> None:
    finished = subprocess.run(
        [sys.executable, "bench/ops.py", "--calls", "10"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr
    for section in ("1. /auth throttle check", "2. let through", "3. whole requests", "4. POST"):
        assert section in finished.stdout
    assert "ours, Redis on loopback" in finished.stdout
