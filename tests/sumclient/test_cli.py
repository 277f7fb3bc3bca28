"""The command line, with the client's transport scripted."""

from __future__ import annotations

import functools
import getpass
import io
import json
import warnings
from pathlib import Path

import pytest
import requests

from sumclient import SumClient, cli

from .fakeservice import HASH_OF_10, FakeService

DOCUMENT = b'{"a": 6,\n "b": 4, "b": 4}\n'  # sent as is: spacing and the repeated key stay


@pytest.fixture(autouse=True)
def scripted_cli(
    monkeypatch: pytest.MonkeyPatch, session: requests.Session, service: FakeService
) -> FakeService:
    """Make the command line's client send through the scripted transport, from a clean env."""
    monkeypatch.setattr(cli, "SumClient", functools.partial(SumClient, session=session))
    monkeypatch.delenv("SUMCLIENT_URL", raising=False)
    monkeypatch.delenv("SUMCLIENT_PASSWORD", raising=False)
    return service


@pytest.fixture
def document_file(tmp_path: Path) -> Path:
    path = tmp_path / "document.json"
    path.write_bytes(DOCUMENT)
    return path


def no_prompt(prompt: str = "") -> str:
    raise AssertionError("the password was asked for")


def test_sum_prints_the_hash_with_the_password_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    service: FakeService,
    document_file: Path,
) -> None:
    monkeypatch.setenv("SUMCLIENT_PASSWORD", "secret")
    monkeypatch.setattr(getpass, "getpass", no_prompt)
    service.reply_token("token-1")
    service.reply_hash()

    status = cli.main(
        ["--url", "http://sum.test", "--username", "alice", "sum", str(document_file)]
    )

    assert status == 0
    assert capsys.readouterr() == (f"{HASH_OF_10}\n", "")
    auth, summed = service.sent
    assert auth.url == "http://sum.test/auth"
    assert json.loads(auth.body) == {"username": "alice", "password": "secret"}
    assert summed.url == "http://sum.test/sum"
    assert summed.headers["Authorization"] == "Bearer token-1"
    assert summed.body == DOCUMENT


def test_the_password_is_asked_for_when_not_in_the_environment(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    service: FakeService,
    document_file: Path,
) -> None:
    prompts: list[str] = []
    monkeypatch.setattr(getpass, "getpass", lambda prompt: prompts.append(prompt) or "typed")
    service.reply_token("token-1")
    service.reply_hash()

    assert cli.main(["--username", "alice", "sum", str(document_file)]) == 0

    assert prompts == ["Password for alice: "]
    assert json.loads(service.sent[0].body)["password"] == "typed"
    assert capsys.readouterr().out == f"{HASH_OF_10}\n"


def test_dash_reads_the_document_from_standard_input(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], service: FakeService
) -> None:
    monkeypatch.setenv("SUMCLIENT_PASSWORD", "secret")
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(DOCUMENT)))
    service.reply_token("token-1")
    service.reply_hash()

    assert cli.main(["--username", "alice", "sum", "-"]) == 0

    assert service.sent[1].body == DOCUMENT
    assert capsys.readouterr().out == f"{HASH_OF_10}\n"


@pytest.mark.parametrize(
    ("environment", "arguments", "auth_url"),
    [
        ({}, [], "http://127.0.0.1:8000/auth"),
        ({"SUMCLIENT_URL": "http://env.test/api"}, [], "http://env.test/api/auth"),
        (
            {"SUMCLIENT_URL": "http://env.test"},
            ["--url", "http://arg.test"],
            "http://arg.test/auth",
        ),
    ],
)
def test_the_url_comes_from_the_option_the_environment_or_the_default(
    monkeypatch: pytest.MonkeyPatch,
    service: FakeService,
    document_file: Path,
    environment: dict[str, str],
    arguments: list[str],
    auth_url: str,
) -> None:
    for name, value in {"SUMCLIENT_PASSWORD": "secret", **environment}.items():
        monkeypatch.setenv(name, value)
    service.reply_token("token-1")
    service.reply_hash()

    assert cli.main([*arguments, "--username", "alice", "sum", str(document_file)]) == 0

    assert service.sent[0].url == auth_url


def test_a_server_error_prints_one_line_and_exits_1(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    service: FakeService,
    document_file: Path,
) -> None:
    monkeypatch.setenv("SUMCLIENT_PASSWORD", "secret")
    service.reply(400, {"username": ["This field may not be blank."]})

    assert cli.main(["--username", " ", "sum", str(document_file)]) == 1

    assert capsys.readouterr() == (
        "",
        "sumclient: error: the server refused the request (400 Bad Request from "
        "http://127.0.0.1:8000/auth): username: This field may not be blank.\n",
    )


def test_a_missing_file_is_reported_before_asking_for_the_password(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    service: FakeService,
    tmp_path: Path,
) -> None:
    monkeypatch.setattr(getpass, "getpass", no_prompt)
    missing = tmp_path / "missing.json"

    assert cli.main(["--username", "alice", "sum", str(missing)]) == 1

    assert capsys.readouterr() == (
        "",
        f"sumclient: error: [Errno 2] No such file or directory: '{missing}'\n",
    )
    assert service.sent == []


def test_without_a_terminal_it_asks_for_the_environment_variable(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    service: FakeService,
    document_file: Path,
) -> None:
    def getpass_without_terminal(prompt: str = "") -> str:
        # What getpass does when it cannot open a terminal: warn, then read stdin echoing it.
        warnings.warn("Can not control echo on the terminal.", getpass.GetPassWarning, stacklevel=2)
        return "read from stdin"

    monkeypatch.setattr(getpass, "getpass", getpass_without_terminal)

    assert cli.main(["--username", "alice", "sum", str(document_file)]) == 1

    assert capsys.readouterr().err == (
        "sumclient: error: no password: set SUMCLIENT_PASSWORD, "
        "or run on a terminal to be asked for it\n"
    )
    assert service.sent == []


@pytest.mark.parametrize(
    ("pressed", "status", "stderr"),
    [
        (KeyboardInterrupt, 130, "\n"),  # Ctrl-C: no traceback
        (EOFError, 1, "\nsumclient: error: no password given\n"),  # Ctrl-D
    ],
)
def test_ctrl_c_or_ctrl_d_at_the_prompt_sends_nothing(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    service: FakeService,
    document_file: Path,
    pressed: type[BaseException],
    status: int,
    stderr: str,
) -> None:
    def interrupted(prompt: str = "") -> str:
        raise pressed

    monkeypatch.setattr(getpass, "getpass", interrupted)

    assert cli.main(["--username", "alice", "sum", str(document_file)]) == status

    assert capsys.readouterr() == ("", stderr)
    assert service.sent == []


@pytest.mark.parametrize(
    ("arguments", "complaint"),
    [
        (["sum", "doc.json"], "the following arguments are required: --username"),
        (
            ["--username", "alice", "sum", "doc.json", "--password", "secret"],
            "unrecognized arguments: --password secret",
        ),
        (["--username", "alice"], "the following arguments are required: COMMAND"),
        (["--username", "alice", "sum"], "the following arguments are required: FILE"),
    ],
)
def test_usage_errors_exit_2(
    capsys: pytest.CaptureFixture[str], service: FakeService, arguments: list[str], complaint: str
) -> None:
    with pytest.raises(SystemExit) as caught:
        cli.main(arguments)

    assert caught.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].endswith(f"error: {complaint}")
    assert service.sent == []


def test_a_url_the_client_cannot_use_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], service: FakeService, document_file: Path
) -> None:
    with pytest.raises(SystemExit) as caught:
        cli.main(["--url", "localhost:8000", "--username", "alice", "sum", str(document_file)])

    assert caught.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "sumclient: error: --url: base_url must be an http:// or https:// URL with a host, such"
        " as http://127.0.0.1:8000, not 'localhost:8000'"
    )
    assert service.sent == []


@pytest.mark.parametrize(
    ("stream", "said"),
    [
        ("stdin", "standard input is closed: give the document as a FILE instead"),
        ("stdout", "standard output is closed: there is nowhere to print the hash"),
    ],
)
def test_a_closed_standard_stream_is_one_line_and_exit_1(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    service: FakeService,
    document_file: Path,
    stream: str,
    said: str,
) -> None:
    monkeypatch.setenv("SUMCLIENT_PASSWORD", "secret")
    monkeypatch.setattr(f"sys.{stream}", None)  # as Python sets it when started with it closed
    document = "-" if stream == "stdin" else str(document_file)

    assert cli.main(["--username", "alice", "sum", document]) == 1

    assert capsys.readouterr().err == f"sumclient: error: {said}\n"
    assert service.sent == []
