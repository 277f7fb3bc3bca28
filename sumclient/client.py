"""The :class:`SumClient` session: authenticate once, then sum documents."""

from __future__ import annotations

import json
import re
import threading
from types import TracebackType
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
import urllib3
from requests.utils import default_user_agent, requote_uri

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
#: The largest answer read: the service's are under a kilobyte, and a larger one (a proxy's page,
#: a server that is not the service) is not kept in memory past this.
MAX_ANSWER_BYTES = 1024 * 1024

_USER_AGENT = f"sumclient/{__version__} {default_user_agent()}"
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
# RFC 6750's b64token: what an Authorization: Bearer header may carry (a JWT among them).
_BEARER_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
# A URL's user and password, up to the last "@" of its authority (which ends at "\\" too, as
# urllib3 reads it); read without parsing it, so that a URL that cannot be parsed, or has no
# scheme, is shown without them too.
_USERINFO = re.compile(r"\s*(?:[A-Za-z][A-Za-z0-9+.\-]*://)?([^/?#\\]*@)")


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
    ...     token = client.authenticate("alice", "secret")
    ...     client.sum([1, 2, 3, 4])
    '4a44dc15364204a80fe80e9039455cc1608281820fe2b24f1e5233ade6af1dd5'

    :param base_url: the service's address, e.g. ``http://127.0.0.1:8000``; it may end in ``/``
        and carry a path prefix such as ``https://example.org/sum-service``.
    :param token: an access token obtained earlier, to use without calling :meth:`authenticate`.
    :param timeout: seconds to wait for the connection and for each read, or a
        ``(connect, read)`` pair, as in ``requests``; None waits without a limit.
    :param session: a ``requests.Session`` to send through (for proxies, certificates, adapters).
        The client closes the session it creates, never one it is given.
    :raises ValueError: for a base URL that is not an http or https URL with a host (or has a
        query or fragment), or a timeout that is not a positive number, None or a pair of them.
    :raises TypeError: for a base URL or a token that is not a str.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout: float | tuple[float | None, float | None] | None = DEFAULT_TIMEOUT,
        session: requests.Session | None = None,
    ) -> None:
        base_url = _checked_base_url(base_url)
        if token is not None and not isinstance(token, str):
            raise TypeError(f"token must be a str or None, not {type(token).__name__}")
        # urllib3 checks the values only once a request is made: a mistake shows here instead.
        pair = timeout if isinstance(timeout, tuple) else (timeout, timeout)
        if len(pair) != 2:
            raise ValueError(f"timeout must be seconds or a (connect, read) pair, not {timeout!r}")
        try:
            urllib3.Timeout(connect=pair[0], read=pair[1])
            # urllib3 lets NaN and huge values through, which the socket then refuses.
            usable = all(
                part is None
                or (isinstance(part, (int, float)) and 0 < part <= threading.TIMEOUT_MAX)
                for part in pair
            )
        except OverflowError:  # an int too large for a float
            usable = False
        if not usable:
            raise ValueError(
                f"timeout must be seconds up to {threading.TIMEOUT_MAX:.0f}, not {timeout!r}"
            )
        self.base_url = base_url
        #: The access token sent with each sum; set by :meth:`authenticate`.
        self.token = token
        self.timeout = timeout
        self.session = requests.Session() if session is None else session
        self._owns_session = session is None
        # Kept so that a token which expires between two sums can be renewed without the caller.
        self._credentials: tuple[str, str] | None = None
        # One renewal at a time: threads sharing the client whose token expired wait for it.
        self._renewing = threading.Lock()

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

    def __getstate__(self) -> dict[str, Any]:
        # A lock cannot be pickled (nor deep-copied): a copy gets a lock of its own.
        state = self.__dict__.copy()
        del state["_renewing"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._renewing = threading.Lock()

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
        token = self.token
        if token is None:
            raise AuthenticationError("not authenticated: call authenticate() before sum()")
        if not isinstance(token, str) or not _BEARER_TOKEN.fullmatch(token):
            # Not echoed: the message may reach a log.
            raise AuthenticationError(
                "the access token cannot be sent: a bearer token is letters, digits and"
                " -._~+/ only, with = at its end (a newline or a space read with it?)"
            )
        try:
            response = self._post("sum", body, token=token)
        except AuthenticationError:
            if self._credentials is None:
                raise
            # The token has most likely expired: get a new one, unless another thread did while
            # this one waited, and try once more.
            with self._renewing:
                if self.token == token:
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
        except requests.exceptions.RetryError as exc:
            # A session retrying on statuses (urllib3's Retry, status_forcelist) gave up; urllib3
            # names the status only in its message.
            reason = str(_innermost(exc))
            named = re.search(r"too many (\d{3}) error responses", reason)
            status = int(named.group(1)) if named else None
            raise (TransportError if status is None else _error_class(status))(
                f"the server answered every try with an error ({shown}): {_shown(url, reason)}",
                status_code=status,
                request=exc.request,
            ) from exc
        except requests.ConnectionError as exc:
            raise TransportError(
                f"cannot reach {shown}: {_shown(url, str(_innermost(exc)))}", request=exc.request
            ) from exc
        except (requests.RequestException, urllib3.exceptions.LocationParseError) as exc:
            raise TransportError(
                f"cannot send the request to {shown}: {_shown(url, str(exc))}",
                request=getattr(exc, "request", None),
            ) from exc
        except ValueError as exc:
            # requests reads a redirect's Location even when it does not follow it: one that is
            # no URL (an unclosed IPv6 bracket) fails there, with the answer lost.
            raise TransportError(
                f"the answer from {shown} cannot be read (its Location?): {exc}"
            ) from exc
        try:
            _read_answer(response)
        except requests.exceptions.ContentDecodingError as exc:
            # An error status says more than the encoding (a proxy's 502 page marked gzip).
            status = response.status_code
            error_class = _error_class(status) if status >= 400 else UnexpectedResponseError
            raise error_class(
                f"the answer from {shown} ({status}) is not in its Content-Encoding"
                f" ({response.headers.get('Content-Encoding')}): {_innermost(exc)}",
                response=response,
            ) from exc
        except requests.RequestException as exc:
            response.close()
            raise TransportError(
                f"the answer from {shown} broke off ({response.status_code}):"
                f" {_shown(url, str(_innermost(exc)))}",
                status_code=response.status_code,
                request=response.request,
            ) from exc
        if len(response.content) > MAX_ANSWER_BYTES:
            raise UnexpectedResponseError(
                f"the answer from {shown} ({response.status_code}) is larger than"
                f" {MAX_ANSWER_BYTES:,} bytes: not the service's (its first bytes are kept)",
                response=response,
            )
        if 200 <= response.status_code < 300:
            return response
        raise _error_for(response)


def _read_answer(response: requests.Response) -> None:
    """Read a streamed answer, decoded, up to one byte past MAX_ANSWER_BYTES, into
    ``response.content``, and close it: a larger one is cut there rather than held whole."""
    content = bytearray()
    try:
        with response:
            for chunk in response.iter_content(64 * 1024):
                content += chunk
                if len(content) > MAX_ANSWER_BYTES:
                    break
    finally:
        # Where requests keeps what it has read (Response.content reads into it); set on a
        # failure too, so that the content of an answer that could not be decoded reads empty.
        response._content = bytes(content[: MAX_ANSWER_BYTES + 1])


def _error_class(status: int) -> type[SumClientError]:
    """The exception for an error status: 401, another 4xx, a 5xx."""
    if status == 401:
        return AuthenticationError
    if 400 <= status < 500:
        return BadRequestError
    if status >= 500:
        return ServerError
    return UnexpectedResponseError


_SUMMARIES: dict[type[SumClientError], str] = {
    AuthenticationError: "authentication failed",
    BadRequestError: "the server refused the request",
    ServerError: "the server failed",
}


def _error_for(response: requests.Response) -> SumClientError:
    """The exception for a response that is not a success."""
    status = response.status_code
    what = f"{status} {response.reason} from {_shown(response.url)}"
    error_class = _error_class(status)
    if error_class not in _SUMMARIES:  # a redirect, or another status that is not an error
        return UnexpectedResponseError(
            f"unexpected answer ({what}){_redirect_advice(response)}", response=response
        )
    summary = f"{_SUMMARIES[error_class]} ({what})"
    detail = _server_message(response)
    message = summary if detail is None else f"{summary}: {detail}"
    return error_class(message, detail=detail, response=response)


def _redirect_advice(response: requests.Response) -> str:
    """Where a redirect points, and the base URL that would reach the endpoint there."""
    location = response.headers.get("Location")
    if not location:
        return ""
    # Parsed already: requests reads a Location it does not follow (_post).
    target = urljoin(response.url, location)
    endpoint = "/" + urlsplit(response.url).path.rstrip("/").rsplit("/", 1)[-1]
    parts = urlsplit(target)
    if parts.path.endswith(endpoint) and not parts.query:
        base = target[: target.rindex(endpoint)]
        return f", redirecting to {_shown(target)}: the service may be at base_url {_shown(base)}"
    return f", redirecting to {_shown(target)}"


def _server_message(response: requests.Response) -> str | None:
    """The message in an error's JSON body: DRF's ``detail``, or each field's messages."""
    try:
        answer = json.loads(response.content)
    except (ValueError, RecursionError):  # e.g. an HTML page from a proxy: the status says enough
        return None
    try:
        return _message_in(answer)
    except RecursionError:  # messages nested deeper than _text can go: none the client can show
        return None


def _message_in(answer: Any) -> str | None:
    if isinstance(answer, dict):
        if isinstance(answer.get("detail"), str):
            return answer["detail"]
        fields = "; ".join(f"{field}: {_text(messages)}" for field, messages in answer.items())
        return fields or None
    if isinstance(answer, (str, list)):
        return _text(answer) or None
    return None  # null, a number or a boolean: no message


def _text(messages: Any) -> str:
    if isinstance(messages, list):
        return " ".join(_text(message) for message in messages)
    if isinstance(messages, str):
        return messages
    return json.dumps(messages)


def _json_answer(response: requests.Response) -> Any:
    try:
        return json.loads(response.content)
    except (ValueError, RecursionError) as exc:
        content_type = response.headers.get("Content-Type", "no Content-Type")
        raise UnexpectedResponseError(
            f"the answer from {_shown(response.url)} is not JSON ({content_type}): {exc}",
            response=response,
        ) from exc


def _checked_base_url(base_url: str) -> str:
    """The base URL without surrounding whitespace; a ValueError for one that cannot reach a
    service (no http or https scheme, no host, a port that is not one, a query or fragment)."""
    if not isinstance(base_url, str):
        raise TypeError(f"base_url must be a str, not {type(base_url).__name__}")
    base_url = base_url.strip()
    try:
        parts = urlsplit(base_url)
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number up to 65535)
    except ValueError as exc:
        raise ValueError(f"base_url cannot be parsed ({exc}): {_shown(base_url)!r}") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError(
            "base_url must be an http:// or https:// URL with a host, such as"
            f" http://127.0.0.1:8000, not {_shown(base_url)!r}"
        )
    if parts.query or parts.fragment or base_url.endswith(("?", "#")):
        raise ValueError(f"base_url must not carry a query or a fragment: {_shown(base_url)!r}")
    return base_url


def _shown(url: str, text: str | None = None) -> str:
    """``text`` (by default ``url`` itself; else a message that may quote it) without the user
    and password that ``url`` carries."""
    text = url if text is None else text
    userinfo = _USERINFO.match(url)
    if userinfo is None:
        return text
    # requests quotes the URL in some of its messages.
    for written in {userinfo.group(1), requote_uri(userinfo.group(1))}:
        text = text.replace(written, "")
    return text


def _innermost(exc: BaseException) -> BaseException:
    """The first cause of a chain of exceptions, e.g. ``[Errno 111] Connection refused``.

    requests wraps it in two layers of urllib3 exceptions whose text says little more.
    """
    cause = exc.__cause__ or exc.__context__
    while cause is not None:
        exc, cause = cause, cause.__cause__ or cause.__context__
    return exc
