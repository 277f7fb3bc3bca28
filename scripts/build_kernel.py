"""Build the summing kernel (api/_sumkernel.c) into the running Python's site-packages.

    .venv/bin/python scripts/build_kernel.py   # the module `_sumkernel` api.summing imports;
                                               # a no-op when it is newer than its source
    python scripts/build_kernel.py --sanitize DIR
                                               # a copy built with ASan and UBSan, in DIR (tests)

The virtualenv is where it goes, since each place that runs the service has its own (.venv for
start.sh and test.sh, /opt/venv in the image, copied from the builder stage, which alone has a
compiler), and the library is built for that virtualenv's Python.

Called by start.sh, test.sh and the Dockerfile's builder stage; it is not the project's
packaging (pyproject.toml builds only sumclient). It calls the C compiler directly with the
running Python's own include directory and extension suffix (sysconfig), so it needs no
setuptools. Exits 0 having built (or found fresh) the kernel, 1 when there is no compiler or the
build failed: start.sh then serves with the pure-Python path and says so.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "api" / "_sumkernel.c"
WARNINGS = ["-Wall", "-Wextra", "-Werror"]
# -fno-strict-aliasing as CPython's own builds; -fvisibility: only PyInit is exported.
OPTIMIZE = ["-O2", "-fno-strict-aliasing", "-fvisibility=hidden"]
SANITIZE = [
    "-O1",
    "-g",
    "-fno-omit-frame-pointer",
    "-fsanitize=address,undefined",
    "-fno-sanitize-recover=all",
]


def compiler() -> list[str] | None:
    if os.environ.get("CC"):
        command = shlex.split(os.environ["CC"])
        return command if shutil.which(command[0]) else None
    found = shutil.which("cc") or shutil.which("gcc")
    return [found] if found else None


def target(directory: Path) -> Path:
    return directory / ("_sumkernel" + sysconfig.get_config_var("EXT_SUFFIX"))


def build(output: Path, flags: list[str]) -> bool:
    cc = compiler()
    if cc is None:
        print("build_kernel: no C compiler found (cc, gcc or $CC)", file=sys.stderr)
        return False
    include = sysconfig.get_paths()["include"]
    if not (Path(include) / "Python.h").exists():
        print(f"build_kernel: no Python.h in {include} (python3-dev)", file=sys.stderr)
        return False
    output.parent.mkdir(parents=True, exist_ok=True)
    # Named for this build: two at once (./start.sh and ./start.sh dev) must not share it.
    partial = output.with_name(f"{output.name}.{os.getpid()}.part")
    command = [
        *cc,
        *flags,
        *WARNINGS,
        "-std=c11",
        "-fPIC",
        "-shared",
        f"-I{include}",
        str(SOURCE),
        "-o",
        str(partial),
    ]
    try:
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            print(f"build_kernel: {shlex.join(command)}\n{result.stderr}", file=sys.stderr)
            return False
        partial.replace(output)  # atomic: a running import never sees half a library
        return True
    finally:
        partial.unlink(missing_ok=True)  # a failed or interrupted build's


def fresh(output: Path) -> bool:
    return output.exists() and output.stat().st_mtime >= max(
        SOURCE.stat().st_mtime, Path(__file__).stat().st_mtime
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sanitize", metavar="DIR", type=Path, help="an ASan+UBSan build")
    arguments = parser.parse_args()
    if arguments.sanitize is not None:
        output = target(arguments.sanitize)
        return 0 if fresh(output) or build(output, SANITIZE) else 1
    output = target(Path(sysconfig.get_paths()["platlib"]))
    return 0 if fresh(output) or build(output, OPTIMIZE) else 1


if __name__ == "__main__":
    sys.exit(main())
