#!/usr/bin/env python
"""Profile one gunicorn worker under wrk load with py-spy, and print where its time goes.

    .venv/bin/python bench/profile.py sum              # small /sum
    .venv/bin/python bench/profile.py auth             # /auth
    .venv/bin/python bench/profile.py sum:nested-1MiB  # /sum with a bench document
    .venv/bin/python bench/profile.py sum --ceiling    # the bare-Django ceiling instead

It starts the service (or the ceiling) with one worker on a loopback port, loads it with wrk,
samples the worker with py-spy (bench/requirements.txt installs it; sampling another process
needs root or ptrace rights) and writes the collapsed stacks to bench/results/profile-*.txt
(speedscope.app and flamegraph.pl read them). It prints the functions with the largest
inclusive and self share of the samples.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.documents import KINDS, document  # noqa: E402
from bench.run import CREDENTIALS, LUA, SMALL, get_token, start_server  # noqa: E402


def frame_name(frame: str) -> str:
    """`function (path/to/file.py:12)` -> `function (file.py)`"""
    name, _, where = frame.partition(" (")
    return f"{name} ({where.split(':')[0].rsplit('/', 1)[-1]})" if where else name


def summary(collapsed: Path, top: int) -> str:
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [frame_name(frame) for frame in stack.split(";")]
        total += int(count)
        for name in set(frames):
            inclusive[name] += int(count)
        own[frames[-1]] += int(count)
    lines = [f"{total} samples", "", "inclusive:"]
    lines += [f"{100 * n / total:5.1f}%  {name}" for name, n in inclusive.most_common(top)]
    lines += ["", "self:"]
    lines += [f"{100 * n / total:5.1f}%  {name}" for name, n in own.most_common(top // 2)]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("target", help="sum, auth, or sum:KIND-SIZE (e.g. sum:int-1MiB)")
    parser.add_argument("--ceiling", action="store_true", help="profile the bare-Django ceiling")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(py_spy).exists() or shutil.which("wrk") is None:
        parser.error("needs py-spy (bench/requirements.txt) and wrk (./bench/run.sh installs it)")

    with tempfile.TemporaryDirectory(prefix="sumservice-profile-") as folder:
        body = Path(folder) / "body.json"
        path, _, doc = args.target.partition(":")
        if path == "auth":
            body.write_text(json.dumps(CREDENTIALS))
        elif doc:
            kind, _, size = doc.partition("-")
            if kind not in KINDS or not size.endswith("MiB"):
                parser.error(f"documents are KIND-NMiB, KIND one of {', '.join(KINDS)}")
            body.write_bytes(document(kind, int(size.removesuffix("MiB")) << 20))
        else:
            body.write_bytes(SMALL)
        env = {"DJANGO_SETTINGS_MODULE": "bench.ceiling_settings"} if args.ceiling else {}
        server = start_server(1, env)
        try:
            token = "" if args.ceiling or path == "auth" else get_token(server)
            worker = min(server.worker_pids())
            load = subprocess.Popen(
                ["wrk", "-t1", "-c4", f"-d{args.seconds + 3}s", "--timeout=30s", f"-s{LUA}"]
                + [f"{server.url}/{path}"],
                env={**os.environ, "BENCH_BODY_FILE": str(body), "BENCH_TOKEN": token},
                stdout=subprocess.PIPE,
                text=True,
            )
            time.sleep(1.5)
            name = args.target.replace(":", "-") + ("-ceiling" if args.ceiling else "")
            out = ROOT / "bench" / "results" / f"profile-{name}.txt"
            out.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run(
                [py_spy, "record", "--pid", str(worker), "--duration", str(args.seconds)]
                + ["--rate", str(args.rate), "--format", "raw", "--output", str(out)]
                + ["--nonblocking"],
                check=True,
                capture_output=True,
            )
            wrk_output = load.communicate(timeout=args.seconds + 60)[0]
        finally:
            server.stop()
    result = [line for line in wrk_output.splitlines() if line.startswith("BENCH_RESULT")]
    if result:
        figures = json.loads(result[0].removeprefix("BENCH_RESULT "))
        rate = figures["requests"] / (figures["duration_us"] / 1e6)
        print(f"wrk: {rate:.0f} requests/s over the whole load (the profile is {args.seconds} s)")
    print(f"collapsed stacks: {out}\n")
    print(summary(out, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
