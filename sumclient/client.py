"""The :class:`SumClient` session: authenticate once, then sum documents."""

from __future__ import annotations

import json
import re
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
import urllib3
from requests.utils import default_user_agent

from ._json import encode_document
from ._version import __version__
from .exceptions import (
    AuthenticationError,
    BadRequestError,
    InvalidDocumentError,
    ServerError,
    SumClientError,
    TransportError,
    UnexpectedResponseError,
)

#: Seconds to wait for the connection and then for each read, unless told otherwise.
DEFAULT_TIMEOUT = 10.0

_USER_AGENT = f"sumclient/{__version__} {default_user_agent()}"
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
# RFC 6750's b64token: what an Authorization: Bearer header may carry (a JWT among them).
_BEARER_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


class _BearerAuth(requests.auth.AuthBase):
    """`Authorization: Bearer <token>`, or no credentials for None. Given as each request's
    `auth`, it also keeps requests from sending a password of its own from ~/.netrc or the URL."""

    def __init__(self, token: str | None) -> None:
        self.token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if self.token is not None:
            request.headers["Authorization"] = f"Bearer {self.token}"
        return request


class SumClient:
    """A session with the sum service.

    >>> with SumClient("http://127.0.0.1:8000") as client:
    ...     client.authenticate("alice", "secret")
    ...     client.sum([1, 2, 3, 4])
    '4a44dc15364204a80fe80e9039455cc1608281820fe2b24f1e5233ade6af1dd5'

    :param base_url: the service's address, e.g. ``http://127.0.0.1:8000``; it may end in ``/``
        and carry a path prefix such as ``https://example.org/sum-service``.
    :param token: an access token obtained earlier, to use without calling :meth:`authenticate`.
    :param timeout: seconds to wait for the connection and for each read, or a
        ``(connect, read)`` pair, as in ``requests``.
    :param session: a ``requests.Session`` to send through (for proxies, certificates, adapters).
        The client closes the session it creates, never one it is given.
    :raises ValueError: for a timeout that is not a positive number, None or a pair of them.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        session: requests.Session | None = None,
    ) -> None:
        # urllib3 checks the values only once a request is made: a mistake shows here instead.
        pair = timeout if isinstance(timeout, tuple) else (timeout, timeout)
        if len(pair) != 2:
            raise ValueError(f"timeout must be seconds or a (connect, read) pair, not {timeout!r}")
        urllib3.Timeout(connect=pair[0], read=pair[1])
        self.base_url = base_url
        #: The access token sent with each sum; set by :meth:`authenticate`.
        self.token = token
        self.timeout = timeout
        self.session = requests.Session() if session is None else session
        self._owns_session = session is None
        # Kept so that a token which expires between two sums can be renewed without the caller.
        self._credentials: tuple[str, str] | None = None

    def authenticate(self, username: str, password: str) -> str:
        """Get an access token for these credentials; return it and keep it for later sums.

        The credentials are also kept, in memory, so that :meth:`sum` can get a new token once
        this one expires.

        :raises BadRequestError: the server refused the credentials (e.g. an empty username).
        """
        response = self._post("auth", encode_document({"username": username, "password": password}))
        answer = _json_answer(response)
        token = answer.get("access_token") if isinstance(answer, dict) else None
        if not isinstance(token, str) or not _BEARER_TOKEN.fullmatch(token):
            raise UnexpectedResponseError(
                f"the answer from {_shown(response.url)} holds no access_token",
                response=response,
            )
        self.token = token
        self._credentials = (username, password)
        return token

    def sum(self, document: Any) -> str:
        """Return the hex SHA-256 of the sum of all the numbers in ``document``.

        ``document`` is made of dicts (with str keys), lists, tuples, str, int, float, ``Decimal``,
        bool and None. A ``Decimal`` is sent exactly as written and a float as its shortest repr,
        so ``Decimal("0.1")`` and ``0.1`` both count as one tenth.

        :raises InvalidDocumentError: before sending anything, for NaN, an infinity, a non-str key
            or a value of another type.
        :raises AuthenticationError: there is no token, or it is refused and cannot be renewed.
        """
        return self._sum_body(encode_document(document))

    def sum_json(self, document: str | bytes) -> str:
        """Like :meth:`sum`, for a document that is already JSON text: it is sent exactly as given.

        The text is not parsed here, so a large file costs no client-side work; the server says
        if it is not valid JSON (:class:`BadRequestError`).
        """
        if isinstance(document, str):
            try:
                document = document.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise InvalidDocumentError(f"the text cannot be sent as UTF-8: {exc}") from exc
        elif not isinstance(document, bytes):
            raise InvalidDocumentError(
                f"sum_json() takes JSON text as str or bytes, not {type(document).__name__}"
            )
        return self._sum_body(document)

    def close(self) -> None:
        """Close the ``requests.Session`` the client created (not one it was given)."""
        if self._owns_session:
            self.session.close()

    def __enter__(self) -> SumClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _sum_body(self, body: bytes) -> str:
        if self.token is None:
            raise AuthenticationError("not authenticated: call authenticate() before sum()")
        if not _BEARER_TOKEN.fullmatch(self.token):
            # Not echoed: the message may reach a log.
            raise AuthenticationError(
                "the access token cannot be sent: a bearer token is letters, digits and"
                " -._~+/ only, with = at its end (a newline or a space read with it?)"
            )
        try:
            response = self._post("sum", body, token=self.token)
        except AuthenticationError:
            if self._credentials is None:
                raise
            # The token has most likely expired: get a new one and try once more.
            self.authenticate(*self._credentials)
            response = self._post("sum", body, token=self.token)
        answer = _json_answer(response)
        sha256 = answer.get("sha256") if isinstance(answer, dict) else None
        if not isinstance(sha256, str) or not _SHA256_HEX.fullmatch(sha256):
            raise UnexpectedResponseError(
                f"the answer from {_shown(response.url)} holds no sha256 hash", response=response
            )
        return sha256

    def _post(self, endpoint: str, body: bytes, *, token: str | None = None) -> requests.Response:
        """POST JSON to an endpoint; return a 2xx response, raise our exceptions for the rest."""
        url = f"{self.base_url.rstrip('/')}/{endpoint}"
        shown = _shown(url)
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": _USER_AGENT,
        }
        try:
            # No redirects: a 307 would re-send the password to wherever it points. Streamed, so
            # that a body that breaks off is told from a request that could not be sent.
            response = self.session.post(
                url,
                data=body,
                headers=headers,
                auth=_BearerAuth(token),
                timeout=self.timeout,
                allow_redirects=False,
                stream=True,
            )
        except requests.Timeout as exc:
            raise TransportError(
                f"timed out talking to {shown} (timeout: {self.timeout} s)", request=exc.request
            ) from exc
        except requests.ConnectionError as exc:
            raise TransportError(
                f"cannot reach {shown}: {_innermost(exc)}", request=exc.request
            ) from exc
        except (requests.RequestException, urllib3.exceptions.LocationParseError) as exc:
            raise TransportError(
                f"cannot send the request to {shown}: {exc}", request=getattr(exc, "request", None)
            ) from exc
        try:
            response.content  # noqa: B018 - read in full, within the timeout
        except requests.RequestException as exc:
            response.close()
            raise TransportError(
                f"the answer from {shown} broke off ({response.status_code}): {_innermost(exc)}",
                status_code=response.status_code,
                request=response.request,
            ) from exc
        if 200 <= response.status_code < 300:
            return response
        raise _error_for(response)


def _error_for(response: requests.Response) -> SumClientError:
    """The exception for a response that is not a success."""
    status = response.status_code
    what = f"{status} {response.reason} from {_shown(response.url)}"
    if status == 401:
        error_class: type[SumClientError] = AuthenticationError
        summary = f"authentication failed ({what})"
    elif 400 <= status < 500:
        error_class = BadRequestError
        summary = f"the server refused the request ({what})"
    elif status >= 500:
        error_class = ServerError
        summary = f"the server failed ({what})"
    else:
        location = response.headers.get("Location")
        moved = f", redirecting to {location}: use that address as base_url" if location else ""
        return UnexpectedResponseError(f"unexpected answer ({what}){moved}", response=response)
    detail = _server_message(response)
    message = summary if detail is None else f"{summary}: {detail}"
    return error_class(message, detail=detail, response=response)


def _server_message(response: requests.Response) -> str | None:
    """The message in an error's JSON body: DRF's ``detail``, or each field's messages."""
    try:
        answer = json.loads(response.content)
    except (ValueError, RecursionError):  # e.g. an HTML page from a proxy: the status says enough
        return None
    if isinstance(answer, dict):
        if isinstance(answer.get("detail"), str):
            return answer["detail"]
        fields = "; ".join(f"{field}: {_text(messages)}" for field, messages in answer.items())
        return fields or None
    return _text(answer) or None


def _text(messages: Any) -> str:
    if isinstance(messages, list):
        return " ".join(str(message) for message in messages)
    return str(messages)


def _json_answer(response: requests.Response) -> Any:
    try:
        return json.loads(response.content)
    except (ValueError, RecursionError) as exc:
        content_type = response.headers.get("Content-Type", "no Content-Type")
        raise UnexpectedResponseError(
            f"the answer from {_shown(response.url)} is not JSON ({content_type}): {exc}",
            response=response,
        ) from exc


def _shown(url: str) -> str:
    """The URL for a message: without the user and password it may carry."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def _innermost(exc: BaseException) -> BaseException:
    """The first cause of a chain of exceptions, e.g. ``[Errno 111] Connection refused``.

    requests wraps it in two layers of urllib3 exceptions whose text says little more.
    """
    cause = exc.__cause__ or exc.__context__
    while cause is not None:
        exc, cause = cause, cause.__cause__ or cause.__context__
    return exc
