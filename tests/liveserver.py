"""A real gunicorn serving the project on a free loopback port, for end-to-end tests.

    with LiveServer(env={"SUMSERVICE_ACCESS_TOKEN_LIFETIME": "2"}) as server:
        requests.post(server.url + "/auth", json=...)

It runs the same command as start.sh and the image (`gunicorn --config gunicorn.conf.py`), with
its own state folder (so its own signing key) unless one is given.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent


# Below the ephemeral range (Linux: 32768-60999) from which the kernel gives outgoing connections
# their local ports: a port it picked for us there could be a client's before the server binds it.
_SERVER_PORTS = range(20000, 32768)
_pick = random.SystemRandom()  # not the random module's state, which test plugins may reseed


def free_port() -> int:
    for _ in range(100):
        port = _pick.choice(_SERVER_PORTS)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError(f"no free port in {_SERVER_PORTS}")


class LiveServer:
    def __init__(
        self,
        env: dict[str, str] | None = None,
        workers: int | None = 2,
        state_dir: str | Path | None = None,
        port: int | None = None,
        command: list[str] | None = None,
        tls: tuple[Path, Path] | None = None,
    ) -> None:
        """`workers=None` leaves the count to gunicorn.conf.py's default; `command` replaces
        the gunicorn command, e.g. with ["./start.sh"] to serve exactly as a newcomer does;
        `tls`, a certificate and its key, serves HTTPS with them (gunicorn's own settings; the
        client trusts the certificate through REQUESTS_CA_BUNDLE)."""
        self._tempdir = tempfile.TemporaryDirectory(prefix="sumservice-")
        self.state_dir = Path(state_dir or self._tempdir.name)
        self.port = port or free_port()
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.log_path = Path(self._tempdir.name) / "gunicorn.log"
        self.env = {
            **os.environ,
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "WEB_CONCURRENCY": str(workers),
            "SUMSERVICE_STATE_DIR": str(self.state_dir),
            **(env or {}),
        }
        if workers is None:
            del self.env["WEB_CONCURRENCY"]
        if tls:
            self.env["GUNICORN_CMD_ARGS"] = f"--certfile={tls[0]} --keyfile={tls[1]}"
        self.command = command or [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py"]
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 30) -> LiveServer:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.command,
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            # Its own process group (master and workers), so kill() can end them all at once.
            process_group=0,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}:\n{self.log()}")
            try:
                if requests.get(self.url + "/healthz", timeout=1).status_code == 200:
                    # One worker serves; gunicorn forks the others up to 0.1 s apart.
                    if self.env.get("WEB_CONCURRENCY", "").strip():
                        workers = int(self.env["WEB_CONCURRENCY"])
                        try:
                            self.wait_for_workers(workers, max(deadline - time.monotonic(), 1))
                        except RuntimeError:
                            self.stop()
                            raise
                    return self
            except (requests.ConnectionError, requests.Timeout):
                pass  # not listening yet, or a worker still loading on a busy machine
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"gunicorn did not answer within {timeout}s:\n{self.log()}")

    def refused_start(self, timeout: float = 30) -> str:
        """Start where the start must fail: why it failed (gunicorn's exit and its log). One
        that serves is stopped, and an AssertionError raised: no server is left behind."""
        try:
            self.start(timeout)
        except RuntimeError as refused:
            return str(refused)
        self.stop()
        raise AssertionError(f"gunicorn started and served:\n{self.log()}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        stop_together([self], sig)

    def kill(self) -> None:
        """End the master and every worker at once with SIGKILL, as a crashed machine would:
        no graceful shutdown, requests in flight are cut off."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def restart(self) -> None:
        self.stop()
        self.start()

    def reload(self, timeout: float = 30) -> None:
        """SIGHUP, as an operator reloads after a key rotation; returns once every worker that
        served before has been replaced and the new ones answer."""
        assert self.process is not None
        before = self.worker_pids()
        self.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            workers = self.worker_pids()
            if workers and not workers & before:
                requests.get(self.url + "/healthz", timeout=timeout).raise_for_status()
                return
            time.sleep(0.05)
        raise RuntimeError(f"gunicorn did not replace its workers within {timeout}s:\n{self.log()}")

    def manage(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run `manage.py <args>` with this server's environment (so its state folder)."""
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def worker_pids(self) -> set[int]:
        """The master's live children: gunicorn's workers."""
        assert self.process is not None
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return {int(pid) for pid in children.read_text().split()}

    def wait_for_workers(
        self, count: int, timeout: float = 30, replacing: set[int] = frozenset()
    ) -> set[int]:
        """The worker pids, once `count` of them run (gunicorn boots them one after another),
        none of them in `replacing` (workers being recycled)."""
        deadline = time.monotonic() + timeout
        while len(workers := self.worker_pids() - replacing) < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{len(workers)} of {count} workers after {timeout}s")
            time.sleep(0.1)
        return workers

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self, sig: int = signal.SIGTERM) -> None:
        """Stop the server (if it runs) with `sig`, and remove its folder (log, state)."""
        self.stop(sig)
        self._tempdir.cleanup()


def stop_together(servers: list[LiveServer], sig: int = signal.SIGTERM) -> None:
    """Stop several servers at once: each gets the signal, then each is waited for, so their
    graceful stops overlap instead of adding up."""
    running = [s for s in servers if s.process is not None and s.process.poll() is None]
    for server in running:
        server.process.send_signal(sig)
    for server in running:
        try:
            server.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()
