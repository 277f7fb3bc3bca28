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


class _CommandError(Exception):
    """Something the command needs is missing: a password, standard input or output."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        client = SumClient(args.url)
    except ValueError as exc:
        parser.error(f"--url: {exc}")
    with client:
        try:
            if sys.stdout is None:  # closed by whoever started it: print() would drop the hash
                raise _CommandError("standard output is closed: there is nowhere to print the hash")
            # The document is read first, so that a missing file is reported before the prompt.
            document = _read(args.file)
            password = _password(args.username)
            client.authenticate(args.username, password)
            print(client.sum_json(document))
        except (SumClientError, OSError, _CommandError) as exc:
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
        if sys.stdin is None:
            raise _CommandError("standard input is closed: give the document as a FILE instead")
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
        except getpass.GetPassWarning as exc:
            raise _CommandError(
                f"no password: set {PASSWORD_ENV}, or run on a terminal to be asked for it"
            ) from exc
        except EOFError as exc:  # Ctrl-D at the prompt
            print(file=sys.stderr)
            raise _CommandError("no password given") from exc
