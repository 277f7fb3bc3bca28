#!/usr/bin/env python
"""The sum service's benchmark: the service under gunicorn, loaded by wrk, beside its baselines.

    ./bench/run.sh            # the full run, a few minutes on 2 cores
    ./bench/run.sh --quick    # a smoke run of a few seconds (small documents, short loads)

What it measures, each figure beside its baseline from the same run:

- small /sum and /auth: requests/s, p50/p99 latency and server CPU ms per request (utime+stime of
  the gunicorn master and its workers, from /proc, before and after; a recycled worker's time is
  in the master's cutime/cstime), against the framework ceiling: a bare Django view answering a
  constant JSON (bench/ceiling_urls.py) through the same gunicorn.conf.py and middleware, sent
  the very same requests. The sides run in interleaved rounds; each figure is the median of the
  rounds, and each CPU ratio the median of the rounds' own service/ceiling ratios;
- /sum with 1 MiB and 10 MiB documents of each kind (bench/documents.py): MB of body per second
  over HTTP, and in-process canonical_sum MB/s against json.loads parse-only MB/s on the same
  bytes; every answer is checked against an independent exact sum;
- RSS of the server's processes (VmRSS summed over the tree): idle, and the peak sampled while
  serving the 10 MiB documents;
- the summing kernel against the pure-Python path it replaces (the reference, run in the same
  process with the kernel set aside): in-process MB/s on every document, deep documents, and
  /sum over HTTP on the largest documents from a second server with SUMSERVICE_SUM_KERNEL off;
  and how far another thread gets while the kernel sums (it releases the GIL) against that
  thread alone.

It prints a table and writes the figures as JSON to bench/results/<timestamp>.json.
Only 127.0.0.1 is ever contacted.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from api import summing  # noqa: E402
from api.summing import canonical_sum  # noqa: E402
from bench import serving  # noqa: E402
from bench.documents import KINDS, SMALL, document, reference_sum  # noqa: E402
from tests.liveserver import LiveServer  # noqa: E402

BENCH = ROOT / "bench"
LUA = BENCH / "post.lua"
MIB = 1 << 20
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
CREDENTIALS = {"username": "bench", "password": "bench-password"}

# The targets of issue 6 (the service's overhead) and issue 9 (the summing kernel).
TARGET_SUM_CPU = 1.3
TARGET_AUTH_CPU = 1.5
TARGET_PARSE = {"int": 4, "float": 4, "string": 4, "nested": 10}  # x json.loads
TARGET_DEEP_MB_S = 100  # the 5-million-level (10 MiB) document
TARGET_HTTP_OVER_PYTHON = 3  # /sum MB/s on the largest documents, x the pure-Python path
TARGET_RSS_BODIES = 3

FULL = {
    "workers": 2,
    "connections": 8,
    "warmup_s": 3,
    "small_s": 5,
    "rounds": 3,
    "quiet_s": 0.3,
    "large_warmup_s": 1,
    "large_s": 8,
    "sizes": (MIB, 10 * MIB),
    "deep_sizes": (MIB, 10 * MIB),
    "repeats": {MIB: 9, 10 * MIB: 4},
}
QUICK = {
    "workers": 2,
    "connections": 4,
    "warmup_s": 0,
    "small_s": 1,
    "rounds": 1,
    "quiet_s": 0.1,
    "large_warmup_s": 0,
    "large_s": 1,
    "sizes": (64 * 1024,),
    "deep_sizes": (64 * 1024,),
    "repeats": {64 * 1024: 2},
}


# --- /proc: CPU time and memory of a process tree -------------------------------------------


def tree(master: int) -> list[int]:
    """The master and its live children (gunicorn's workers)."""
    try:
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    except FileNotFoundError:
        children = []
    return [master, *map(int, children)]


def _stat_fields(pid: int) -> list[str]:
    # The command name may hold spaces and parentheses: the fields start after the last ")".
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()


def cpu_seconds(master: int) -> float:
    """CPU time (user + system) of the master, its reaped children and its live workers."""
    ticks = 0
    for pid in tree(master):
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            fields = _stat_fields(pid)
            # utime, stime, cutime, cstime (proc(5) fields 14-17; the list starts at field 3)
            ticks += sum(map(int, fields[11:15] if pid == master else fields[11:13]))
    return ticks / CLOCK_TICKS


def memory_kib(master: int, field: str = "VmRSS") -> int:
    """VmRSS (or VmHWM, each process's own peak) summed over the tree, in KiB."""
    total = 0
    for pid in tree(master):
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith(field + ":"):
                    total += int(line.split()[1])
    return total


def wait_idle(master: int, quiet_s: float = 0.3, limit_s: float = 60.0) -> None:
    """Wait until the server has used no CPU for `quiet_s`: requests wrk gave up on are done."""
    deadline = time.monotonic() + limit_s
    last = cpu_seconds(master)
    while time.monotonic() < deadline:
        time.sleep(quiet_s)
        now = cpu_seconds(master)
        if now == last:
            return
        last = now


class RssSampler:
    """Samples the tree's summed VmRSS every `interval` seconds while running."""

    def __init__(self, master: int, interval: float = 0.02) -> None:
        self.master = master
        self.interval = interval
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kib = max(self.peak_kib, memory_kib(self.master))
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()


# --- wrk ------------------------------------------------------------------------------------


def wrk(
    url: str,
    body_file: Path,
    token: str,
    duration: float,
    connections: int,
    timeout_s: int = 30,
    warmup: bool = False,
) -> dict:
    """One wrk run of POSTs; returns the figures its Lua `done` printed. Any error fails, and
    so does a run with no answer at all, unless it is a warm-up (a 10 MiB body may take longer
    than a short warm-up)."""
    env = {
        **os.environ,
        "BENCH_BODY_FILE": str(body_file),
        "BENCH_TOKEN": token,
    }
    command = [
        "wrk",
        "--threads=1",
        f"--connections={connections}",
        f"--duration={max(1, round(duration))}s",
        f"--timeout={timeout_s}s",
        f"--script={LUA}",
        url,
    ]
    finished = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=duration + timeout_s + 30
    )
    lines = [line for line in finished.stdout.splitlines() if line.startswith("BENCH_RESULT ")]
    if finished.returncode != 0 or not lines:
        raise RuntimeError(
            f"wrk failed ({finished.returncode}):\n{finished.stdout}{finished.stderr}"
        )
    result = json.loads(lines[-1].removeprefix("BENCH_RESULT "))
    if (not result["requests"] and not warmup) or any(result["errors"].values()):
        raise RuntimeError(f"wrk saw errors or no answer at {url}: {result}")
    return result


def load(
    server: LiveServer,
    path: str,
    body_file: Path,
    token: str,
    cfg: dict,
    *,
    warmup_s: float,
    duration: float,
    connections: int,
) -> dict:
    """Warm up, then measure: requests/s, latency and the server's CPU per request."""
    url = server.url + path
    if warmup_s:
        wrk(url, body_file, token, warmup_s, connections, warmup=True)
    wait_idle(server.process.pid, cfg["quiet_s"])
    before = cpu_seconds(server.process.pid)
    result = wrk(url, body_file, token, duration, connections)
    # wrk drops the requests in flight when it stops; the server still finishes them, so their
    # CPU is counted too (at most `connections` requests: negligible for the small documents).
    wait_idle(server.process.pid, cfg["quiet_s"])
    cpu = cpu_seconds(server.process.pid) - before
    seconds = result["duration_us"] / 1e6
    latency = result["latency_us"]
    return {
        "requests": result["requests"],
        "seconds": round(seconds, 3),
        "requests_per_s": round(result["requests"] / seconds, 1),
        "latency_ms": {key: round(latency[key] / 1000, 3) for key in ("mean", "p50", "p99")},
        "server_cpu_ms_per_request": round(cpu * 1000 / result["requests"], 4),
        "connections": connections,
    }


# --- the phases -----------------------------------------------------------------------------


def load_document(server: LiveServer, body_file: Path, size: int, token: str, cfg: dict) -> dict:
    """/sum loaded with one large document per worker, and its MB/s.

    Little's law: wrk keeps `connections` requests in flight, so the throughput is that many over
    the mean latency; unlike answers/duration it loses nothing to the requests cut when wrk
    stopped (a large part of a few-second run of 10 MiB bodies).
    """
    figures = load(
        server,
        "/sum",
        body_file,
        token,
        cfg,
        warmup_s=cfg["large_warmup_s"],
        duration=cfg["large_s"],
        connections=cfg["workers"],
    )
    mb_s = size * cfg["workers"] / (figures["latency_ms"]["mean"] / 1000) / 1e6
    return {**figures, "mb_per_s": round(mb_s, 2)}


def start_server(workers: int, env: dict[str, str] | None = None) -> LiveServer:
    # /auth is measured at full speed from one address: its rate limit (60/minute) is off.
    base = {"GUNICORN_LOG_LEVEL": "warning", "SUMSERVICE_AUTH_RATE": "off"}
    return LiveServer(env={**base, **(env or {})}, workers=workers).start()


def get_token(server: LiveServer) -> str:
    answer = requests.post(server.url + "/auth", json=CREDENTIALS, timeout=10)
    answer.raise_for_status()
    return answer.json()["access_token"]


def small_phases(servers: dict[str, LiveServer], files: dict[str, Path], cfg: dict) -> dict:
    """Small /sum and /auth on every server, in interleaved rounds (ceiling, service, ...), so
    that whatever else the machine does at a moment weighs on all sides alike; each figure is
    the median over the rounds. The ceiling gets the very requests the service gets (the same
    token in the same header), so both parse the same bytes.

    `servers`: "ceiling", "service" and "uncached" (the service with its token cache off)."""
    tokens = {name: get_token(servers[name]) for name in ("service", "uncached")}
    tokens["ceiling"] = tokens["service"]
    phases = [
        ("ceiling", "sum", "/sum", "small"),
        ("service", "sum", "/sum", "small"),
        ("uncached", "sum", "/sum", "small"),
        ("ceiling", "auth", "/auth", "credentials"),
        ("service", "auth", "/auth", "credentials"),
    ]
    runs: dict[tuple[str, str], list[dict]] = {}
    for round_number in range(cfg["rounds"]):
        for name, figure, path, body in phases:
            token = tokens[name] if path == "/sum" else ""
            runs.setdefault((name, figure), []).append(
                load(
                    servers[name],
                    path,
                    files[body],
                    token,
                    cfg,
                    warmup_s=cfg["warmup_s"] if round_number == 0 else 0,
                    duration=cfg["small_s"],
                    connections=cfg["connections"],
                )
            )
    return {key: median_run(value) for key, value in runs.items()}


def median_run(runs: list[dict]) -> dict:
    def median(values: list[float]) -> float:
        return sorted(values)[len(values) // 2]

    return {
        "requests": sum(run["requests"] for run in runs),
        "rounds": len(runs),
        "requests_per_s": median([run["requests_per_s"] for run in runs]),
        "latency_ms": {
            key: median([run["latency_ms"][key] for run in runs]) for key in ("mean", "p50", "p99")
        },
        "server_cpu_ms_per_request": median([run["server_cpu_ms_per_request"] for run in runs]),
        "server_cpu_ms_per_request_by_round": [run["server_cpu_ms_per_request"] for run in runs],
        "connections": runs[0]["connections"],
    }


def check_answer(server: LiveServer, path: Path, token: str, expected: str) -> None:
    answer = requests.post(
        server.url + "/sum",
        data=path.read_bytes(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        timeout=60,
    )
    if answer.status_code != 200 or answer.json()["sum"] != expected:
        raise RuntimeError(f"/sum answered {answer.status_code} {answer.text[:200]} for {path}")


def large_phases(
    server: LiveServer, docs: list[dict], files: dict[str, Path], token: str, cfg: dict
) -> tuple[list[dict], dict]:
    """/sum with every large document; RSS idle before, and sampled under the largest size.

    Idle is taken once every worker has served large bodies: a worker's first one starts its
    large-request thread, whose stack and allocator arena (~6 MiB) it keeps from then on, and
    which would otherwise count as the load's."""
    master = server.process.pid
    largest = max(cfg["sizes"])
    first = next(doc for doc in docs if doc["size_bytes"] == largest)
    wrk(server.url + "/sum", files[first["name"]], token, 1, cfg["workers"], warmup=True)
    wait_idle(master)
    idle_kib = memory_kib(master)
    peaks: dict[str, int] = {}
    for doc in docs:
        check_answer(server, files[doc["name"]], token, doc["sum"])
        sampler = RssSampler(master) if doc["size_bytes"] == largest else contextlib.nullcontext()
        with sampler:
            doc["http"] = load_document(server, files[doc["name"]], doc["size_bytes"], token, cfg)
        if isinstance(sampler, RssSampler):
            peaks[doc["kind"]] = sampler.peak_kib
    peak_kind = max(peaks, key=peaks.get)
    memory = {
        "idle_rss_mib": round(idle_kib / 1024, 1),
        "peak_rss_mib": round(peaks[peak_kind] / 1024, 1),
        "peak_rss_by_kind_mib": {kind: round(kib / 1024, 1) for kind, kib in peaks.items()},
        "peak_kind": peak_kind,
        "hwm_sum_mib": round(memory_kib(master, "VmHWM") / 1024, 1),
        "body_bytes": largest,
        "body_mib": round(largest / MIB, 4),
        "concurrent_requests": cfg["workers"],
    }
    return docs, memory


def best_seconds(functions: list, argument: bytes, repeats: int) -> list[float]:
    """The best time of each function over `repeats` rounds, the functions taking turns within
    a round, so that a busy moment of the machine weighs on all of them alike."""
    times: list[list[float]] = [[] for _ in functions]
    for _ in range(repeats):
        for function, record in zip(functions, times, strict=True):
            gc.collect()
            start = time.perf_counter()
            function(argument)
            record.append(time.perf_counter() - start)
    return [min(record) for record in times]


def in_process(docs: list[dict], cfg: dict) -> None:
    """json.loads parse-only against canonical_sum, best of N, on the same bytes; and the
    pure-Python path canonical_sum falls back to."""
    for doc in docs:
        body = doc["bytes"]
        repeats = cfg["repeats"][doc["size_bytes"]]
        parse, parse_gc_off, summed, python_path = best_seconds(
            [json.loads, loads_collector_paused, canonical_sum, python_path_sum], body, repeats
        )
        mb = doc["size_bytes"] / 1e6
        doc["inprocess"] = {
            "json_loads_mb_per_s": round(mb / parse, 2),
            # the Python path pauses the cyclic collector while it parses; json.loads as a caller
            # gets it (the baseline) runs with it on. This shows what the pause alone is worth.
            "json_loads_gc_paused_mb_per_s": round(mb / parse_gc_off, 2),
            "canonical_sum_mb_per_s": round(mb / summed, 2),
            "python_path_mb_per_s": round(mb / python_path, 2),
        }


def python_path_sum(body: bytes) -> str:
    """canonical_sum with the kernel set aside: the pure-Python path, as before the kernel."""
    kernel, summing.kernel = summing.kernel, None
    try:
        return canonical_sum(body)
    finally:
        summing.kernel = kernel


def other_thread_progress(body: bytes, repeats: int) -> dict:
    """How far a thread counting in pure Python gets while canonical_sum sums `body`, against
    the same thread alone for as long: near 1 when the kernel lets go of the GIL (the machine
    has a second core for it), near 0 when a call holds the GIL throughout."""

    def count_while(busy) -> tuple[int, float]:
        stop = threading.Event()
        counted = [0]

        def counter() -> None:
            n = 0
            while not stop.is_set():
                n += 1
            counted[0] = n

        thread = threading.Thread(target=counter)
        thread.start()
        start = time.perf_counter()
        busy()
        elapsed = time.perf_counter() - start
        stop.set()
        thread.join()
        return counted[0], elapsed

    def summing_repeatedly() -> None:
        for _ in range(repeats):
            canonical_sum(body)

    summed_count, summed_s = count_while(summing_repeatedly)
    alone_count, alone_s = count_while(lambda: time.sleep(summed_s))
    return {
        "with_canonical_sum_per_s": round(summed_count / summed_s),
        "alone_per_s": round(alone_count / alone_s),
        "ratio": ratio(summed_count / summed_s, alone_count / alone_s),
    }


def loads_collector_paused(body: bytes) -> None:
    gc.disable()
    try:
        json.loads(body)
    finally:
        gc.enable()


def deep_documents(cfg: dict) -> list[dict]:
    """Nesting past any recursive parser: speed and linearity, against the Python path's
    iterative parser."""
    rows = []
    for size in cfg["deep_sizes"]:
        body = document("deep", size)
        seconds, python_seconds = best_seconds([canonical_sum, python_path_sum], body, 1)
        total = canonical_sum(body)
        if Decimal(total) != reference_sum(body):
            raise RuntimeError(f"deep document of {size} bytes summed to {total}")
        rows.append(
            {
                "size_bytes": size,
                "depth": (size - 1) // 2,
                "seconds": round(seconds, 3),
                "canonical_sum_mb_per_s": round(size / 1e6 / seconds, 2),
                "python_path_mb_per_s": round(size / 1e6 / python_seconds, 2),
            }
        )
    return rows


def python_path_http(server: LiveServer, docs: list[dict], files: dict, cfg: dict) -> None:
    """/sum over HTTP on the largest documents from a server summing with the Python path."""
    token = get_token(server)
    largest = max(cfg["sizes"])
    for doc in docs:
        if doc["size_bytes"] != largest:
            continue
        check_answer(server, files[doc["name"]], token, doc["sum"])
        doc["http_python_path"] = load_document(
            server, files[doc["name"]], doc["size_bytes"], token, cfg
        )
        doc["ratio_http_to_python_path"] = ratio(
            doc["http"]["mb_per_s"], doc["http_python_path"]["mb_per_s"]
        )


# --- reporting ------------------------------------------------------------------------------


def machine() -> dict:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    wrk_version = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "wrk": wrk_version.split(" [")[0].strip(),
    }


def ratio(value: float, baseline: float) -> float:
    return round(value / baseline, 3) if baseline else float("nan")


def size_label(size: int) -> str:
    return f"{size // MIB} MiB" if size >= MIB else f"{size // 1024} KiB"


def ratios(ours: dict, base: dict) -> dict:
    """Service over ceiling. CPU per request: the median of the rounds' own ratios (each round
    ran both sides back to back, so each ratio compares like moments of the machine); the ratio
    of the medians is kept beside it."""
    paired = [
        ratio(a, b)
        for a, b in zip(
            ours["server_cpu_ms_per_request_by_round"],
            base["server_cpu_ms_per_request_by_round"],
            strict=True,
        )
    ]
    return {
        "server_cpu_ms_per_request": sorted(paired)[len(paired) // 2],
        "server_cpu_ms_per_request_by_round": paired,
        "server_cpu_ms_per_request_of_medians": ratio(
            ours["server_cpu_ms_per_request"], base["server_cpu_ms_per_request"]
        ),
        "requests_per_s": ratio(ours["requests_per_s"], base["requests_per_s"]),
    }


def summarise(
    service: dict, ceiling: dict, docs: list[dict], deep_rows: list[dict], memory: dict
) -> list[dict]:
    """Every target, its figure and whether it is met."""
    targets = []
    for name, limit in (("sum", TARGET_SUM_CPU), ("auth", TARGET_AUTH_CPU)):
        figure = ratios(service[name], ceiling[name])["server_cpu_ms_per_request"]
        targets.append(
            {
                "target": f"/{name} server CPU per request <= {limit}x the bare-Django ceiling",
                "figure": figure,
                "met": figure <= limit,
            }
        )
    for doc in docs:
        figure = doc["ratio_canonical_sum_to_json_loads"]
        limit = TARGET_PARSE[doc["kind"]]
        targets.append(
            {
                "target": f"canonical_sum >= {limit}x json.loads, {doc['name']}",
                "figure": figure,
                "met": figure >= limit and doc["exact"],
            }
        )
    for doc in docs:
        if "ratio_http_to_python_path" in doc:
            figure = doc["ratio_http_to_python_path"]
            targets.append(
                {
                    "target": f"/sum MB/s >= {TARGET_HTTP_OVER_PYTHON}x the pure-Python path's,"
                    f" {doc['name']}",
                    "figure": figure,
                    "met": figure >= TARGET_HTTP_OVER_PYTHON,
                }
            )
    for deep in deep_rows:
        figure = deep["canonical_sum_mb_per_s"]
        targets.append(
            {
                "target": f"deep {size_label(deep['size_bytes'])} ({deep['depth']:,} levels)"
                f" canonical_sum >= {TARGET_DEEP_MB_S} MB/s",
                "figure": figure,
                "met": figure >= TARGET_DEEP_MB_S,
            }
        )
    targets.append(
        {
            "target": f"peak RSS under 10 MiB load <= idle + {TARGET_RSS_BODIES}x body",
            "figure": memory["rss_growth_in_bodies"],
            "met": memory["met"],
        }
    )
    return targets


def table(results: dict) -> str:
    rows = [("figure", "value", "baseline", "ratio")]
    service, ceiling = results["service"], results["ceiling"]
    labels = {"sum": "/sum small", "auth": "/auth", "sum_token_cache_off": "/sum, cache off"}
    for name, label in labels.items():
        ours, base = service[name], ceiling[name.split("_")[0]]
        rows += [
            (
                f"{label} requests/s",
                f"{ours['requests_per_s']:.0f}",
                f"{base['requests_per_s']:.0f}",
                f"{results['ratios'][name]['requests_per_s']:.2f}",
            ),
            (
                f"{label} CPU ms/request",
                f"{ours['server_cpu_ms_per_request']:.3f}",
                f"{base['server_cpu_ms_per_request']:.3f}",
                f"{results['ratios'][name]['server_cpu_ms_per_request']:.2f}",
            ),
            (
                f"{label} p50 / p99 ms",
                f"{ours['latency_ms']['p50']:.2f} / {ours['latency_ms']['p99']:.2f}",
                f"{base['latency_ms']['p50']:.2f} / {base['latency_ms']['p99']:.2f}",
                f"{ratio(ours['latency_ms']['p50'], base['latency_ms']['p50']):.2f}",
            ),
        ]
    for doc in results["documents"]:
        inproc = doc["inprocess"]
        label = f"{doc['kind']} {size_label(doc['size_bytes'])}"
        rows += [
            (
                f"{label} canonical_sum MB/s",
                f"{inproc['canonical_sum_mb_per_s']:.1f}",
                f"{inproc['json_loads_mb_per_s']:.1f}",
                f"{doc['ratio_canonical_sum_to_json_loads']:.2f}",
            ),
            (
                f"{label} canonical_sum vs the Python path",
                f"{inproc['canonical_sum_mb_per_s']:.1f}",
                f"{inproc['python_path_mb_per_s']:.1f}",
                f"{ratio(inproc['canonical_sum_mb_per_s'], inproc['python_path_mb_per_s']):.2f}",
            ),
            (
                f"{label} HTTP /sum MB/s",
                f"{doc['http']['mb_per_s']:.1f}",
                f"{inproc['json_loads_mb_per_s']:.1f}",
                f"{doc['ratio_http_to_json_loads']:.2f}",
            ),
        ]
        if "http_python_path" in doc:
            rows.append(
                (
                    f"{label} HTTP /sum MB/s vs the Python path",
                    f"{doc['http']['mb_per_s']:.1f}",
                    f"{doc['http_python_path']['mb_per_s']:.1f}",
                    f"{doc['ratio_http_to_python_path']:.2f}",
                )
            )
    for deep in results["deep"]:
        rows.append(
            (
                f"deep {size_label(deep['size_bytes'])} canonical_sum MB/s",
                f"{deep['canonical_sum_mb_per_s']:.1f}",
                f"{deep['python_path_mb_per_s']:.1f} (Python path; json.loads: RecursionError)",
                f"{ratio(deep['canonical_sum_mb_per_s'], deep['python_path_mb_per_s']):.2f}",
            )
        )
    gil = results["gil"]
    rows.append(
        (
            "another thread's count/s while summing",
            f"{gil['with_canonical_sum_per_s']:,}",
            f"{gil['alone_per_s']:,} (alone)",
            f"{gil['ratio']:.2f}",
        )
    )
    memory = results["memory"]
    rows += [
        ("RSS idle MiB", f"{memory['idle_rss_mib']:.1f}", "", ""),
        (
            f"RSS peak under {size_label(memory['body_bytes'])} load",
            f"{memory['peak_rss_mib']:.1f}",
            f"{memory['limit_rss_mib']:.1f} (limit)",
            f"{ratio(memory['peak_rss_mib'], memory['limit_rss_mib']):.2f}",
        ),
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    lines.append("")
    for target in results["targets"]:
        mark = "met   " if target["met"] else "MISSED"
        lines.append(f"{mark} {target['target']}: {target['figure']}")
    return "\n".join(lines)


# --- main -----------------------------------------------------------------------------------


def prepare_documents(cfg: dict, folder: Path) -> tuple[list[dict], dict[str, Path]]:
    files = {"small": folder / "small.json", "credentials": folder / "credentials.json"}
    files["small"].write_bytes(SMALL)
    files["credentials"].write_text(json.dumps(CREDENTIALS))
    docs = []
    for size in cfg["sizes"]:
        for kind in KINDS:
            name = f"{kind}-{size_label(size).replace(' ', '')}"
            body = document(kind, size)
            files[name] = folder / f"{name}.json"
            files[name].write_bytes(body)
            total = canonical_sum(body)
            exact = Decimal(total) == reference_sum(body)
            if not exact:
                raise RuntimeError(f"canonical_sum is not exact on {name}: {total}")
            docs.append(
                {
                    "name": name,
                    "kind": kind,
                    "size_bytes": size,
                    "bytes": body,
                    "sum": total,
                    "exact": exact,
                }
            )
    return docs, files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    parser.add_argument("--out", type=Path, help="the JSON file (default bench/results/<time>)")
    parser.add_argument(
        "--serving-only", action="store_true", help="only the serving part (bench/serving.py)"
    )
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        parser.error("wrk is not installed: ./bench/run.sh installs it (apt-get install wrk)")
    cfg = QUICK if args.quick else FULL
    started = datetime.now(UTC)
    out = args.out or BENCH / "results" / f"{started:%Y%m%dT%H%M%SZ}.json"

    def step(message: str) -> None:
        print(f"[{time.monotonic() - clock:6.1f}s] {message}", file=sys.stderr, flush=True)

    clock = time.monotonic()
    if args.serving_only:
        return serving_only(args.quick, cfg, out, step)
    with tempfile.TemporaryDirectory(prefix="sumservice-bench-") as folder:
        step("generating documents and checking canonical_sum against a reference sum")
        docs, files = prepare_documents(cfg, Path(folder))
        step("in-process: json.loads parse-only vs canonical_sum")
        in_process(docs, cfg)
        deep = deep_documents(cfg)
        largest = max(docs, key=lambda doc: doc["size_bytes"])
        gil = other_thread_progress(largest["bytes"], cfg["repeats"][largest["size_bytes"]])

        # The service remembers verified tokens (a client reuses its token for an hour); the
        # cost of a token never seen before, with its ECDSA check, is measured with that off.
        step(
            "small /sum and /auth: the service, the service with its token cache off, and the"
            " framework ceiling (bare Django views under the same gunicorn configuration),"
            f" in {cfg['rounds']} interleaved rounds"
        )
        servers: dict[str, LiveServer] = {}
        try:
            servers["ceiling"] = start_server(
                cfg["workers"], {"DJANGO_SETTINGS_MODULE": "bench.ceiling_settings"}
            )
            servers["uncached"] = start_server(cfg["workers"], {"SUMSERVICE_TOKEN_CACHE_SIZE": "0"})
            servers["service"] = server = start_server(cfg["workers"])
            token = get_token(server)
            check_answer(server, files["small"], token, canonical_sum(SMALL))
            small = small_phases(servers, files, cfg)
            servers.pop("ceiling").stop()
            servers.pop("uncached").stop()
            step("the service: /sum with the large documents")
            docs, memory = large_phases(server, docs, files, token, cfg)
            servers.pop("service").stop()
            step("the service summing with the pure-Python path: /sum, the largest documents")
            servers["python_path"] = start_server(
                cfg["workers"], {"SUMSERVICE_SUM_KERNEL": "false"}
            )
            python_path_http(servers["python_path"], docs, files, cfg)
        finally:
            for running in servers.values():
                running.stop()
        step(SERVING_STEP)
        serving_results = serving.run(files, Path(folder), args.quick, cfg["workers"])
        ceiling = {"sum": small["ceiling", "sum"], "auth": small["ceiling", "auth"]}
        service = {
            "sum": small["service", "sum"],
            "auth": small["service", "auth"],
            "sum_token_cache_off": small["uncached", "sum"],
        }

    for doc in docs:
        del doc["bytes"]
        json_mb_s = doc["inprocess"]["json_loads_mb_per_s"]
        doc["ratio_canonical_sum_to_json_loads"] = ratio(
            doc["inprocess"]["canonical_sum_mb_per_s"], json_mb_s
        )
        doc["ratio_http_to_json_loads"] = ratio(doc["http"]["mb_per_s"], json_mb_s)
    body_mib = memory["body_bytes"] / MIB
    memory["limit_rss_mib"] = round(memory["idle_rss_mib"] + TARGET_RSS_BODIES * body_mib, 1)
    memory["rss_growth_in_bodies"] = round(
        (memory["peak_rss_mib"] - memory["idle_rss_mib"]) / body_mib, 2
    )
    memory["met"] = memory["peak_rss_mib"] <= memory["limit_rss_mib"]

    results = {
        "timestamp": started.isoformat(timespec="seconds"),
        "quick": args.quick,
        "machine": machine(),
        "config": {
            key: value
            for key, value in cfg.items()
            if key not in ("repeats", "sizes", "deep_sizes")
        },
        "ceiling": ceiling,
        "service": service,
        "ratios": {name: ratios(service[name], ceiling[name.split("_")[0]]) for name in service},
        "documents": docs,
        "deep": deep,
        "gil": gil,
        "summing_backend": summing.backend(),
        "memory": memory,
        "serving": serving_results,
    }
    results["targets"] = summarise(service, ceiling, docs, deep, memory)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    step(f"done: {out}")
    print(f"summing with: {results['summing_backend']}")
    print(table(results))
    print("\n".join(serving.table(serving_results)))
    return 0


SERVING_STEP = (
    "serving: the service, the service under gunicorn's sync worker and the Flask peer;"
    " keep-alive and closing clients, slow clients, large documents"
)


def serving_only(quick: bool, cfg: dict, out: Path, step) -> int:
    """The serving part alone (bench/serving.py), with its own JSON file."""
    with tempfile.TemporaryDirectory(prefix="sumservice-bench-") as folder:
        files = {
            "small": Path(folder) / "small.json",
            "credentials": Path(folder) / "credentials.json",
        }
        files["small"].write_bytes(SMALL)
        files["credentials"].write_text(json.dumps(CREDENTIALS))
        step(SERVING_STEP)
        results = {
            "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
            "quick": quick,
            "machine": machine(),
            "serving": serving.run(files, Path(folder), quick, cfg["workers"]),
        }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    step(f"done: {out}")
    print("\n".join(serving.table(results["serving"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
