"""GET /metrics in-process (one process: the default registry): format, labels, the switch."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from django.test import Client
from django.test.utils import override_settings
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.parser import text_string_to_metric_families

from api.metrics import fold_dead_workers
from api.tests.utils import issue_token, post_sum, use_unreachable_redis


def samples(client: Client) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def requests_counted(metrics: dict, endpoint: str, method: str, status: str) -> float:
    labels = (("endpoint", endpoint), ("method", method), ("status", status))
    return metrics.get(("sumservice_http_requests_total", labels), 0)


def test_requests_are_counted_by_endpoint_method_and_status(client: Client) -> None:
    before = samples(client)
    token = issue_token(client)
    for _ in range(3):
        assert post_sum(client, "[1, 2]", token).status_code == 200
    assert post_sum(client, "[1, 2]", None).status_code == 401
    assert client.get("/no/such/path").status_code == 404
    assert client.generic("BREW", "/sum").status_code == 405
    assert client.get("/static/api/bearer-token.js").status_code == 200
    assert client.get("/static/no/such/file.js").status_code == 404
    after = samples(client)

    def delta(*labels: str) -> float:
        return requests_counted(after, *labels) - requests_counted(before, *labels)

    assert delta("sum", "POST", "200") == 3
    assert delta("sum", "POST", "401") == 1
    assert delta("auth", "POST", "200") == 1
    # Label values come from a fixed set, whatever the client sends.
    assert delta("none", "GET", "404") == 2  # /static/no/such/file.js too
    assert delta("sum", "other", "405") == 1
    assert delta("static", "GET", "200") == 1  # WhiteNoise's, before any URL is resolved
    duration = ("sumservice_http_request_duration_seconds_count", (("endpoint", "sum"),))
    assert after[duration] - before.get(duration, 0) == 5
    tokens = ("sumservice_tokens_issued_total", ())
    assert after[tokens] - before.get(tokens, 0) == 1
    sizes = ("sumservice_sum_request_body_bytes_sum", ())
    assert after[sizes] - before.get(sizes, 0) == 3 * len("[1, 2]")


def test_rate_limit_refusals_are_counted(client: Client, settings: Any) -> None:
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"auth": "1/minute", "sum": None},
    }
    key = ("sumservice_rate_limited_requests_total", (("scope", "auth"),))
    before = samples(client).get(key, 0)
    issue_token(client)
    for _ in range(2):
        response = client.post(
            "/auth", {"username": "a", "password": "b"}, content_type="application/json"
        )
        assert response.status_code == 429
    assert samples(client)[key] - before == 2


def test_rate_limit_cache_failures_are_counted(client: Client, settings: Any) -> None:
    key = ("sumservice_rate_limit_cache_errors_total", ())
    before = samples(client).get(key, 0)
    use_unreachable_redis(settings)
    issue_token(client)
    assert samples(client)[key] - before == 1


def test_metrics_can_be_turned_off(settings: Any) -> None:
    with override_settings(SUMSERVICE={**settings.SUMSERVICE, "METRICS": False}):
        response = Client().get("/metrics")
    assert response.status_code == 404
    assert "SUMSERVICE_METRICS" in response.json()["detail"]


def test_turned_off_nothing_is_counted(client: Client, settings: Any) -> None:
    """Nor written to the workers' files: tokens issued, rate-limit refusals, body sizes."""
    before = samples(client)
    with override_settings(
        SUMSERVICE={**settings.SUMSERVICE, "METRICS": False},
        REST_FRAMEWORK={
            **settings.REST_FRAMEWORK,
            "DEFAULT_THROTTLE_RATES": {"auth": "1/minute", "sum": None},
        },
    ):
        token = issue_token(client)
        assert post_sum(client, "[1, 2]", token).status_code == 200
        credentials = {"username": "alice", "password": "secret"}
        assert client.post("/auth", credentials, content_type="application/json").status_code == 429
    after = samples(client)
    for name in (
        "sumservice_tokens_issued_total",
        "sumservice_sum_request_body_bytes_count",
        "sumservice_rate_limited_requests_total",
    ):
        counted = {key: value for key, value in after.items() if key[0] == name}
        assert counted == {key: before[key] for key in counted if key in before}, name


def test_metrics_answer_get_only(client: Client) -> None:
    response = client.post("/metrics")
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"


def counter_file(folder: Path, name: str, value: float) -> None:
    """A file as a worker writes it in multiprocess mode, holding one counter's total."""
    values = MmapedDict(str(folder / name))
    values.write_value(mmap_key("c", "c_total", ["l"], ["x"], "help"), value, 0.0)
    values.close()


def archived(folder: Path) -> dict[str, float]:
    return {
        key: value
        for key, value, _, _ in MmapedDict.read_all_values_from_file(
            str(folder / "counter_archive.db")
        )
    }


def test_dead_workers_counts_are_added_to_the_archive_and_their_files_removed(
    tmp_path: Path,
) -> None:
    counter_file(tmp_path, "counter_101.db", 3)
    counter_file(tmp_path, "counter_102.db", 4)
    counter_file(tmp_path, "counter_200.db", 5)  # a living worker's

    assert fold_dead_workers(str(tmp_path), living={200})
    assert list(archived(tmp_path).values()) == [7.0]
    counter_file(tmp_path, "counter_103.db", 1)
    assert fold_dead_workers(str(tmp_path), living={200})
    assert list(archived(tmp_path).values()) == [8.0]
    assert sorted(path.name for path in tmp_path.glob("*.db")) == [
        "counter_200.db",
        "counter_archive.db",
    ]


def test_no_fold_while_a_scrape_reads_the_folder(tmp_path: Path) -> None:
    """The master must not wait on a worker: it folds nothing now, and the rest next time."""
    counter_file(tmp_path, "counter_101.db", 3)
    with open(tmp_path / "folding.lock", "a") as scrape:
        fcntl.flock(scrape, fcntl.LOCK_SH)
        assert not fold_dead_workers(str(tmp_path), living=set())
        assert (tmp_path / "counter_101.db").exists()
    assert fold_dead_workers(str(tmp_path), living=set())
    assert list(archived(tmp_path).values()) == [3.0]


def test_a_metrics_folder_set_to_nothing_is_none(tmp_path: Path) -> None:
    """Without gunicorn (`./start.sh dev`), PROMETHEUS_MULTIPROC_DIR= (as `${VAR:-}` leaves it)
    counts in the process, as unset: not in files written to the working folder (and a 500)."""
    program = (
        "import django; django.setup()\n"
        "from django.test import Client\n"
        "print(Client().get('/metrics', HTTP_HOST='localhost').status_code)\n"
    )
    root = Path(__file__).resolve().parents[2]
    environment = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": "",
        "DJANGO_SETTINGS_MODULE": "sumservice.settings",
        "PYTHONPATH": str(root),
    }
    run = subprocess.run(
        [sys.executable, "-c", program],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.stdout.split() == ["200"], run.stderr[-2000:]
    assert list(tmp_path.iterdir()) == []


def test_a_metrics_folder_removed_fails_no_request(tmp_path: Path) -> None:
    """The folder removed under a worker before its first count (a /tmp cleaner): requests are
    answered, the counts lost and said so once, and a scrape makes the folder again."""
    folder = tmp_path / "metrics"
    folder.mkdir()
    # As gunicorn runs it: loaded in the master, counted in a forked worker (whose files are
    # its own, opened at its first count).
    program = (
        "import os, shutil, sys; import django; django.setup()\n"
        "from django.test import Client\n"
        "import sumservice.urls\n"
        "shutil.rmtree(sys.argv[1])\n"
        "worker = os.fork()\n"
        "if worker:\n"
        "    sys.exit(os.waitstatus_to_exitcode(os.waitpid(worker, 0)[1]))\n"
        "client = Client(HTTP_HOST='localhost')\n"
        "def auth(): return client.post('/auth', {'username': 'a', 'password': 'b'},"
        " content_type='application/json')\n"
        "token = auth().json()['access_token']\n"
        "print(auth().status_code, client.get('/healthz').status_code)\n"
        "print(client.get('/metrics').status_code)\n"
        "print(client.post('/sum', '[1, 2]', content_type='application/json',"
        " HTTP_AUTHORIZATION='Bearer ' + token).status_code, auth().status_code)\n"
    )
    environment = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(folder),
        "DJANGO_SETTINGS_MODULE": "sumservice.settings",
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
    run = subprocess.run(
        [sys.executable, "-c", program, str(folder)],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.stdout.split() == ["200"] * 5, run.stderr[-2000:]
    assert run.stderr.count("Metrics are not counted") == 1
    assert "No such file or directory" in run.stderr
    assert folder.is_dir()
