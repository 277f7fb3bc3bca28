"""The exceptions sumclient raises: all of them are :class:`SumClientError`."""

from __future__ import annotations


class SumClientError(Exception):
    """Base class of every error raised by sumclient.

    ``status_code`` is the HTTP status when the error comes from the server's answer, else ``None``;
    ``detail`` is the server's own message in that case, else ``None``.
    """

    def __init__(
        self, message: str, *, status_code: int | None = None, detail: str | None = None
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.detail = detail


class InvalidDocumentError(SumClientError, ValueError):
    """The document cannot be sent as JSON: NaN, an infinity, a non-string key, an unknown type.

    Raised before anything is sent. It is also a :class:`ValueError`, as from :func:`json.dumps`.
    """


class BadRequestError(SumClientError):
    """The server refused the request (a 4xx status other than 401): bad credentials or payload."""


class AuthenticationError(SumClientError):
    """No valid token: the server answered 401, or :meth:`SumClient.sum` came before a token."""


class ServerError(SumClientError):
    """The server failed to handle the request (a 5xx status)."""


class TransportError(SumClientError):
    """No usable answer: the server is unreachable, timed out, or sent a malformed answer."""
