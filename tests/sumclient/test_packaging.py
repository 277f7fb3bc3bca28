"""`pip install .` gives a working sumclient, alone: no Django, no tests, typed."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.liveserver import ROOT


def run(*command: str | Path, cwd: Path) -> str:
    # Never from the repository: `python -c` would import its sumclient/, not the installed one.
    result = subprocess.run(
        [str(part) for part in command], cwd=cwd, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_pip_install_gives_the_client_without_django(tmp_path: Path) -> None:
    # A copy of what the package is built from, so the build leaves nothing in the work tree.
    source = tmp_path / "source"
    source.mkdir()
    shutil.copy(ROOT / "pyproject.toml", source)
    shutil.copy(ROOT / "LICENSE", source)
    shutil.copytree(ROOT / "sumclient", source / "sumclient")
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    python = venv / "bin" / "python"
    run(
        python,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        source,
        cwd=tmp_path,
    )

    installed = {
        line.split("==")[0].lower()
        for line in run(python, "-m", "pip", "freeze", cwd=tmp_path).split()
    }
    assert "sumclient" in installed and "requests" in installed
    assert "django" not in installed

    site = Path(
        run(
            python,
            "-c",
            "import sumclient, os; print(os.path.dirname(sumclient.__file__))",
            cwd=tmp_path,
        ).strip()
    )
    assert (site / "py.typed").exists()
    assert not (site.parent / "tests").exists()
    assert (
        run(python, "-c", "import sumclient; print(sumclient.__version__)", cwd=tmp_path).strip()
        == "1.0.0"
    )
    assert "sum" in run(venv / "bin" / "sumclient", "--help", cwd=tmp_path)
    # Its README is the package's long description (pip show, an index page).
    description = run(
        python,
        "-c",
        "from importlib.metadata import metadata; print(metadata('sumclient').get_payload())",
        cwd=tmp_path,
    )
    assert description.startswith("# sumclient")
    # MAX_ANSWER_BYTES bounds a compressed answer only where urllib3 limits each read's output.
    requires = run(
        python,
        "-c",
        "from importlib.metadata import requires; print(requires('sumclient'))",
        cwd=tmp_path,
    )
    assert "'urllib3>=2.6'" in requires
    assert "SumClient(" in description
