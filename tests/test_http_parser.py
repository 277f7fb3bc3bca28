"""gunicorn_h1c, the C HTTP parser the workers use when it is installed (requirements-compiled.txt):
it parses every client's bytes in C, so it is fuzzed here under AddressSanitizer and
UndefinedBehaviorSanitizer, against gunicorn's Python parser (tests/http_parser_fuzz.py).

Cost: ~20 s of CPU to build the sanitized copy (pip, from the pinned release's source), and
the fuzz's seconds.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

from tests.liveserver import ROOT
from tests.utils import sanitizer_env

FUZZ_SECONDS = float(os.environ.get("HTTP_PARSER_FUZZ_SECONDS", "20"))
SANITIZE = "-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all"


def pinned_h1c() -> str:
    requirements = (ROOT / "requirements-compiled.txt").read_text()
    (pin,) = re.findall(r"^gunicorn-h1c==\S+$", requirements, re.MULTILINE)
    return pin


def test_differential_fuzz_under_sanitizers(tmp_path: Path) -> None:
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            # No cache: pip would take a plain build of the pinned release from it, or keep
            # this one there for the next plain install to take.
            "--no-cache-dir",
            "--no-deps",
            "--no-binary=gunicorn-h1c",
            "--target",
            str(tmp_path),
            pinned_h1c(),
        ],  # fmt: skip
        env={**os.environ, "CFLAGS": SANITIZE, "LDFLAGS": "-fsanitize=address,undefined"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    (library,) = (tmp_path / "gunicorn_h1c").glob("_protocol*.so")
    linked = subprocess.run(["ldd", str(library)], capture_output=True, text=True).stdout
    assert "libasan" in linked and "libubsan" in linked, linked

    seed = int(os.environ.get("HTTP_PARSER_FUZZ_SEED", time.time_ns() % 1_000_000))
    fuzz = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.http_parser_fuzz",
            f"--seconds={FUZZ_SECONDS}",
            f"--seed={seed}",
            f"--h1c={tmp_path}",
        ],
        cwd=ROOT,
        env={**os.environ, **sanitizer_env()},
        capture_output=True,
        text=True,
        timeout=FUZZ_SECONDS + 120,
    )
    report = f"seed {seed} (HTTP_PARSER_FUZZ_SEED={seed} repeats it)\n{fuzz.stdout}\n{fuzz.stderr}"
    assert fuzz.returncode == 0, report
    assert f"gunicorn_h1c from {tmp_path}" in fuzz.stdout, report
    assert " 0 mismatches" in fuzz.stdout, report
    assert "Sanitizer" not in fuzz.stderr and "runtime error" not in fuzz.stderr, report
    print(report)
