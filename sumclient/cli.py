"""The command line: ``sumclient --url URL --username NAME sum FILE`` prints the document's hash.

The password is read from the environment or asked for on the terminal, never taken from the
arguments, which other users of the machine can see in the process list.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import warnings
from collections.abc import Sequence

from ._version import __version__
from .client import SumClient
from .exceptions import SumClientError

PASSWORD_ENV = "SUMCLIENT_PASSWORD"
URL_ENV = "SUMCLIENT_URL"
DEFAULT_URL = "http://127.0.0.1:8000"


class _NoPasswordError(Exception):
    """No password in the environment, and none could be asked for."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    args = _parser().parse_args(argv)
    try:
        # The document is read first, so that a missing file is reported before the prompt.
        document = _read(args.file)
        password = _password(args.username)
        with SumClient(args.url) as client:
            client.authenticate(args.username, password)
            print(client.sum_json(document))
    except (SumClientError, OSError, _NoPasswordError) as exc:
        print(f"sumclient: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C at the prompt: no traceback
        print(file=sys.stderr)
        return 130
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sumclient",
        description="Sum the numbers in a JSON document with the sum service.",
        epilog=f"The password is read from ${PASSWORD_ENV}, or else asked for on the terminal.",
    )
    parser.add_argument(
        "--url",
        default=os.environ.get(URL_ENV) or DEFAULT_URL,
        help=f"the service's address (default: ${URL_ENV}, or else {DEFAULT_URL})",
    )
    parser.add_argument("--username", required=True, help="the name to authenticate as")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sum_command = commands.add_parser(
        "sum", help="print the SHA-256 of the sum of the numbers in a JSON document"
    )
    sum_command.add_argument("file", metavar="FILE", help="the JSON document; - for standard input")
    return parser


def _read(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    with open(path, "rb") as file:
        return file.read()


def _password(username: str) -> str:
    password = os.environ.get(PASSWORD_ENV)
    if password is not None:
        return password
    # Without a terminal, getpass warns and reads standard input instead, echoing the password;
    # that input may be the document. Make the warning an error, and the message say what to do.
    with warnings.catch_warnings():
        warnings.simplefilter("error", getpass.GetPassWarning)
        try:
            return getpass.getpass(f"Password for {username}: ")
        except (getpass.GetPassWarning, EOFError) as exc:
            raise _NoPasswordError(
                f"no password: set {PASSWORD_ENV}, or run on a terminal to be asked for it"
            ) from exc
