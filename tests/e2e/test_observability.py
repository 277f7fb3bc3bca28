"""Metrics and request logs end to end: a real gunicorn with two workers.

/metrics is parsed with prometheus_client's own parser and must count, over both workers, the
requests sent; each response's X-Request-ID names its JSON line in the log; no token or
password ever reaches the log; the metrics folder gunicorn makes is gone after it stops.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.clients import connect, exchange
from tests.liveserver import LiveServer
from tests.utils import get_token, post_sum

PASSWORD = "tr0ub4dor&3-do-not-log"


def metric_samples(server: LiveServer) -> dict[tuple[str, tuple], float]:
    response = requests.get(server.url + "/metrics", timeout=10)
    assert response.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def request_lines(server: LiveServer) -> list[dict]:
    return [
        json.loads(line)
        for line in server.log().splitlines()
        if line.startswith("{") and '"request_id"' in line
    ]


def test_metrics_count_every_workers_requests_and_logs_name_each(tmp_path: Path) -> None:
    env = {"SUMSERVICE_AUTH_RATE": "6/minute", "TMPDIR": str(tmp_path)}
    with LiveServer(env=env, workers=2) as server:
        auth = requests.post(
            server.url + "/auth", json={"username": "alice", "password": PASSWORD}, timeout=10
        )
        token = auth.json()["access_token"]
        bodies = [b"[1, 2, 3]", b"[" + b"7," * 500 + b"7]", b"{}"] * 8  # 24 documents
        with ThreadPoolExecutor(max_workers=4) as pool:
            answers = list(pool.map(lambda body: post_sum(server, body, token), bodies))
            more_tokens = list(
                pool.map(
                    lambda _: requests.post(
                        server.url + "/auth",
                        json={"username": "bob", "password": PASSWORD},
                        timeout=10,
                    ),
                    range(7),
                )
            )
        assert [a.status_code for a in answers] == [200] * 24
        assert sorted(r.status_code for r in more_tokens) == [200] * 5 + [429] * 2
        refused = post_sum(server, b"[1]", "not-a-token")
        assert refused.status_code == 401

        metrics = metric_samples(server)
        lines = request_lines(server)
        # Both workers answered /sum (their pids in the log), and the metrics add both up.
        assert len({line["pid"] for line in lines if line["path"] == "/sum"}) == 2

        def count(name: str, **labels: str) -> float:
            return metrics.get((name, tuple(sorted(labels.items()))), 0)

        requests_total = "sumservice_http_requests_total"
        assert count(requests_total, endpoint="sum", method="POST", status="200") == 24
        assert count(requests_total, endpoint="sum", method="POST", status="401") == 1
        assert count(requests_total, endpoint="auth", method="POST", status="200") == 6
        assert count(requests_total, endpoint="auth", method="POST", status="429") == 2
        assert count("sumservice_tokens_issued_total") == 6
        assert count("sumservice_rate_limited_requests_total", scope="auth") == 2
        assert count("sumservice_sum_request_body_bytes_count") == 24
        assert count("sumservice_sum_request_body_bytes_sum") == sum(map(len, bodies))
        latency = "sumservice_http_request_duration_seconds_count"
        assert count(latency, endpoint="sum") == 25
        assert count(latency, endpoint="auth") == 8

        # Every response's request id names its line; a sent one is kept.
        sent = requests.get(server.url + "/healthz", headers={"X-Request-ID": "probe-7"}, timeout=5)
        assert sent.headers["X-Request-ID"] == "probe-7"
        by_id = {line["request_id"]: line for line in request_lines(server)}
        for response in [auth, refused, sent, *answers, *more_tokens]:
            line = by_id[response.headers["X-Request-ID"]]
            assert line["status"] == response.status_code
            assert line["bytes"] == len(response.content)
            assert line["client"] == "127.0.0.1"
        assert by_id["probe-7"]["path"] == "/healthz"

        log = server.log()
        assert PASSWORD not in log
        assert token.split(".")[1] not in log and token.split(".")[2] not in log
        made = list(tmp_path.glob("sumservice-*"))
        assert len(made) == 1 and any((made[0] / "metrics").glob("*.db"))
    # gunicorn's exit hook removed the instance's metrics and cache folder.
    assert not list(tmp_path.glob("sumservice-*"))


def test_shared_folders_left_by_a_killed_master_are_removed_at_start(tmp_path: Path) -> None:
    """A master killed without its exit hook (SIGKILL, the OOM killer) leaves its shared
    folder; in a Kubernetes memory-backed /tmp each would stay for the pod's life. One whose
    lock no process holds is removed at the next start; one in use, or not such a folder, is
    not."""
    abandoned, in_use, other = (
        tmp_path / name for name in ("sumservice-a", "sumservice-b", "sumservice-image-c")
    )
    fifo = tmp_path / "sumservice-d"  # another user's trap: opening it would wait forever
    fifo.mkdir()
    os.mkfifo(fifo / "master.lock")
    for folder in (abandoned, in_use, other):
        (folder / "metrics").mkdir(parents=True)
    (abandoned / "master.lock").touch()
    with open(in_use / "master.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a living master holds it
        with LiveServer(env={"TMPDIR": str(tmp_path)}, workers=1) as server:
            assert requests.get(server.url + "/healthz", timeout=10).status_code == 200
            left = {path.name for path in tmp_path.glob("sumservice-*")}
            kept = {"sumservice-b", "sumservice-image-c", "sumservice-d"}
            assert kept < left and "sumservice-a" not in left
            (own,) = left - kept
        assert not (tmp_path / own).exists()  # its own, at exit
        assert in_use.exists() and other.exists()


def test_refusals_before_django_are_counted_and_logged() -> None:
    """gunicorn's own refusals (a malformed head, no Host, headers too large) and the worker's
    (a head that does not arrive in time) are counted by status, with a line each; not a
    connection opened and never used, as browsers open them ahead of need."""
    env = {"GUNICORN_HEADER_TIMEOUT": "1", "GUNICORN_WORKER_CONNECTIONS": "2"}
    with LiveServer(env=env, workers=1) as server:
        before = metric_samples(server)
        assert exchange(server, b"GARBAGE\r\n\r\n")[0] == 400
        assert exchange(server, b"GET /healthz HTTP/1.1\r\n\r\n")[0] == 400
        huge = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n"
        assert exchange(server, huge)[0] == 431
        assert exchange(server, b"GET /healthz HTTP/1.1\r\n")[0] == 408  # and then nothing
        assert exchange(server, b"")[0] == 408  # a connection left unused (a preconnect): not one
        with connect(server), connect(server):  # the worker's two connections, held
            time.sleep(0.2)
            assert exchange(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")[0] == 503
        time.sleep(0.2)
        after = metric_samples(server)
        lines = [line for line in request_lines(server) if line["method"] is None]

    def refused(status: str) -> float:
        key = ("sumservice_http_refusals_total", (("status", status),))
        return after.get(key, 0) - before.get(key, 0)

    assert (refused("400"), refused("431"), refused("408"), refused("503")) == (2, 1, 1, 1)
    assert sorted(line["status"] for line in lines) == [400, 400, 408, 431, 503]
    for line in lines:
        assert line["path"] is None and line["client"] == "127.0.0.1"
        assert line["bytes"] > 0 and len(line["request_id"]) == 32


def test_metrics_can_be_turned_off() -> None:
    with LiveServer(env={"SUMSERVICE_METRICS": "false"}, workers=1) as server:
        assert requests.get(server.url + "/metrics", timeout=5).status_code == 404


def test_a_metrics_folder_of_the_operators_is_made_and_emptied(tmp_path: Path) -> None:
    folder = tmp_path / "metrics" / "here"
    env = {"PROMETHEUS_MULTIPROC_DIR": str(folder)}
    labels = (("endpoint", "jwks"), ("method", "GET"), ("status", "200"))
    with LiveServer(env=env, workers=1) as server:
        assert requests.get(server.url + "/.well-known/jwks.json", timeout=5).status_code == 200
        assert ("sumservice_http_requests_total", labels) in metric_samples(server)
        assert any(folder.glob("*.db"))
    # The files of the run before are not added to the next run's counts.
    with LiveServer(env=env, workers=1) as server:
        assert ("sumservice_http_requests_total", labels) not in metric_samples(server)
    # The operator's folder is theirs: kept.
    assert folder.is_dir()


def test_a_metrics_folder_of_the_operators_in_use_stops_a_second_master(tmp_path: Path) -> None:
    """Another instance, or the new master of an upgrade in place (USR2), on the same folder
    would empty it under the first, and count into it beside it: it does not start."""
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"), "TMPDIR": str(temporary)}
    labels = (("endpoint", "healthz"), ("method", "GET"), ("status", "200"))
    with LiveServer(env=env, workers=1) as first:
        counted = metric_samples(first)[("sumservice_http_requests_total", labels)]
        private = set(temporary.iterdir())  # the first master's (its rate limits' cache)
        refused = LiveServer(env=env, workers=1).refused_start()
        assert f"PROMETHEUS_MULTIPROC_DIR ({tmp_path / 'metrics'}) is in use" in refused
        assert set(temporary.iterdir()) == private  # the refused one's removed
        assert requests.get(first.url + "/healthz", timeout=5).status_code == 200
        assert metric_samples(first)[("sumservice_http_requests_total", labels)] == counted + 1


def test_a_metrics_folder_of_the_operators_is_never_taken_for_an_abandoned_one(
    tmp_path: Path,
) -> None:
    """Named like the private folders, in the temporary folder: the next start, which removes
    the folders killed masters left, keeps it."""
    named = tmp_path / "sumservice-metrics"
    env = {"TMPDIR": str(tmp_path)}
    with LiveServer(env={**env, "PROMETHEUS_MULTIPROC_DIR": str(named)}, workers=1):
        (named / "kept.txt").write_text("the operator's")
    with LiveServer(env=env, workers=1):
        assert (named / "kept.txt").read_text() == "the operator's"


def test_recycled_workers_counts_are_kept_in_a_few_files(tmp_path: Path) -> None:
    """A worker's counters outlive it; gunicorn recycles one every GUNICORN_MAX_REQUESTS, and
    each would leave files that every scrape reads. They are added to one archive per kind."""
    folder = tmp_path / "metrics"
    env = {"PROMETHEUS_MULTIPROC_DIR": str(folder), "GUNICORN_MAX_REQUESTS": "10"}
    labels = (("endpoint", "healthz"), ("method", "GET"), ("status", "200"))
    histogram = ("sumservice_http_request_duration_seconds_count", (("endpoint", "healthz"),))
    with LiveServer(env=env, workers=1) as server:
        samples = metric_samples(server)
        before = samples.get(("sumservice_http_requests_total", labels), 0)
        timed_before = samples.get(histogram, 0)
        for _ in range(60):
            assert requests.get(server.url + "/healthz", timeout=10).status_code == 200
        assert server.log().count("Autorestarting worker") >= 4
        after = metric_samples(server)
        assert after[("sumservice_http_requests_total", labels)] == before + 60
        assert after[histogram] == timed_before + 60
        files = sorted(path.name for path in folder.glob("*.db"))
        assert {"counter_archive.db", "histogram_archive.db"} <= set(files)
        # The archives, the serving worker's two and the master's two (made at its start).
        assert len(files) <= 6, files


def test_shared_folders_removed_under_a_running_service_are_made_again(tmp_path: Path) -> None:
    """A /tmp cleaner or an operator removes the instance's shared folder: every request is
    still answered, a worker that starts afterwards counts again, and /metrics answers."""
    with LiveServer(env={"TMPDIR": str(tmp_path)}, workers=2) as server:
        assert requests.get(server.url + "/healthz", timeout=5).status_code == 200
        (shared,) = tmp_path.glob("sumservice-*")
        shutil.rmtree(shared)
        assert requests.get(server.url + "/metrics", timeout=5).status_code == 200
        for worker in server.worker_pids():
            os.kill(worker, signal.SIGTERM)
            server.wait_for_workers(2, replacing={worker})
        answers = [
            requests.post(server.url + "/auth", json={"username": "a", "password": "b"}, timeout=5)
            for _ in range(4)
        ] + [requests.get(server.url + "/healthz", timeout=5) for _ in range(4)]
        assert [answer.status_code for answer in answers] == [200] * 8
        labels = (("endpoint", "healthz"), ("method", "GET"), ("status", "200"))
        assert metric_samples(server)[("sumservice_http_requests_total", labels)] == 4
        assert "Traceback" not in server.log()


def test_a_shared_folder_removed_before_a_workers_first_count_fails_no_request(
    tmp_path: Path,
) -> None:
    """Workers open their files as they start: removed afterwards, the folder costs counts,
    never a request."""
    with LiveServer(env={"TMPDIR": str(tmp_path)}, workers=1) as server:
        # A worker fresh from its fork (SIGHUP), started, that has counted nothing yet.
        before = server.worker_pids()
        server.process.send_signal(signal.SIGHUP)
        server.wait_for_workers(1, replacing=before)
        time.sleep(1)
        (shared,) = tmp_path.glob("sumservice-*")
        shutil.rmtree(shared)
        access_token = get_token(server)
        answers = [post_sum(server, b"[1, 2]", access_token) for _ in range(3)] + [
            requests.post(server.url + "/auth", json={"username": "a", "password": "b"}, timeout=5)
            for _ in range(3)
        ]
        assert [answer.status_code for answer in answers] == [200] * 6
        assert "Traceback" not in server.log()


def test_the_debug_log_writes_a_path_on_its_line() -> None:
    """gunicorn's debug line per request (GUNICORN_LOG_LEVEL=debug) has the decoded path: a
    %0a in it would start a line of the client's making in the server's log."""
    forged = "[2026-12-08 00:00:00 +0000] [1] [CRITICAL] Signing key deleted"
    with LiveServer(env={"GUNICORN_LOG_LEVEL": "debug"}, workers=1) as server:
        target = "/x%0a" + forged.replace(" ", "%20")
        assert (
            exchange(server, f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())[0] == 404
        )
        time.sleep(0.2)
        log = server.log().splitlines()
    assert not [line for line in log if line.startswith(forged)]
    assert any(line.endswith(f"[DEBUG] GET /x\\n{forged}") for line in log)
