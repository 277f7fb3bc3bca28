"""Reading knobs from the environment (sumservice/environment.py), and gunicorn.conf.py's
knobs read through it."""

from __future__ import annotations

import os
import runpy
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from sumservice.environment import (
    env_bool,
    env_host,
    env_int,
    env_list,
    env_rate,
    env_seconds,
    env_secret,
    env_str,
)
from tests.liveserver import ROOT


@pytest.mark.parametrize("raw", [None, "", "   "])
def test_unset_or_empty_gives_the_default(monkeypatch, raw: str | None) -> None:
    if raw is None:
        monkeypatch.delenv("KNOB", raising=False)
    else:
        monkeypatch.setenv("KNOB", raw)
    assert env_str("KNOB", "dflt") == "dflt"
    assert env_int("KNOB", 7) == 7
    assert env_seconds("KNOB", 2.5) == 2.5
    assert env_bool("KNOB", True) is True
    assert env_list("KNOB", "a, b") == ["a", "b"]


def test_values_are_read_trimmed(monkeypatch) -> None:
    monkeypatch.setenv("KNOB", " 12 ")
    assert (env_str("KNOB", ""), env_int("KNOB", 0), env_seconds("KNOB", 0)) == ("12", 12, 12.0)
    monkeypatch.setenv("KNOB", " Off ")
    assert env_bool("KNOB", True) is False
    monkeypatch.setenv("KNOB", " a ,, b,")
    assert env_list("KNOB", "") == ["a", "b"]


@pytest.mark.parametrize(
    ("read", "raw", "message"),
    [
        (lambda: env_int("KNOB", 1), "ten", "KNOB must be an integer, got 'ten'"),
        (lambda: env_int("KNOB", 1), "1.5", "KNOB must be an integer, got '1.5'"),
        (lambda: env_int("KNOB", 1, minimum=1), "0", "KNOB must be at least 1, got 0"),
        (lambda: env_int("KNOB", 1), "-3", "KNOB must be at least 0, got -3"),
        (lambda: env_int("KNOB", 1, maximum=9), "10", "KNOB must be at most 9, got 10"),
        (lambda: env_seconds("KNOB", 1), "soon", "KNOB must be a number of seconds, got 'soon'"),
        (lambda: env_seconds("KNOB", 1), "-1", "KNOB must be 0 or more seconds, got -1"),
        (lambda: env_seconds("KNOB", 1), "inf", "KNOB must be 0 or more seconds, got inf"),
        (lambda: env_seconds("KNOB", 1), "nan", "KNOB must be 0 or more seconds, got nan"),
        (lambda: env_bool("KNOB", True), "maybe", "KNOB must be true or false, got 'maybe'"),
    ],
)
def test_a_value_the_knob_cannot_take_stops_the_start_naming_it(
    monkeypatch, read, raw: str, message: str
) -> None:
    monkeypatch.setenv("KNOB", raw)
    with pytest.raises(ImproperlyConfigured) as refused:
        read()
    assert str(refused.value) == message


@pytest.mark.parametrize(
    ("raw", "rate"),
    [
        (None, "60/minute"),
        (" 100/Hour ", "100/hour"),
        ("1/s", "1/s"),
        ("OFF", None),
    ],
)
def test_a_rate_is_n_per_period_or_off(monkeypatch, raw: str | None, rate: str | None) -> None:
    if raw is None:
        monkeypatch.delenv("KNOB", raising=False)
    else:
        monkeypatch.setenv("KNOB", raw)
    assert env_rate("KNOB", "60/minute") == rate


@pytest.mark.parametrize("raw", ["lots", "0/minute", "60/fortnight", "60 per minute", "-1/s"])
def test_a_rate_it_cannot_take_stops_the_start_naming_it(monkeypatch, raw: str) -> None:
    monkeypatch.setenv("KNOB", raw)
    with pytest.raises(ImproperlyConfigured) as refused:
        env_rate("KNOB", "60/minute")
    assert str(refused.value) == (
        "KNOB must be N/period (period: second, minute, hour or day), e.g. 60/minute, or off;"
        f" got {raw.lower()!r}"
    )


def test_env_seconds_takes_fractions_and_zero(monkeypatch) -> None:
    monkeypatch.setenv("KNOB", "0.25")
    assert env_seconds("KNOB", 9) == 0.25
    monkeypatch.setenv("KNOB", "0")
    assert env_seconds("KNOB", 9) == 0


GUNICORN_KNOBS = [
    "HOST",
    "PORT",
    "WEB_CONCURRENCY",
    "GUNICORN_HTTP_PARSER",
    "GUNICORN_WORKER_CONNECTIONS",
    "GUNICORN_KEEPALIVE",
    "GUNICORN_HEADER_TIMEOUT",
    "GUNICORN_BODY_TIMEOUT",
    "GUNICORN_SEND_TIMEOUT",
    "GUNICORN_TIMEOUT",
    "GUNICORN_GRACEFUL_TIMEOUT",
    "GUNICORN_MAX_REQUESTS",
    "GUNICORN_LOG_LEVEL",
    "FORWARDED_ALLOW_IPS",
]


def gunicorn_config() -> dict:
    return runpy.run_path(str(ROOT / "gunicorn.conf.py"))


def test_gunicorn_knobs_set_to_nothing_get_their_defaults(monkeypatch) -> None:
    for name in GUNICORN_KNOBS:
        monkeypatch.delenv(name, raising=False)
    defaults = gunicorn_config()
    for name in GUNICORN_KNOBS:
        monkeypatch.setenv(name, "")  # as ${VAR:-} leaves it
    emptied = gunicorn_config()
    keys = ["bind", "workers", "http_parser", "worker_connections", "keepalive", "timeout"]
    keys += ["graceful_timeout", "max_requests", "loglevel", "forwarded_allow_ips"]
    assert {key: emptied[key] for key in keys} == {key: defaults[key] for key in keys}
    assert emptied["bind"] == "127.0.0.1:8000"  # never every interface
    # The defaults docs/configuration.md gives (nginx's upstream keepalive_timeout of 4 s counts
    # on the 5).
    documented = {"worker_connections": 1000, "keepalive": 5, "timeout": 30}
    documented |= {"graceful_timeout": 30, "max_requests": 10000, "loglevel": "info"}
    assert {key: emptied[key] for key in documented} == documented
    worker = emptied["SumWorker"]
    assert (worker.header_timeout, worker.body_timeout, worker.send_timeout) == (10, 60, 60)


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        ("GUNICORN_WORKER_CONNECTIONS", "0", "must be at least 1, got 0"),
        ("WEB_CONCURRENCY", "0", "must be at least 1, got 0"),
        ("PORT", "http", "must be an integer, got 'http'"),
        ("GUNICORN_TIMEOUT", "-1", "must be at least 0, got -1"),
        ("GUNICORN_BODY_TIMEOUT", "1m", "must be a number of seconds, got '1m'"),
        (
            "GUNICORN_LOG_LEVEL",
            "bogus",
            "must be one of debug, info, warning, error, critical, got 'bogus'",
        ),
        ("GUNICORN_HTTP_PARSER", "C", "must be one of auto, fast, python, got 'C'"),
    ],
)
def test_a_gunicorn_knob_it_cannot_take_stops_the_start(
    monkeypatch, name: str, raw: str, message: str
) -> None:
    monkeypatch.setenv(name, raw)
    with pytest.raises(ImproperlyConfigured, match=f"^{name} {message}$"):
        gunicorn_config()


def load_settings(name: str, value: str) -> subprocess.CompletedProcess:
    """Django's settings loaded in a process of their own, with one variable set."""
    return subprocess.run(
        [sys.executable, "-c", "import sumservice.settings"],
        cwd=ROOT,
        env={**os.environ, name: value},
        capture_output=True,
        text=True,
    )


@pytest.mark.parametrize(
    ("url", "said"),
    [("http://:hunter2@cache:6379", "a http:// one"), ("cache:6379", "one without a scheme")],
)
def test_a_cache_url_of_another_scheme_stops_the_start_without_showing_it(
    url: str, said: str
) -> None:
    started = load_settings("SUMSERVICE_CACHE_URL", url)
    assert started.returncode != 0
    assert (
        f"SUMSERVICE_CACHE_URL must be a redis://, rediss:// or unix:// URL, got {said}"
        in started.stderr
    )
    assert url not in started.stderr and "hunter2" not in started.stderr


def test_a_django_log_level_it_cannot_take_stops_the_start_naming_it() -> None:
    started = load_settings("DJANGO_LOG_LEVEL", "verbose")
    assert started.returncode != 0
    expected = (
        "DJANGO_LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, got 'verbose'"
    )
    assert expected in started.stderr


def test_a_log_level_is_taken_in_any_letter_case(monkeypatch) -> None:
    monkeypatch.setenv("GUNICORN_LOG_LEVEL", "WARNING")
    assert gunicorn_config()["loglevel"] == "warning"


@pytest.mark.parametrize("host", ["0.0.0.0", "localhost", "[::]", "[::1]", "api.example"])
def test_a_host_is_a_name_an_ipv4_address_or_an_ipv6_one_in_brackets(monkeypatch, host) -> None:
    monkeypatch.setenv("HOST", host)
    assert env_host("HOST", "127.0.0.1") == host


@pytest.mark.parametrize("host", ["::1", "::", "fe80::1", "[::1", "::1]"])
def test_an_ipv6_host_without_brackets_stops_the_start_naming_it(monkeypatch, host) -> None:
    """Written before `:port` (gunicorn's bind, the issuer's URL), `::1` would read as a port."""
    monkeypatch.setenv("HOST", host)
    with pytest.raises(ImproperlyConfigured, match=r"HOST must write an IPv6 address in brackets"):
        env_host("HOST", "127.0.0.1")


@pytest.mark.parametrize(
    ("name", "value", "said"),
    [
        ("PORT", "70000", "PORT must be at most 65535, got 70000"),
        ("HOST", "::1", "HOST must write an IPv6 address in brackets, as [::1] or [::]; got '::1'"),
        (
            "SUMSERVICE_ACCESS_TOKEN_LIFETIME",
            "99999999999999",
            "SUMSERVICE_ACCESS_TOKEN_LIFETIME must be at most 31622400, got 99999999999999",
        ),
        (
            "SUMSERVICE_JWT_LEEWAY",
            "100000000000",
            "SUMSERVICE_JWT_LEEWAY must be at most 3600, got 100000000000",
        ),
    ],
)
def test_an_address_or_lifetime_out_of_range_stops_the_start_naming_it(name, value, said) -> None:
    started = load_settings(name, value)
    assert started.returncode != 0
    assert said in started.stderr


def test_the_secret_and_key_knobs_set_to_spaces_count_as_unset() -> None:
    blank = {
        name: "   "
        for name in [
            "DJANGO_SECRET_KEY",
            "SUMSERVICE_JWT_PRIVATE_KEY",
            "SUMSERVICE_JWT_PRIVATE_KEY_FILE",
            "SUMSERVICE_JWT_PREVIOUS_KEYS",
            "SUMSERVICE_JWT_PREVIOUS_KEYS_FILE",
            "SUMSERVICE_JWT_SECRET",
        ]
    }
    read = (
        "from sumservice import settings as s; c = s.SUMSERVICE;"
        " print(repr(s.SECRET_KEY.strip() != ''), [c[k] for k in ("
        "'SIGNING_KEY', 'SIGNING_KEY_FILE', 'PREVIOUS_KEYS', 'PREVIOUS_KEYS_FILE', 'HMAC_SECRET')])"
    )
    run = subprocess.run(
        [sys.executable, "-c", read],
        cwd=ROOT,
        env={**os.environ, **blank},
        capture_output=True,
        text=True,
    )
    assert run.stdout.strip() == "True ['', '', '', '', '']", run.stderr


def test_a_secret_is_taken_as_sent_and_spaces_alone_are_unset(monkeypatch) -> None:
    """A secret mounted from a file keeps its trailing newline, as every other holder of it
    reads it: trimmed, an HS256 key (and its kid) would change."""
    monkeypatch.setenv("SECRET", " s3cret\n")
    assert env_secret("SECRET") == " s3cret\n"
    monkeypatch.setenv("SECRET", " \n")
    assert env_secret("SECRET") == ""
    monkeypatch.delenv("SECRET")
    assert env_secret("SECRET") == ""


def test_an_ipv6_host_in_brackets_makes_the_default_issuer_a_url() -> None:
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            "from sumservice import settings; print(settings.SIMPLE_JWT['ISSUER'])",
        ],
        cwd=ROOT,
        env={**os.environ, "HOST": "[::1]", "PORT": "8443"},
        capture_output=True,
        text=True,
    )
    assert run.stdout.strip() == "http://[::1]:8443", run.stderr[-2000:]
