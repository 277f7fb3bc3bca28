"""The exceptions sumclient raises: all of them are :class:`SumClientError`."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import requests


class SumClientError(Exception):
    """Base class of every error raised by sumclient.

    Like the exceptions of ``requests`` and ``httpx``, it carries what was exchanged:
    ``request`` is the ``requests.PreparedRequest`` that was sent, or ``None`` when nothing was
    (a document that cannot be sent, a URL that cannot be used); ``response`` is the server's
    ``requests.Response``, or ``None`` when there was no answer, or it broke off before its end.
    ``status_code`` is the answer's HTTP status (also of one that broke off), else ``None``;
    ``detail`` the server's own message in an error answer, else ``None``.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        detail: str | None = None,
        request: requests.PreparedRequest | None = None,
        response: requests.Response | None = None,
    ) -> None:
        super().__init__(message)
        if status_code is None and response is not None:
            status_code = response.status_code
        if request is None and response is not None:
            request = response.request
        self.status_code = status_code
        self.detail = detail
        self.request = request
        self.response = response


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
    """No usable answer: the server is unreachable or timed out, its answer broke off, or (as
    the subclass :class:`UnexpectedResponseError`) it answered something that is not the
    service's."""


class UnexpectedResponseError(TransportError):
    """The server answered, but not as the service does: a success that is not its JSON (a
    proxy's page, an answer without the token or hash, one that cannot be decoded), or a
    redirect. ``response`` holds it."""
