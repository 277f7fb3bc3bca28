"""The serving part of the benchmark (issue 13), run by bench/run.py: the service against its
Flask peer and against itself as it was served before (gunicorn's sync worker), in one
interleaved run.

- small /sum and /auth, with keep-alive clients and with clients that close after each answer
  (wrk, `Connection: close`): requests/s and server CPU per request, each side beside the
  Flask peer (bench/flask_peer.py: Flask + PyJWT HS256 under gunicorn sync, 2 workers);
- how connections spread over the workers: established connections per worker, sampled from
  /proc during the keep-alive load, and answers per worker from the access log;
- a slow-client probe: 256 connections trickling a request head or body at one byte a second,
  while a client sends small /sum requests on new connections: answered, failed, p50/p99;
- head-of-line: small /sum latency on a single worker while another client keeps it summing
  10 MiB documents;
- 1 MiB /sum MB/s (and server CPU per request) of each document kind, the service against the
  sync worker, in interleaved rounds.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import requests

from bench.documents import KINDS, document
from sumservice.worker import http_parser_in_use
from tests.e2e.clients import Probe, Tricklers, sum_request
from tests.liveserver import LiveServer, free_port

BENCH = Path(__file__).resolve().parent
LUA = BENCH / "post.lua"
MIB = 1 << 20
CREDENTIALS = {"username": "bench", "password": "bench-password"}

# Issue 13's targets, each against the Flask peer in the same run.
TARGET_SUM_RPS = 1.3  # small /sum requests/s, at least this times the peer's
TARGET_SUM_CPU = 1.0  # small /sum server CPU per request, at most this times the peer's
TARGET_AUTH_RPS = 1.0  # /auth requests/s, at least the peer's
TARGET_LARGE_MBS = 1.0  # 1 MiB /sum MB/s, at least the sync worker's

FULL = {
    "connections": 16,
    "warmup_s": 2,
    "small_s": 4,
    "rounds": 3,
    "tricklers": 256,
    "probe_s": 6,
    "large_kinds": KINDS,
    # Five short rounds rather than three: one side's 1 MiB MB/s moves by up to 1.8 x from one
    # 2 s round to the next on 2 shared cores; the median of five paired ratios is steadier.
    "large_rounds": 5,
    "large_s": 2,
    "head_of_line_s": 6,
}
QUICK = {
    "connections": 4,
    "warmup_s": 0,
    "small_s": 1,
    "rounds": 1,
    "tricklers": 16,
    "probe_s": 1,
    "large_kinds": ("int",),
    "large_rounds": 1,
    "large_s": 1,
    "head_of_line_s": 1,
}


# --- the servers ----------------------------------------------------------------------------


def start_sides(workers: int) -> dict[str, LiveServer]:
    """The service as shipped, the service under gunicorn's sync worker (as it was served
    before issue 13), and the Flask peer."""
    # /auth is measured at full speed from one address: its rate limit (60/minute) is off.
    quiet = {"GUNICORN_LOG_LEVEL": "warning", "SUMSERVICE_AUTH_RATE": "off"}
    python_gunicorn = [sys.executable, "-m", "gunicorn"]
    # The sync worker and the peer parse HTTP as they did when issue 13 measured them, with
    # gunicorn's Python parser: gunicorn_h1c is an optional install, which `pip install gunicorn`
    # does not bring (gunicorn's WSGI workers would use it too).
    python_parser = {**quiet, "GUNICORN_HTTP_PARSER": "python"}
    sides = {
        "service": LiveServer(env=quiet, workers=workers),
        "sync": LiveServer(
            env=python_parser,
            workers=workers,
            command=[
                *python_gunicorn,
                "--config",
                "gunicorn.conf.py",
                "--worker-class",
                "sync",
                "sumservice.wsgi:application",
            ],
        ),
    }
    port = free_port()
    sides["flask"] = LiveServer(
        env=quiet,
        workers=workers,
        port=port,
        command=[
            *python_gunicorn,
            f"--bind=127.0.0.1:{port}",
            f"--workers={workers}",
            "--worker-class=sync",
            "--http-parser=python",
            "--log-level=warning",
            "--access-logfile=-",
            '--access-logformat=%(h)s "%(r)s" %(s)s pid=%(p)s',
            "bench.flask_peer:app",
        ],
    )
    started: dict[str, LiveServer] = {}
    try:
        for name, server in sides.items():
            started[name] = server.start()
    except BaseException:
        stop_sides(started)
        raise
    return started


def stop_sides(sides: dict[str, LiveServer]) -> None:
    for server in sides.values():
        server.stop()
        server._tempdir.cleanup()


def token_of(server: LiveServer) -> str:
    answer = requests.post(server.url + "/auth", json=CREDENTIALS, timeout=10)
    answer.raise_for_status()
    return answer.json()["access_token"]


# --- /proc ----------------------------------------------------------------------------------


def workers_of(server: LiveServer) -> list[int]:
    return sorted(server.worker_pids())


def cpu_seconds(server: LiveServer) -> float:
    from bench.run import cpu_seconds as tree_cpu_seconds

    assert server.process is not None
    return tree_cpu_seconds(server.process.pid)


def wait_idle(server: LiveServer, quiet_s: float = 0.2) -> None:
    from bench.run import wait_idle as tree_wait_idle

    assert server.process is not None
    tree_wait_idle(server.process.pid, quiet_s)


def established_by_worker(server: LiveServer) -> dict[int, int]:
    """Established TCP connections to the server's port held by each worker, from /proc."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "01" and int(fields[1].rsplit(":", 1)[1], 16) == server.port:
                    inodes.add(fields[9])
    counts = {}
    for pid in workers_of(server):
        count = 0
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    link = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if link.startswith("socket:[") and link[8:-1] in inodes:
                        count += 1
        counts[pid] = count
    return counts


def answers_by_worker(log: str) -> dict[str, int]:
    # The service's JSON request lines, or the peer's access lines.
    return dict(Counter(re.findall(r'(?:"pid": |pid=<?)(\d+)', log)))


# --- wrk ------------------------------------------------------------------------------------


def wrk(url: str, body: Path, token: str, seconds: float, connections: int, close: bool) -> dict:
    env = {**os.environ, "BENCH_BODY_FILE": str(body), "BENCH_TOKEN": token}
    if close:
        env["BENCH_CONNECTION_CLOSE"] = "1"
    command = [
        "wrk",
        "--threads=1",
        f"--connections={connections}",
        f"--duration={max(1, round(seconds))}s",
        "--timeout=10s",
        f"--script={LUA}",
        url,
    ]
    finished = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=seconds + 60
    )
    lines = [line for line in finished.stdout.splitlines() if line.startswith("BENCH_RESULT ")]
    if finished.returncode != 0 or not lines:
        raise RuntimeError(
            f"wrk failed ({finished.returncode}):\n{finished.stdout}{finished.stderr}"
        )
    return json.loads(lines[-1].removeprefix("BENCH_RESULT "))


def load(
    server: LiveServer,
    path: str,
    body: Path,
    token: str,
    seconds: float,
    connections: int,
    close: bool,
) -> dict:
    """One wrk run: requests/s, errors, server CPU per request, and how the work spread."""
    wait_idle(server)
    log_offset = len(server.log())
    before = cpu_seconds(server)
    sampled: dict[int, int] = {}

    def sample() -> None:
        time.sleep(min(1.0, seconds / 2))
        sampled.update(established_by_worker(server))

    sampler = threading.Thread(target=sample)
    sampler.start()
    result = wrk(server.url + path, body, token, seconds, connections, close)
    sampler.join()
    wait_idle(server)
    cpu = cpu_seconds(server) - before
    answered = result["requests"]
    return {
        "requests_per_s": round(answered / (result["duration_us"] / 1e6), 1),
        "server_cpu_ms_per_request": round(cpu * 1000 / answered, 4) if answered else None,
        "errors": result["errors"],
        "latency_ms": {key: round(result["latency_us"][key] / 1000, 3) for key in ("p50", "p99")},
        "established_connections_by_worker": list(sampled.values()),
        "answers_by_worker": sorted(answers_by_worker(server.log()[log_offset:]).values()),
    }


def median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def small_loads(sides: dict[str, LiveServer], files: dict[str, Path], cfg: dict) -> dict:
    """Every side, every load, in interleaved rounds; each figure the median of the rounds."""
    tokens = {name: token_of(server) for name, server in sides.items()}
    loads = [
        ("sum", "/sum", "small", False),
        ("sum_close", "/sum", "small", True),
        ("auth", "/auth", "credentials", False),
    ]
    runs: dict[tuple[str, str], list[dict]] = {}
    for round_number in range(cfg["rounds"]):
        for figure, path, body, close in loads:
            for name, server in sides.items():
                token = tokens[name] if path == "/sum" else ""
                if round_number == 0 and cfg["warmup_s"]:
                    wrk(server.url + path, files[body], token, cfg["warmup_s"], 4, close)
                runs.setdefault((name, figure), []).append(
                    load(
                        server, path, files[body], token, cfg["small_s"], cfg["connections"], close
                    )
                )
    figures: dict[str, dict] = {}
    for (name, figure), rounds in runs.items():
        figures.setdefault(name, {})[figure] = {
            "requests_per_s": median([run["requests_per_s"] for run in rounds]),
            "server_cpu_ms_per_request": median(
                [run["server_cpu_ms_per_request"] or float("nan") for run in rounds]
            ),
            "latency_ms": rounds[len(rounds) // 2]["latency_ms"],
            "errors": sum(sum(run["errors"].values()) for run in rounds),
            "rounds": rounds,
        }
    return figures


# --- slow clients, head-of-line, large bodies -----------------------------------------------


def slow_client_probe(server: LiveServer, token: str, cfg: dict) -> dict:
    """Half the tricklers send their head a byte a second, half their body; meanwhile a client
    sends small /sum requests on new connections, one after the other."""
    half = cfg["tricklers"] // 2
    body = sum_request(token, b"[" + b"1," * 500 + b"1]")
    head = body[: body.index(b"\r\n\r\n") + 4]
    with (
        Tricklers(
            server, half, b"POST /sum HTTP/1.1\r\nHost: 127.0.0.1\r\n", b"X-Slow: " + b"a" * 100
        ),
        Tricklers(server, cfg["tricklers"] - half, head, b"1," * 100),
    ):
        probe = Probe(server, token, timeout=2).run(cfg["probe_s"])
    latencies = sorted(probe.latencies)
    return {
        "tricklers": cfg["tricklers"],
        "sent": len(latencies),
        "failed": len(probe.failures),
        "within_1s": round(probe.share_within(1.0), 3),
        "p50_ms": round(1000 * latencies[len(latencies) // 2], 1),
        "p99_ms": round(1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 1),
    }


def head_of_line(server: LiveServer, token: str, big: bytes, seconds: float) -> dict:
    """Small /sum latency on one worker while another client keeps it summing `big`."""
    stop = threading.Event()
    big_answers = []

    def keep_summing() -> None:
        while not stop.is_set():
            answer = requests.post(
                server.url + "/sum",
                data=big,
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
                timeout=120,
            )
            big_answers.append(answer.status_code)

    summing = threading.Thread(target=keep_summing)
    summing.start()
    time.sleep(0.3)
    try:
        probe = Probe(server, token, timeout=30).run(seconds)
    finally:
        stop.set()
        summing.join()
    latencies = sorted(probe.latencies)
    return {
        "big_answers": len(big_answers),
        "small_answers": len(latencies),
        "failed": len(probe.failures) + sum(status != 200 for status in big_answers),
        "small_p50_ms": round(1000 * latencies[len(latencies) // 2], 1),
        "small_max_ms": round(1000 * latencies[-1], 1),
    }


def large_loads(sides: dict[str, LiveServer], folder: Path, cfg: dict) -> dict:
    """1 MiB /sum MB/s and server CPU per request of each kind, 2 connections, keep-alive, in
    interleaved rounds (the sides taking turns, the first of them alternating); each figure the
    median of the rounds, each ratio the median of the rounds' own service/sync ratios."""
    rounds: dict[str, list[dict[str, dict[str, float]]]] = {}
    for kind in cfg["large_kinds"]:
        path = folder / f"serving-{kind}-1MiB.json"
        path.write_bytes(document(kind, MIB))
        for round_number in range(cfg["large_rounds"]):
            order = ("sync", "service") if round_number % 2 == 0 else ("service", "sync")
            figures = {}
            for name in order:
                server = sides[name]
                token = token_of(server)
                wait_idle(server)
                before = cpu_seconds(server)
                result = wrk(server.url + "/sum", path, token, cfg["large_s"], 2, False)
                if any(result["errors"].values()) or not result["requests"]:
                    raise RuntimeError(f"1 MiB {kind} on {name}: {result}")
                wait_idle(server)
                figures[name] = {
                    "mb_per_s": MIB * 2 / (result["latency_us"]["mean"] / 1e6) / 1e6,
                    "cpu_ms": (cpu_seconds(server) - before) * 1000 / result["requests"],
                }
            rounds.setdefault(kind, []).append(figures)
    return {
        "mb_per_s": {
            name: {
                kind: round(median([one[name]["mb_per_s"] for one in runs]), 1)
                for kind, runs in rounds.items()
            }
            for name in ("sync", "service")
        },
        "cpu_ms_per_request": {
            name: {
                kind: round(median([one[name]["cpu_ms"] for one in runs]), 3)
                for kind, runs in rounds.items()
            }
            for name in ("sync", "service")
        },
        "mb_per_s_ratio": {
            kind: round(
                median([one["service"]["mb_per_s"] / one["sync"]["mb_per_s"] for one in runs]), 3
            )
            for kind, runs in rounds.items()
        },
        "rounds": rounds,
    }


# --- the whole part -------------------------------------------------------------------------


def http_parser(server: LiveServer) -> str:
    """The HTTP parser a side's gunicorn uses: what its command line or GUNICORN_HTTP_PARSER
    (gunicorn.conf.py) chooses, with what this virtualenv has installed."""
    chosen = [arg.partition("=")[2] for arg in server.command if arg.startswith("--http-parser=")]
    setting = chosen[0] if chosen else server.env.get("GUNICORN_HTTP_PARSER", "auto")
    return http_parser_in_use(setting)


def run(files: dict[str, Path], folder: Path, quick: bool, workers: int) -> dict:
    cfg = QUICK if quick else FULL
    sides = start_sides(workers)
    try:
        parsers = {name: http_parser(server) for name, server in sides.items()}
        small = small_loads(sides, files, cfg)
        slow = {
            name: slow_client_probe(sides[name], token_of(sides[name]), cfg)
            for name in ("flask", "service")
        }
        large = large_loads(sides, folder, cfg)
    finally:
        stop_sides(sides)
    big = document("int", MIB if quick else 10 * MIB)
    head = {}
    for name, command_worker in (("sync", "sync"), ("service", None)):
        single = start_sides_single(command_worker)
        try:
            head[name] = head_of_line(single, token_of(single), big, cfg["head_of_line_s"])
        finally:
            stop_sides({name: single})
    results = {
        "config": cfg,
        "http_parser": parsers,
        "small": small,
        "slow_clients": slow,
        "large_mb_per_s": large["mb_per_s"],
        "large": large,
    }
    results["head_of_line"] = head
    results["targets"] = targets(results)
    return results


def start_sides_single(worker_class: str | None) -> LiveServer:
    """One worker: the service as shipped, or under gunicorn's sync worker."""
    command = None
    if worker_class:
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "--config",
            "gunicorn.conf.py",
            "--worker-class",
            worker_class,
            "sumservice.wsgi:application",
        ]
    env = {"GUNICORN_LOG_LEVEL": "warning", "SUMSERVICE_AUTH_RATE": "off"}
    if worker_class:
        env["GUNICORN_HTTP_PARSER"] = "python"  # as start_sides serves the sync worker
    return LiveServer(env=env, workers=1, command=command).start()


def paired(service: dict, peer: dict, key: str) -> float:
    """The median over the rounds of each round's own service/peer ratio: each round ran the
    sides back to back, so each ratio compares like moments of a shared machine."""
    ratios = [
        ours[key] / theirs[key]
        for ours, theirs in zip(service["rounds"], peer["rounds"], strict=True)
        if ours[key] and theirs[key]
    ]
    return median(ratios) if ratios else float("nan")


def targets(results: dict) -> list[dict]:
    small = results["small"]
    service, flask = small["service"], small["flask"]
    rows = [
        (
            f"small /sum requests/s >= {TARGET_SUM_RPS}x the Flask peer's (keep-alive)",
            paired(service["sum"], flask["sum"], "requests_per_s"),
            lambda figure: figure >= TARGET_SUM_RPS,
        ),
        (
            "small /sum server CPU per request <= the Flask peer's (keep-alive)",
            paired(service["sum"], flask["sum"], "server_cpu_ms_per_request"),
            lambda figure: figure <= TARGET_SUM_CPU,
        ),
        (
            "/auth requests/s >= the Flask peer's (keep-alive)",
            paired(service["auth"], flask["auth"], "requests_per_s"),
            lambda figure: figure >= TARGET_AUTH_RPS,
        ),
    ]
    for kind, figure in results["large"]["mb_per_s_ratio"].items():
        rows.append(
            (
                f"1 MiB {kind} /sum MB/s >= the sync worker's",
                figure,
                lambda ratio: ratio >= TARGET_LARGE_MBS,
            )
        )
    spread = service["sum"]["rounds"][0]["established_connections_by_worker"]
    rows.append(
        (
            "no worker idle while another holds the keep-alive connections (fewest per worker)",
            min(spread) if spread else 0,
            lambda fewest: fewest > 0,
        )
    )
    slow = results["slow_clients"]["service"]
    rows.append(
        (
            "slow clients: share of other requests answered within 1 s (none failing)",
            slow["within_1s"] if not slow["failed"] else 0.0,
            lambda share: share >= 0.99,
        )
    )
    return [
        {"target": name, "figure": round(figure, 3), "met": bool(check(figure))}
        for name, figure, check in rows
    ]


def table(results: dict) -> list[str]:
    """The serving figures as lines of text, for bench/run.py's report."""
    small = results["small"]
    lines = ["", "serving (issue 13): the service, its sync-worker self and the Flask peer"]
    lines += [f"{side:8} parsed HTTP with {name}" for side, name in results["http_parser"].items()]
    header = f"{'load':28} {'side':8} {'req/s':>8} {'CPU ms/req':>11} {'p99 ms':>8} {'errors':>6}"
    lines += [header, "-" * len(header)]
    labels = {
        "sum": "small /sum, keep-alive",
        "sum_close": "small /sum, Connection: close",
        "auth": "/auth, keep-alive",
    }
    for figure, label in labels.items():
        for name in ("flask", "sync", "service"):
            row = small[name][figure]
            lines.append(
                f"{label:28} {name:8} {row['requests_per_s']:8.0f} "
                f"{row['server_cpu_ms_per_request']:11.3f} {row['latency_ms']['p99']:8.2f} "
                f"{row['errors']:6d}"
            )
    lines.append("")
    for name in ("flask", "sync", "service"):
        first = small[name]["sum"]["rounds"][0]
        spread = first["established_connections_by_worker"]
        lines.append(
            f"{name:8} keep-alive connections per worker {spread}"
            f", answers per worker {first['answers_by_worker']}"
        )
    lines.append("")
    for name, row in results["slow_clients"].items():
        lines.append(
            f"{name:8} with {row['tricklers']} slow clients: {row['sent']} sent, {row['failed']}"
            f" failed, {100 * row['within_1s']:.1f}% within 1 s, p50 {row['p50_ms']} ms,"
            f" p99 {row['p99_ms']} ms"
        )
    for name, row in results["head_of_line"].items():
        lines.append(
            f"{name:8} one worker summing large documents: small /sum p50 {row['small_p50_ms']}"
            f" ms, max {row['small_max_ms']} ms ({row['small_answers']} small,"
            f" {row['big_answers']} large answers, {row['failed']} failed)"
        )
    large = results["large"]
    for kind, ratio in large["mb_per_s_ratio"].items():
        mb_s, cpu = large["mb_per_s"], large["cpu_ms_per_request"]
        lines.append(
            f"1 MiB {kind:7} /sum MB/s: service {mb_s['service'][kind]}, sync {mb_s['sync'][kind]}"
            f" (x{ratio}); CPU ms/request: service {cpu['service'][kind]},"
            f" sync {cpu['sync'][kind]}"
        )
    lines.append("")
    for target in results["targets"]:
        mark = "met   " if target["met"] else "MISSED"
        lines.append(f"{mark} {target['target']}: {target['figure']}")
    return lines
