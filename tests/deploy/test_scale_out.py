"""Scale-out, on loopback: two instances of the service behind a real nginx, as
deploy/compose.yaml lays it out.

Two independent gunicorn masters share one configured signing key (and the environment the
Compose file gives its replicas); nginx runs deploy/nginx.conf, with the two instances as its
upstream. A token from /auth through nginx works on each instance; then one instance is killed
with SIGKILL in the middle of a stream of /sum requests, and every request must still get its
right answer: nginx passes what the dead instance cannot answer to the live one.
"""

from __future__ import annotations

import contextlib
import grp
import hashlib
import http.client
import json
import os
import pwd
import random
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import yaml

from tests.deploy.deployfiles import DEPLOY, compose_environment, make_tls_files, render_nginx_conf
from tests.forge import unverified_part
from tests.liveserver import LiveServer, free_port, stop_together
from tests.redisserver import RedisServer
from tests.utils import get_token, post_sum, request_log

REQUESTS = 400  # in the stream
THREADS = 4  # clients sending at once, so requests are in flight when the instance dies
KILL_AFTER = REQUESTS // 3  # answers before the kill
STREAM_SECONDS = 120  # the stream stops by then, whatever happens
MIB = 1024 * 1024


def nginx_binary() -> str:
    found = shutil.which("nginx", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
    assert found, "nginx is missing: ./test.sh installs it (apt-get install nginx)"
    return found


@dataclass
class Nginx:
    url: str  # HTTPS, with the certificate deploy/make-keys.sh made
    http_url: str
    prefix: Path
    process: subprocess.Popen

    def error_log(self) -> str:
        return (self.prefix / "error.log").read_text(errors="replace")


def start_nginx(
    prefix: Path,
    upstream_ports: list[int],
    read_timeout: str | None = None,
    balancer: str | None = None,
) -> Nginx:
    port, https_port = free_port(), free_port()
    user = None
    if os.geteuid() == 0:
        # Workers would drop to `nobody`, who cannot use the test's private temporary folder.
        user = f"{pwd.getpwuid(os.geteuid()).pw_name} {grp.getgrgid(os.getegid()).gr_name}"
    certificate, key = make_tls_files(prefix / "secrets")
    conf = render_nginx_conf(
        (DEPLOY / "nginx.conf").read_text(),
        port,
        upstream_ports,
        prefix,
        user,
        https_port,
        certificate,
        key,
        read_timeout,
        balancer,
    )
    (prefix / "nginx.conf").write_text(conf)
    command = [nginx_binary(), "-p", str(prefix), "-c", str(prefix / "nginx.conf")]
    command += ["-e", str(prefix / "error.log"), "-g", "daemon off;"]
    checked = subprocess.run([*command, "-t"], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stderr
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    nginx = Nginx(f"https://127.0.0.1:{https_port}", f"http://127.0.0.1:{port}", prefix, process)
    deadline = time.monotonic() + 15
    while True:
        assert process.poll() is None, f"nginx exited:\n{nginx.error_log()}"
        try:
            if requests.get(nginx.http_url + "/nginx-healthz", timeout=1).status_code == 200:
                return nginx
        except requests.ConnectionError:
            pass
        assert time.monotonic() < deadline, f"nginx did not answer:\n{nginx.error_log()}"
        time.sleep(0.1)


@dataclass
class Cluster:
    nginx: Nginx
    instances: list[LiveServer]


@contextlib.contextmanager
def running_cluster(
    folder: Path, signing_key_pem: str, balancer: str | None = None
) -> Iterator[Cluster]:
    """Two instances, each its own gunicorn master, behind nginx (HTTPS), counting their rate
    limits in one redis-server, as deploy/compose.yaml lays them out; `balancer`, a network
    nginx takes X-Forwarded-For from (its load-balancer block turned on)."""
    ports = [free_port()]
    while len(ports) < 2:
        port = free_port()
        if port not in ports:
            ports.append(port)
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    env = compose_environment(compose, "sumservice")
    # The key itself rather than the Compose secrets' paths; the rest as Compose sets it.
    del env["SUMSERVICE_JWT_PRIVATE_KEY_FILE"], env["SUMSERVICE_JWT_PREVIOUS_KEYS_FILE"]
    env["SUMSERVICE_JWT_PRIVATE_KEY"] = signing_key_pem
    prefix = folder / "nginx"
    prefix.mkdir()
    nginx = start_nginx(prefix, ports, balancer=balancer)
    # The public address, the same on both: tokens name it as their issuer.
    env["SUMSERVICE_ISSUER"] = nginx.url
    with contextlib.ExitStack() as stack:
        stack.callback(stop_nginx, nginx)
        # Clients trust the self-signed certificate (requests reads this for every request).
        patch = stack.enter_context(pytest.MonkeyPatch.context())
        patch.setenv("REQUESTS_CA_BUNDLE", str(prefix / "secrets" / "tls-cert.pem"))
        redis = stack.enter_context(RedisServer())
        assert env["SUMSERVICE_CACHE_URL"] == "redis://redis:6379/0"
        env["SUMSERVICE_CACHE_URL"] = redis.url
        workers = int(env["WEB_CONCURRENCY"])
        instances = [
            stack.enter_context(LiveServer(env=env, port=port, workers=workers)) for port in ports
        ]
        # Unwound first: nginx stops before the instances, so no connection it keeps alive to
        # them holds their graceful stop open; then both instances stop at once.
        stack.callback(stop_together, instances)
        stack.callback(stop_nginx, nginx)
        yield Cluster(nginx, instances)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, signing_key_pem: str) -> Iterator[Cluster]:
    """One cluster for the module's tests that leave it serving as they found it."""
    with running_cluster(tmp_path_factory.mktemp("cluster"), signing_key_pem) as running:
        yield running


@pytest.fixture
def cluster_to_kill(tmp_path: Path, signing_key_pem: str) -> Iterator[Cluster]:
    """A cluster of the test's own: it kills the instances."""
    with running_cluster(tmp_path, signing_key_pem) as running:
        yield running


def stop_nginx(nginx: Nginx) -> None:
    if nginx.process.poll() is None:
        nginx.process.terminate()
        nginx.process.wait(timeout=15)


def sums_served(instance: LiveServer) -> int:
    """The /sum requests this instance answered, from its request log."""
    return sum(
        line["method"] == "POST" and line["path"] == "/sum" and line["status"] == 200
        for line in request_log(instance)
    )


def test_a_token_from_the_balancer_works_on_every_instance(cluster: Cluster):
    token = get_token(cluster.nginx)
    for instance in cluster.instances:
        answer = post_sum(instance, b"[1,2,3,4]", token, timeout=15)
        assert answer.status_code == 200, answer.text
        assert answer.json()["sha256"] == hashlib.sha256(b"10").hexdigest()
    # And a token from one instance, directly, works through the balancer on either.
    direct = get_token(cluster.instances[1])
    for _ in range(4):
        assert post_sum(cluster.nginx, b"[1]", direct, timeout=15).status_code == 200


def test_every_request_is_answered_when_an_instance_is_killed(cluster_to_kill: Cluster, capsys):
    nginx, (survivor, victim) = cluster_to_kill.nginx, cluster_to_kill.instances
    token = get_token(nginx)
    rng = random.Random(5)
    documents = []
    for index in range(REQUESTS):
        numbers = [rng.randint(-(10**12), 10**12) for _ in range(2000)]
        body = json.dumps({"request": index, "numbers": numbers, "note": "42"}).encode()
        total = str(index + sum(numbers))
        documents.append(
            (body, {"sha256": hashlib.sha256(total.encode()).hexdigest(), "sum": total})
        )

    lock = threading.Lock()
    counts = {"sent": 0, "answered": 0, "failed": 0}
    failures: list[str] = []
    next_index = iter(range(REQUESTS))
    kill_now = threading.Event()
    deadline = time.monotonic() + STREAM_SECONDS

    def client() -> None:
        with requests.Session() as session:
            while time.monotonic() < deadline:
                with lock:
                    index = next(next_index, None)
                    if index is None:
                        return
                    counts["sent"] += 1
                body, expected = documents[index]
                try:
                    answer = post_sum(nginx, body, token, session, timeout=15)
                    right = answer.status_code == 200 and answer.json() == expected
                    problem = f"#{index}: {answer.status_code} {answer.text[:200]}"
                except (requests.RequestException, ValueError) as error:
                    right, problem = False, f"#{index}: {error!r}"
                with lock:
                    if right:
                        counts["answered"] += 1
                        if counts["answered"] == KILL_AFTER:
                            kill_now.set()
                    else:
                        counts["failed"] += 1
                        failures.append(problem)

    clients = [threading.Thread(target=client) for _ in range(THREADS)]
    for thread in clients:
        thread.start()
    try:
        assert kill_now.wait(timeout=STREAM_SECONDS), f"no {KILL_AFTER} answers: {failures[:5]}"
        # Both instances had been taking part before one dies.
        served_before = {"survivor": sums_served(survivor), "victim": sums_served(victim)}
        victim.kill()
        with lock:
            sent_at_kill = counts["sent"]
    finally:
        for thread in clients:
            thread.join(timeout=STREAM_SECONDS + 30)
    with capsys.disabled():
        print(
            f"\nscale-out: sent {counts['sent']}, answered {counts['answered']}, "
            f"failed {counts['failed']}; instance killed after {KILL_AFTER} answers, "
            f"with {sent_at_kill} sent; served before the kill: {served_before}"
        )
    assert counts["failed"] == 0, failures[:10]
    assert counts["sent"] == counts["answered"] == REQUESTS
    assert served_before["survivor"] > 0 and served_before["victim"] > 0
    assert sent_at_kill < REQUESTS, "the stream was over before the kill"
    # The killed instance is gone (nothing listens), nginx saw it fail, the other one served on.
    with pytest.raises(requests.ConnectionError):
        requests.get(victim.url + "/healthz", timeout=2)
    assert f"127.0.0.1:{victim.port}" in nginx.error_log()
    assert sums_served(survivor) > served_before["survivor"]
    # The balancer spread the load before the kill: neither took almost all of it.
    assert min(served_before.values()) >= KILL_AFTER // 10

    # With no instance left, nginx answers in JSON that it is unavailable, not with HTML.
    survivor.kill()
    answer = post_sum(nginx, b"[1]", token, timeout=15)
    assert answer.status_code == 503
    assert answer.headers["Content-Type"] == "application/json"
    assert "try again" in answer.json()["detail"]
    assert answer.headers["Retry-After"] == "5"
    assert answer.headers["Strict-Transport-Security"] == "max-age=31536000"


def test_the_body_size_limit_is_the_services_through_the_balancer(cluster: Cluster):
    """The service's limit is 10 MiB: exactly 10 MiB passes nginx and is summed, one byte more
    gets the service's own 413, and far more gets nginx's 413, in JSON too."""
    nginx = cluster.nginx
    token = get_token(nginx)
    count = 1_000_000
    document = ("[" + "1," * (count - 1) + "1]").encode()
    exactly = document + b" " * (10 * MIB - len(document))
    assert len(exactly) == 10 * MIB
    answer = post_sum(nginx, exactly, token, timeout=15)
    assert answer.status_code == 200, answer.text[:300]
    assert answer.json()["sum"] == str(count)

    over = post_sum(nginx, exactly + b" ", token, timeout=15)
    assert over.status_code == 413
    # The service's own answer, as an instance gives it directly, not nginx's.
    directly = post_sum(cluster.instances[0], exactly + b" ", token, timeout=15)
    assert over.json() == directly.json()

    far_over = post_sum(nginx, exactly + b" " * (2 * MIB), token, timeout=15)
    assert far_over.status_code == 413
    assert far_over.headers["Content-Type"] == "application/json"
    assert "size limit" in far_over.json()["detail"]


def test_one_address_cannot_take_every_connection_of_the_balancer(cluster: Cluster):
    """deploy/nginx.conf holds at most 64 connections per client address: the next one gets a
    JSON 429, and once some close, the address is served again."""
    nginx = cluster.nginx
    host, port = nginx.url.removeprefix("https://").split(":")
    tls = ssl.create_default_context()
    tls.check_hostname, tls.verify_mode = False, ssl.CERT_NONE  # a test's own certificate
    held = []
    try:
        for _ in range(64):
            plain = socket.create_connection((host, int(port)), timeout=10)
            sock = tls.wrap_socket(plain, server_hostname=host)
            sock.sendall(b"POST /sum HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n[1")
            held.append(sock)
        time.sleep(0.5)  # nginx has read every head
        refused = requests.get(nginx.url + "/healthz", timeout=10)
        assert refused.status_code == 429
        assert refused.headers["Content-Type"] == "application/json"
        assert refused.headers["Retry-After"] == "1"
        assert refused.headers["Strict-Transport-Security"] == "max-age=31536000"
        assert "Too many connections" in refused.json()["detail"]
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.5)
    assert requests.get(nginx.url + "/healthz", timeout=10).status_code == 200


# TLS, headers and retries through the balancer


def test_http_only_redirects_and_https_sends_hsts(cluster: Cluster):
    nginx = cluster.nginx
    for method in ("GET", "POST"):
        plain = requests.request(
            method, nginx.http_url + "/auth?next=1", allow_redirects=False, timeout=10
        )
        assert plain.status_code == 301
        assert plain.headers["Location"] == "https://127.0.0.1/auth?next=1"
        assert "access_token" not in plain.text
    secure = requests.get(nginx.url + "/healthz", timeout=10)
    assert secure.status_code == 200
    assert secure.headers["Strict-Transport-Security"] == "max-age=31536000"
    # Tokens name the https address as their issuer, as the discovery document does.
    token = get_token(nginx)
    assert unverified_part(token, 1)["iss"] == nginx.url
    discovery = requests.get(nginx.url + "/.well-known/openid-configuration", timeout=10).json()
    assert discovery["issuer"] == nginx.url
    assert discovery["jwks_uri"].startswith("https://")


def test_tls_1_2_is_offered_with_aead_ciphers_only(cluster: Cluster):
    host, port = cluster.nginx.url.removeprefix("https://").split(":")

    def handshake(ciphers: str) -> str:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        tls.check_hostname, tls.verify_mode = False, ssl.CERT_NONE  # a test's own certificate
        tls.maximum_version = ssl.TLSVersion.TLSv1_2
        tls.set_ciphers(ciphers)
        plain = socket.create_connection((host, int(port)), timeout=10)
        with tls.wrap_socket(plain, server_hostname=host) as sock:
            return sock.cipher()[0]

    assert handshake("ECDHE+AESGCM").endswith(("-AES128-GCM-SHA256", "-AES256-GCM-SHA384"))
    for weak in (
        "ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA",
        "ECDHE+AES+SHA256:ECDHE+AES+SHA384",
    ):
        with pytest.raises(ssl.SSLError):
            handshake(weak)


def test_the_client_address_and_request_id_pass_through(cluster: Cluster):
    nginx = cluster.nginx
    access_log = nginx.prefix / "access.log"
    logged_before = access_log.stat().st_size if access_log.exists() else 0
    forged = {"X-Forwarded-For": "203.0.113.5", "X-Request-ID": "trace-0042"}
    answered = requests.get(nginx.url + "/healthz", headers=forged, timeout=10)
    assert answered.headers["X-Request-ID"] == "trace-0042"
    made = requests.get(nginx.url + "/healthz", timeout=10).headers["X-Request-ID"]
    assert len(made) == 32 and int(made, 16) >= 0  # nginx's $request_id
    # An id the service would not keep is replaced by nginx, so both logs name it alike.
    odd = requests.get(nginx.url + "/healthz", headers={"X-Request-ID": "a b"}, timeout=10)
    replaced = odd.headers["X-Request-ID"]
    assert replaced != "a b" and len(replaced) == 32 and int(replaced, 16) >= 0
    lines = [
        json.loads(line)
        for instance in cluster.instances
        for line in instance.log().splitlines()
        if line.startswith("{") and '"request_id"' in line
    ]
    by_id = {line["request_id"]: line for line in lines}

    def by_id_now() -> set[str]:
        return {
            json.loads(line)["request_id"]
            for instance in cluster.instances
            for line in instance.log().splitlines()
            if line.startswith("{") and '"request_id"' in line
        }

    # nginx replaced what the client wrote in X-Forwarded-For with its real address.
    assert by_id["trace-0042"]["client"] == "127.0.0.1"
    assert by_id[made]["path"] == "/healthz"
    # nginx's own access log names the same requests by the same ids, in JSON, without the
    # query string.
    requests.get(nginx.url + "/healthz?access_token=secret-in-url", headers=forged, timeout=10)

    # (The lines of this test's requests, by their ids: the cluster serves the module's other
    # tests too, and what they left running may still be asking.)
    def lines_of_mine() -> list[dict]:
        written = access_log.read_bytes()[logged_before:].decode()
        logged = [json.loads(line) for line in written.splitlines() if line.startswith("{")]
        ids = {"trace-0042", made, replaced}
        return [line for line in logged if line["request_id"] in ids]

    # nginx writes a request's line after its response has gone: the last can lag the answer.
    deadline = time.monotonic() + 5
    while len(mine := lines_of_mine()) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert {line["request_id"] for line in mine} == {"trace-0042", made, replaced}
    assert len(mine) == 4
    assert replaced in by_id_now()
    assert {line["path"] for line in mine} == {"/healthz"}
    assert "secret-in-url" not in access_log.read_text()


def test_behind_a_load_balancer_the_client_is_the_one_it_names(
    tmp_path: Path, signing_key_pem: str
):
    """With deploy/nginx.conf's load-balancer block on for 127.0.0.2 (the balancer), the client
    the balancer writes into X-Forwarded-For is the client, in nginx's log and the service's
    (whose client address keys the /auth budget). Others cannot name one."""
    with running_cluster(tmp_path, signing_key_pem, balancer="127.0.0.2/32") as cluster:
        nginx = cluster.nginx
        host, port = nginx.url.removeprefix("https://").split(":")
        tls = ssl.create_default_context(cafile=os.environ["REQUESTS_CA_BUNDLE"])
        tls.check_hostname = False  # the test's certificate names localhost

        def auth(source: str, forwarded_for: str, request_id: str) -> int:
            connection = http.client.HTTPSConnection(
                host, int(port), source_address=(source, 0), context=tls, timeout=10
            )
            try:
                body = json.dumps({"username": "alice", "password": "secret"})
                headers = {
                    "Content-Type": "application/json",
                    "X-Forwarded-For": forwarded_for,
                    "X-Request-ID": request_id,
                }
                connection.request("POST", "/auth", body, headers)
                return connection.getresponse().status
            finally:
                connection.close()

        assert auth("127.0.0.2", "198.51.100.77", "via-balancer") == 200
        assert auth("127.0.0.2", "192.0.2.1, 198.51.100.78", "through-two") == 200
        assert auth("127.0.0.1", "198.51.100.79", "forged") == 200

        # The service's log names the client its /auth budget is keyed by (api.client_address).
        logged = {
            line["request_id"]: line["client"]
            for instance in cluster.instances
            for line in request_log(instance)
        }
        # The right-most address the balancer wrote: what a client wrote before it is its own.
        expected = {"via-balancer": "198.51.100.77", "through-two": "198.51.100.78"}
        assert {name: logged[name] for name in (*expected, "forged")} == {
            **expected,
            "forged": "127.0.0.1",
        }

        # nginx writes a request's line once its answer has gone: the last may lag.
        def nginx_clients() -> dict[str, str]:
            lines = (nginx.prefix / "access.log").read_text().splitlines()
            logged = [json.loads(line) for line in lines if line.startswith("{")]
            return {line["request_id"]: line["client"] for line in logged}

        deadline = time.monotonic() + 5
        while "forged" not in nginx_clients() and time.monotonic() < deadline:
            time.sleep(0.05)
        clients = nginx_clients()
        assert {name: clients[name] for name in (*expected, "forged")} == {
            **expected,
            "forged": "127.0.0.1",
        }


def test_metrics_are_not_served_to_the_outside(cluster: Cluster):
    assert requests.get(cluster.instances[0].url + "/metrics", timeout=10).status_code == 200
    outside = requests.get(cluster.nginx.url + "/metrics", timeout=10)
    assert outside.status_code == 404
    assert outside.json() == {"detail": "Not found: /metrics."}


def test_a_token_in_the_url_is_refused_and_never_logged(cluster: Cluster):
    """A body over client_body_buffer_size makes nginx's error log quote its request line:
    one whose URL carries an access_token is refused before that."""
    nginx = cluster.nginx
    token = get_token(nginx)
    large = b"[" + b"1," * MIB + b"1]"  # 2 MiB: buffered to a file, with a warning
    # $arg_access_token alone names the first such parameter, and `if` takes "" or 0 for none.
    for query in (
        "access_token={}",
        "access_token=&access_token={}",
        "access_token=0&access_token={}",
        "x=1&ACCESS_TOKEN={}",
    ):
        in_url = requests.post(
            f"{nginx.url}/sum?{query.format(token)}",
            data=large,
            headers={"Content-Type": "application/json"},
            timeout=15,
        )
        assert in_url.status_code == 400, query
        assert in_url.headers["Content-Type"] == "application/json"
        assert in_url.headers["Strict-Transport-Security"] == "max-age=31536000"
        assert in_url.json() == {
            "detail": "Send the access token in an Authorization: Bearer header, not in the URL."
        }
    # The same request with the token in its header is summed, and warned about.
    in_header = requests.post(
        f"{nginx.url}/sum?note=large",
        data=large,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        timeout=15,
    )
    assert in_header.status_code == 200
    assert in_header.json()["sum"] == str(MIB + 1)
    assert "POST /sum?note=large" in nginx.error_log()
    assert token not in nginx.error_log()
    assert token not in (nginx.prefix / "access.log").read_text()


def test_a_request_without_a_host_is_served_through_the_balancer(cluster: Cluster):
    """HTTP/1.0 allows no Host (health checkers send none); nginx asks the service, over
    HTTP/1.1, which requires one, for localhost."""
    host, port = cluster.nginx.url.removeprefix("https://").split(":")
    tls = ssl.create_default_context()
    tls.check_hostname, tls.verify_mode = False, ssl.CERT_NONE  # a test's own certificate
    with tls.wrap_socket(socket.create_connection((host, int(port)), timeout=10)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), answer
    assert json.loads(body) == {"status": "ok"}


class Upstream:
    """A fake replica on a loopback port that reads each request and then either never
    answers (`hang`) or closes the connection (a replica dying before it answers)."""

    def __init__(self, hang: bool) -> None:
        self.hang = hang
        self.requests = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.held: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            connection.recv(65536)
            self.requests += 1
            if self.hang:
                self.held.append(connection)
            else:
                connection.close()

    def close(self) -> None:
        self.listener.close()
        for connection in self.held:
            connection.close()


@pytest.mark.parametrize(("hang", "tried", "status"), [(True, 1, 504), (False, 2, 503)])
def test_a_timed_out_request_is_not_sent_to_another_replica(
    tmp_path: Path, hang: bool, tried: int, status: int
):
    """A replica that takes too long is busy with the request itself (a slow, poisonous body):
    nginx answers 504 rather than send it on to tie up the next replica. One that fails before
    answering (the control: it closes the connection) is tried on the next, as when a replica
    dies (test_every_request_is_answered_when_an_instance_is_killed)."""
    upstreams = [Upstream(hang), Upstream(hang)]
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    nginx = start_nginx(prefix, [u.port for u in upstreams], read_timeout="1s")
    try:
        certificate = prefix / "secrets" / "tls-cert.pem"
        answer = requests.post(nginx.url + "/sum", data=b"[1]", timeout=30, verify=str(certificate))
        assert answer.status_code == status
        assert answer.json()["detail"]
        assert sum(u.requests for u in upstreams) == tried
    finally:
        stop_nginx(nginx)
        for upstream in upstreams:
            upstream.close()
