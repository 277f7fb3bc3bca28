import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

BIN = Path(sys.executable).parent


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


@pytest.fixture(scope="session")
def signing_key_pem() -> str:
    """A fresh ES256 private key, PKCS#8 PEM: the one key several instances share."""
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
