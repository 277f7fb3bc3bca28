"""The image's command starts the service, and it answers: shown without a Docker engine.

The test lays out the image's filesystem in a temporary folder from the Dockerfile itself: the
builder stage's commands make /opt/venv from requirements.txt and requirements-compiled.txt (a
clean virtualenv), the runtime stage's COPY instructions copy what the build context holds after
.dockerignore into WORKDIR, with the modes of a checkout made under umask 027 (no access for
other users, which COPY keeps), and its chmod commands apply. Then it runs the runtime stage's
ENTRYPOINT + CMD there, with the stage's ENV, as the image's USER when the tests run as root
(else with the code made read-only), with the signing key mounted as a file the way
deploy/make-keys.sh and a Secret provide it. Only the bind address is changed, to loopback, and
the port, to a free one.

Not emulated: the runtime stage's other RUN commands (creating the user and the state folder,
and compiling bytecode), the base image's Python, which here is this machine's 3.11, and the
builder stage's apt-get (installing the compiler): this machine's gcc (which ./test.sh installs)
builds the summing kernel and gunicorn's C HTTP parser.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import jwt
import pytest
import requests

from api.keys import load_keyring
from tests.deploy.deployfiles import (
    DEPLOY,
    ROOT,
    Dockerfile,
    Stage,
    build_context,
    make_tls_files,
)
from tests.liveserver import LiveServer, free_port
from tests.utils import run

# The PATH of the official python images, which the Dockerfile's ENV PATH extends.
BASE_IMAGE_PATH = "/usr/local/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass
class ImageFiles:
    root: Path  # stands for the image's /
    dockerfile: Dockerfile
    # Whether the image's user could run its Python here, so the test can run as that user.
    user_can_run: bool

    def host(self, container_path: str) -> Path:
        assert container_path.startswith("/"), container_path
        return self.root / container_path.lstrip("/")

    def host_paths(self, value: str) -> str:
        """A path, or a PATH-like list, moved into the stand-in; the base image's own PATH
        folders (/usr/bin, ...) stay as they are."""
        system = BASE_IMAGE_PATH.split(":")
        return ":".join(
            str(self.host(part)) if part.startswith("/") and part not in system else part
            for part in value.split(":")
        )


def reachable_by_others(path: Path) -> bool:
    """Whether a user other than the owner can run `path` (every folder above it searchable)."""
    path = path.resolve()
    return all(p.stat().st_mode & 0o001 for p in [path, *path.parents])


def python_for_the_image(version: str) -> tuple[str, bool]:
    """A Python of the image's version (X.Y) to make the virtualenv with, preferring one the
    image's user can run too; and whether it can."""
    candidates = [
        sys._base_executable,
        f"/usr/bin/python{version}",
        f"/usr/local/bin/python{version}",
    ]
    found = []
    for candidate in candidates:
        if not Path(candidate).exists():
            continue
        probe = run(candidate, "-c", "import sys, venv; print('%d.%d' % sys.version_info[:2])")
        if probe.returncode == 0 and probe.stdout.strip() == version:
            found.append(candidate)
    assert found, f"the image runs Python {version}; none found here ({candidates})"
    for candidate in found:
        if reachable_by_others(Path(candidate)):
            return candidate, True
    return found[0], False


def run_builder(stage: Stage, files: ImageFiles, context: set[str], python: str) -> None:
    """The builder stage's COPY and RUN lines, with container paths moved into the stand-in."""
    for flags, sources, destination in stage.copies():
        assert not flags, "the builder copies from the build context only"
        for source in sources:
            assert source in context, f"{source} is not in the build context"
            target = files.host(destination)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / source, target)
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONPATH"}}
    # The stage's ENV, but pip's cache stays on here: it only saves downloads between runs.
    env.update({k: v for k, v in stage.env().items() if k != "PIP_NO_CACHE_DIR"})
    for instruction in stage.all("RUN"):
        for command in instruction.args.split("&&"):
            words = shlex.split(command)
            if words[0] == "apt-get":
                continue
            words = [str(files.host(w)) if w.startswith("/") else w for w in words]
            if words[0] == "python":
                words[0] = python
            result = subprocess.run(words, env=env, capture_output=True, text=True, timeout=480)
            assert result.returncode == 0, f"{command}:\n{result.stdout}\n{result.stderr}"


def lay_out_runtime(stage: Stage, files: ImageFiles, context: set[str]) -> Path:
    workdir = files.host(stage.workdir())
    workdir.mkdir(parents=True, exist_ok=True)
    for flags, sources, destination in stage.copies():
        if flags.get("from"):
            # Copied between stages at the same path: a virtualenv works only where it was made.
            assert flags["from"] == "builder" and sources == [destination], (sources, destination)
            assert files.host(destination).is_dir()
            continue
        target = workdir / destination
        for source in sources:
            below = source.rstrip("/") + "/"
            found = sorted(p for p in context if p == source or p.startswith(below))
            assert found, f"COPY {source}: nothing in the build context"
            for path in found:
                if path == source:
                    copy_to = target / Path(path).name if destination.endswith("/") else target
                else:
                    copy_to = target / path[len(below) :]
                copy_to.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / path, copy_to)
                copy_to.chmod(copy_to.stat().st_mode & ~0o007)
                copy_to.parent.chmod(copy_to.parent.stat().st_mode & ~0o007)
    for instruction in stage.all("RUN"):
        for command in instruction.args.split("&&"):
            words = shlex.split(command)
            if words[0] == "chmod":
                words = [str(files.host(w)) if w.startswith("/") else w for w in words]
                subprocess.run(words, check=True, timeout=60)
    return workdir


@pytest.fixture(scope="module")
def image() -> Iterator[ImageFiles]:
    dockerfile = Dockerfile.parse()
    base = dockerfile.final.base
    assert base == dockerfile.stage("builder").base
    version = re.fullmatch(r"python:(\d+\.\d+)(?:\.\d+)?-slim-\w+", base)
    assert version, f"expected an official python slim image of a given minor version: {base}"
    python, user_can_run = python_for_the_image(version.group(1))
    # Outside pytest's private temporary folder, so the image's user can reach it.
    root = Path(tempfile.mkdtemp(prefix="sumservice-image-"))
    root.chmod(0o755)
    files = ImageFiles(root, dockerfile, user_can_run)
    try:
        context = build_context(ROOT)
        started = time.monotonic()
        run_builder(dockerfile.stage("builder"), files, context, python)
        lay_out_runtime(dockerfile.final, files, context)
        print(f"image laid out with {python} in {time.monotonic() - started:.1f}s at {root}")
        yield files
    finally:
        for folder, _, _ in os.walk(root):
            os.chmod(folder, 0o755)
        shutil.rmtree(root)


@pytest.fixture(scope="module")
def key_files(image: ImageFiles) -> Path:
    """The keys as Compose and Kubernetes provide them: files made by deploy/make-keys.sh,
    mounted into the container (the files alone, whatever their folder's mode on the host)."""
    made = image.root.parent / (image.root.name + "-keys")
    result = run(str(DEPLOY / "make-keys.sh"), str(made))
    assert result.returncode == 0, result.stderr
    mounted = image.host("/run/secrets/sumservice")
    mounted.mkdir(parents=True)
    for folder in (mounted.parent, mounted):
        folder.chmod(0o755)
    for name in ("signing-key.pem", "previous-keys.pem"):
        shutil.copy2(made / name, mounted / name)
        # A bind mount shows the host file's owner and group too.
        host = (made / name).stat()
        os.chown(mounted / name, host.st_uid, host.st_gid)
    shutil.rmtree(made)
    return mounted


def container_user(image: ImageFiles) -> dict:
    """subprocess arguments to run as the image's USER, when the tests may (as root)."""
    if os.geteuid() != 0 or not image.user_can_run:
        return {}
    user, _, group = image.dockerfile.final.last("USER").args.partition(":")
    return {"user": int(user), "group": int(group), "extra_groups": []}


def container_env(image: ImageFiles, key_files: Path, port: int) -> dict[str, str]:
    stage = image.dockerfile.final
    env = {"LANG": "C.UTF-8"}  # as the base image sets it
    for name, value in stage.env().items():
        env[name] = image.host_paths(value.replace("$PATH", BASE_IMAGE_PATH))
    env.update(
        HOST="127.0.0.1",
        PORT=str(port),
        SUMSERVICE_JWT_PRIVATE_KEY_FILE=str(key_files / "signing-key.pem"),
        SUMSERVICE_JWT_PREVIOUS_KEYS_FILE=str(key_files / "previous-keys.pem"),
    )
    return env


def make_read_only(*folders: Path) -> None:
    """Without root the test cannot switch user: take write access away instead."""
    for top in folders:
        for folder, _, names in os.walk(top):
            for name in names:
                path = Path(folder, name)
                if not path.is_symlink():
                    path.chmod(path.stat().st_mode & ~0o222)
            Path(folder).chmod(Path(folder).stat().st_mode & ~0o222)


def test_image_command_serves_the_api(image: ImageFiles, key_files: Path):
    stage = image.dockerfile.final
    command = stage.command()
    assert command, "the image has no ENTRYPOINT or CMD"
    port = free_port()
    env = container_env(image, key_files, port)
    state_dir = Path(env["SUMSERVICE_STATE_DIR"])
    assert state_dir.is_relative_to(image.root), state_dir
    state_dir.mkdir(parents=True)
    user = container_user(image)
    print(f"running as {user or 'this user, with the code read-only'}")
    if user:
        os.chown(state_dir, user["user"], user["group"])
        state_dir.chmod(0o700)
    else:
        make_read_only(image.host("/app"), image.host("/opt"))
    workdir = image.host(stage.workdir())
    executable = shutil.which(command[0], path=env["PATH"])
    assert executable and executable.startswith(str(image.root)), executable
    log = image.root / "container.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [executable, *command[1:]],
            cwd=workdir,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            process_group=0,
            **user,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, f"the command exited:\n{log.read_text()}"
            try:
                health = requests.get(url + "/healthz", timeout=2)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, f"no answer in 30 s:\n{log.read_text()}"
                time.sleep(0.2)
        assert health.status_code == 200 and health.json() == {"status": "ok"}

        # The image's HEALTHCHECK, run as the container would run it, succeeds in time.
        options, check = image.dockerfile.final.healthcheck()
        timeout = float(options["timeout"].rstrip("s"))
        checked = subprocess.run(
            [shutil.which(check[0], path=env["PATH"]), *check[1:]],
            env=env,
            capture_output=True,
            timeout=timeout,
            **user,
        )
        assert checked.returncode == 0, checked.stderr

        auth = requests.post(
            url + "/auth", json={"username": "alice", "password": "secret"}, timeout=10
        )
        assert auth.status_code == 200, auth.text
        token = auth.json()["access_token"]
        # Signed with the mounted key: the token's kid names it.
        keyring = load_keyring(
            {
                "SIGNING_KEY": "",
                "SIGNING_KEY_FILE": str(key_files / "signing-key.pem"),
                "PREVIOUS_KEYS": "",
                "PREVIOUS_KEYS_FILE": "",
                "STATE_DIR": "/nonexistent",
                "HMAC_SECRET": "",
            },
            "ES256",
        )
        assert jwt.get_unverified_header(token)["kid"] == keyring.current.kid

        answer = requests.post(
            url + "/sum",
            data=b"[1,2,3,4]",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"sha256": hashlib.sha256(b"10").hexdigest(), "sum": "10"}
        # The builder stage's kernel and C HTTP parser made it into the runtime's virtualenv.
        assert "Summing with the compiled kernel" in log.read_text()
        assert "Parsing HTTP with gunicorn_h1c" in log.read_text()

        # A configured key: nothing was generated in the state folder.
        assert not any(state_dir.iterdir())

        # docker stop: SIGTERM, and gunicorn shuts down cleanly within the grace period.
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=35) == 0, log.read_text()
        down = subprocess.run(
            [shutil.which(check[0], path=env["PATH"]), *check[1:]],
            env=env,
            capture_output=True,
            timeout=timeout,
            **user,
        )
        assert down.returncode != 0, "the health check passed with the service stopped"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_the_health_check_asks_over_https_where_gunicorn_serves_tls(tmp_path: Path, monkeypatch):
    certificate, key = make_tls_files(tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificate))
    _, check = Dockerfile.parse().final.healthcheck()
    assert check[0] == "python"
    with LiveServer(workers=1, tls=(certificate, key)) as server:
        env = {
            **os.environ,
            "PORT": f" {server.port}",  # gunicorn.conf.py takes it trimmed; so must the check
            "GUNICORN_CMD_ARGS": server.env["GUNICORN_CMD_ARGS"],
        }
        checked = subprocess.run(
            [sys.executable, *check[1:]], env=env, capture_output=True, text=True, timeout=10
        )
        assert checked.returncode == 0, checked.stderr


def test_make_keys_makes_a_key_once_and_keeps_it(tmp_path: Path):
    folder = tmp_path / "secrets"
    assert run(str(DEPLOY / "make-keys.sh"), str(folder)).returncode == 0
    key = (folder / "signing-key.pem").read_bytes()
    assert key.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert (folder / "previous-keys.pem").read_bytes() == b""
    # Readable by the container's group through the mount, by no other user; the folder is the
    # owner's alone.
    key_file = (folder / "signing-key.pem").stat()
    assert stat.S_IMODE(key_file.st_mode) == 0o440
    assert key_file.st_gid == (10001 if os.geteuid() == 0 else os.getegid())
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert run(str(DEPLOY / "make-keys.sh"), str(folder)).returncode == 0
    assert (folder / "signing-key.pem").read_bytes() == key
