"""scripts/build_kernel.py: without a compiler it says so and fails, which start.sh reports and
serves with the pure-Python path. (With one, every summing test runs on what it built.)"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "build_kernel.py"


def build(*arguments: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *arguments],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
    )


def test_without_a_compiler_it_says_so_and_fails(tmp_path: Path) -> None:
    result = build("--sanitize", str(tmp_path), CC="no-such-compiler")
    assert result.returncode == 1
    assert "no C compiler" in result.stderr
    assert not list(tmp_path.iterdir())


def test_builds_at_once_all_succeed(tmp_path: Path) -> None:
    """./start.sh and ./start.sh dev started together each build the kernel: neither may take
    the other's half-written file."""
    command = [sys.executable, str(SCRIPT), "--sanitize", str(tmp_path)]
    builds = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    results = []
    for build in builds:
        _, errors = build.communicate(timeout=120)
        results.append((build.returncode, errors))

    assert results == [(0, "")] * 4
    assert [path.name for path in tmp_path.iterdir()] == [
        f"_sumkernel{sysconfig.get_config_var('EXT_SUFFIX')}"
    ]
