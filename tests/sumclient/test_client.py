"""SumClient against a scripted transport: requests sent, answers read, errors raised."""

from __future__ import annotations

import copy
import gzip
import json
import math
import pickle
import threading
from decimal import Decimal
from fractions import Fraction
from http import HTTPStatus

import pytest
import requests

from sumclient import (
    MAX_ANSWER_BYTES,
    AuthenticationError,
    BadRequestError,
    InvalidDocumentError,
    ServerError,
    SumClient,
    SumClientError,
    TransportError,
    UnexpectedResponseError,
)

from .fakeservice import BASE_URL, HASH_OF_10, FakeService

HASH_OF_6 = "e7f6c011776e8db7cd330b54174fd76f7d0216b612387a5ffcfb81e6f0919683"  # SHA-256 of "6"


def test_authenticate_posts_the_credentials_and_returns_the_token(
    sum_client: SumClient, service: FakeService
) -> None:
    service.reply_token("token-1")

    assert sum_client.authenticate("alice", "secret") == "token-1"

    (request,) = service.sent
    assert request.method == "POST"
    assert request.url == f"{BASE_URL}/auth"
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.body) == {"username": "alice", "password": "secret"}
    assert sum_client.token == "token-1"


def test_sum_sends_the_document_with_the_token_and_returns_the_hash(
    signed_in: SumClient, service: FakeService
) -> None:
    # Not the hash of this document's sum: the client returns what the server answers.
    service.reply_hash(HASH_OF_6)

    assert signed_in.sum([1, 2, 3, 4]) == HASH_OF_6

    (request,) = service.sent
    assert request.url == f"{BASE_URL}/sum"
    assert request.headers["Authorization"] == "Bearer token-1"
    assert request.headers["Content-Type"] == "application/json"
    assert request.body == b"[1,2,3,4]"


def test_the_token_is_reused_across_sums(signed_in: SumClient, service: FakeService) -> None:
    service.reply_hash()
    service.reply_hash()

    signed_in.sum([1])
    signed_in.sum([2])

    assert service.paths() == ["/sum", "/sum"]
    assert [r.headers["Authorization"] for r in service.sent] == ["Bearer token-1"] * 2


def test_a_token_given_on_init_is_used_without_authenticating(
    session: requests.Session, service: FakeService
) -> None:
    service.reply_hash(HASH_OF_6)

    assert SumClient(BASE_URL, token="kept", session=session).sum([10]) == HASH_OF_6
    assert service.sent[0].headers["Authorization"] == "Bearer kept"


def test_sum_before_authenticate_raises_without_sending(
    sum_client: SumClient, service: FakeService
) -> None:
    with pytest.raises(AuthenticationError, match=r"call authenticate\(\) before sum\(\)"):
        sum_client.sum([1])
    assert service.sent == []


def test_an_expired_token_is_renewed_once_with_the_kept_credentials(
    signed_in: SumClient, service: FakeService
) -> None:
    service.reply(401, {"detail": "Given token not valid for any token type"})
    service.reply_token("token-2")
    # Not the hash of this document's sum: the client returns what the server answers.
    service.reply_hash(HASH_OF_6)

    assert signed_in.sum([1, 2, 3, 4]) == HASH_OF_6

    assert service.paths() == ["/sum", "/auth", "/sum"]
    assert json.loads(service.sent[1].body) == {"username": "alice", "password": "secret"}
    assert service.sent[2].headers["Authorization"] == "Bearer token-2"
    assert service.sent[2].body == b"[1,2,3,4]"
    assert signed_in.token == "token-2"


class ExpiringTokenService(requests.adapters.BaseAdapter):
    """Issues token-1, token-2, ... and refuses token-1 once every sum that carries it has been
    sent, so that each of the threads sending them finds its token expired."""

    def __init__(self, senders: int) -> None:
        super().__init__()
        self.all_sent_with_token_1 = threading.Barrier(senders, timeout=10)
        self.fake = FakeService()
        self.lock = threading.Lock()
        self.token_requests = 0

    def send(self, request: requests.PreparedRequest, **kwargs) -> requests.Response:
        if request.path_url == "/auth":
            with self.lock:
                self.token_requests += 1
                self.fake.reply_token(f"token-{self.token_requests}")
                return self.fake.send(request, **kwargs)
        if request.headers["Authorization"] == "Bearer token-1":
            self.all_sent_with_token_1.wait()
            with self.lock:
                self.fake.reply(401, {"detail": "Token is expired", "code": "token_not_valid"})
                return self.fake.send(request, **kwargs)
        with self.lock:
            self.fake.reply_hash()
            return self.fake.send(request, **kwargs)

    def close(self) -> None:
        pass


def test_threads_sharing_a_client_renew_its_expired_token_once() -> None:
    threads = 8
    service = ExpiringTokenService(threads)
    with requests.Session() as session:
        session.mount("http://", service)
        shared = SumClient(BASE_URL, session=session)
        shared.authenticate("alice", "secret")
        answers: list[str] = []

        def sum_one() -> None:
            answers.append(shared.sum([1, 2, 3, 4]))

        workers = [threading.Thread(target=sum_one) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=20)

    assert answers == [HASH_OF_10] * threads
    assert service.token_requests == 2  # the first token, and one renewal
    assert shared.token == "token-2"


def test_a_401_after_renewing_the_token_raises(signed_in: SumClient, service: FakeService) -> None:
    service.reply(401, {"detail": "Given token not valid for any token type"})
    service.reply_token("token-2")
    service.reply(401, {"detail": "Token is blacklisted"})

    with pytest.raises(AuthenticationError) as caught:
        signed_in.sum([1])

    assert caught.value.status_code == 401
    assert caught.value.detail == "Token is blacklisted"
    assert service.paths() == ["/sum", "/auth", "/sum"]


def test_a_401_without_credentials_raises_at_once(
    session: requests.Session, service: FakeService
) -> None:
    service.reply(401, {"detail": "Token is invalid or expired"})
    sum_client = SumClient(BASE_URL, token="expired", session=session)

    with pytest.raises(AuthenticationError) as caught:
        sum_client.sum([1])

    assert caught.value.status_code == 401
    assert caught.value.detail == "Token is invalid or expired"
    assert str(caught.value) == (
        f"authentication failed (401 Unauthorized from {BASE_URL}/sum): Token is invalid or expired"
    )
    assert service.paths() == ["/sum"]


@pytest.mark.parametrize(
    ("status", "detail"),
    [
        (400, "JSON parse error - Expecting value: line 1 column 1 (char 0)"),
        (413, "Request body is over 10485760 bytes."),
        (415, 'Unsupported media type "text/plain" in request.'),
        (422, "A number literal is over 10000 characters."),
    ],
)
def test_a_4xx_raises_bad_request_with_the_status_and_the_servers_message(
    signed_in: SumClient, service: FakeService, status: int, detail: str
) -> None:
    service.reply(status, {"detail": detail})

    with pytest.raises(BadRequestError) as caught:
        signed_in.sum([1])

    assert caught.value.status_code == status
    assert caught.value.detail == detail
    # What was exchanged comes with it, as with requests' and httpx's errors.
    assert caught.value.response.status_code == status
    assert caught.value.response.json() == {"detail": detail}
    assert caught.value.request is service.sent[-1]
    assert (caught.value.request.method, caught.value.request.url) == ("POST", f"{BASE_URL}/sum")
    reason = HTTPStatus(status).phrase
    assert str(caught.value) == (
        f"the server refused the request ({status} {reason} from {BASE_URL}/sum): {detail}"
    )


def test_per_field_messages_are_joined_into_the_detail(
    sum_client: SumClient, service: FakeService
) -> None:
    service.reply(
        400, {"username": ["This field may not be blank."], "password": ["This field is required."]}
    )

    with pytest.raises(BadRequestError) as caught:
        sum_client.authenticate("", "secret")

    assert caught.value.status_code == 400
    assert caught.value.detail == (
        "username: This field may not be blank.; password: This field is required."
    )
    assert sum_client.token is None


@pytest.mark.parametrize("status", [500, 503])
def test_a_5xx_with_a_json_message_raises_server_error(
    signed_in: SumClient, service: FakeService, status: int
) -> None:
    service.reply(status, {"detail": "A server error occurred."})

    with pytest.raises(ServerError) as caught:
        signed_in.sum([1])

    assert caught.value.status_code == status
    assert caught.value.detail == "A server error occurred."
    assert str(caught.value).startswith(f"the server failed ({status} ")


def test_a_5xx_html_page_raises_server_error_with_the_status_in_words(
    signed_in: SumClient, service: FakeService
) -> None:
    service.reply(
        502, raw=b"<html><body>Bad Gateway</body></html>", **{"Content-Type": "text/html"}
    )

    with pytest.raises(ServerError) as caught:
        signed_in.sum([1])

    assert caught.value.status_code == 502
    assert caught.value.detail is None
    assert caught.value.response.text == "<html><body>Bad Gateway</body></html>"
    assert str(caught.value) == f"the server failed (502 Bad Gateway from {BASE_URL}/sum)"


def test_a_200_that_is_not_json_raises_unexpected_response_error(
    signed_in: SumClient, service: FakeService
) -> None:
    service.reply(200, raw=b"<html>Welcome to nginx!</html>", **{"Content-Type": "text/html"})

    with pytest.raises(UnexpectedResponseError) as caught:
        signed_in.sum([1])

    assert str(caught.value).startswith(f"the answer from {BASE_URL}/sum is not JSON (text/html): ")
    assert isinstance(caught.value.__cause__, ValueError)
    # A TransportError still, as it was before the two were told apart.
    assert isinstance(caught.value, TransportError)
    assert caught.value.status_code == 200
    assert caught.value.response.text == "<html>Welcome to nginx!</html>"
    assert caught.value.request is service.sent[-1]


@pytest.mark.parametrize(
    "body", [{"sum": "10"}, {"sha256": 10}, {"sha256": "not-a-hash"}, ["4a44dc15"], "x"]
)
def test_a_200_without_a_hash_raises_unexpected_response_error(
    signed_in: SumClient, service: FakeService, body: object
) -> None:
    service.reply(200, body)

    with pytest.raises(
        UnexpectedResponseError, match=r"answer from http://sum\.test/sum holds no sha256"
    ) as caught:
        signed_in.sum([1])
    assert caught.value.response.json() == body


def test_an_auth_answer_without_a_token_raises_unexpected_response_error(
    sum_client: SumClient, service: FakeService
) -> None:
    service.reply(200, {"token_type": "Bearer"})

    with pytest.raises(UnexpectedResponseError, match=r"holds no access_token") as caught:
        sum_client.authenticate("alice", "secret")
    assert caught.value.response.json() == {"token_type": "Bearer"}
    assert sum_client.token is None


def test_a_redirect_is_not_followed(sum_client: SumClient, service: FakeService) -> None:
    # Following a 307 would post the password to wherever it points.
    service.reply(307, raw=b"", Location="https://elsewhere.test/auth")

    with pytest.raises(UnexpectedResponseError) as caught:
        sum_client.authenticate("alice", "secret")

    assert caught.value.status_code == 307
    assert str(caught.value).endswith(
        "redirecting to https://elsewhere.test/auth:"
        " the service may be at base_url https://elsewhere.test"
    )
    assert caught.value.response.headers["Location"] == "https://elsewhere.test/auth"
    assert service.paths() == ["/auth"]


REDIRECTED = f"unexpected answer (308 Permanent Redirect from {BASE_URL}/sum), redirecting to"


@pytest.mark.parametrize(
    ("location", "raised", "message"),
    [
        (
            "/v2/sum",
            UnexpectedResponseError,
            f"{REDIRECTED} http://sum.test/v2/sum: the service may be at base_url http://sum.test/v2",
        ),
        (
            "https://sum.test/sum",
            UnexpectedResponseError,
            f"{REDIRECTED} https://sum.test/sum: the service may be at base_url https://sum.test",
        ),
        (
            "https://sum.test/login?next=/sum",
            UnexpectedResponseError,
            f"{REDIRECTED} https://sum.test/login?next=/sum",
        ),
        # No URL: requests cannot read it, even to not follow it.
        (
            "http://[::1/sum",
            TransportError,
            f"the answer from {BASE_URL}/sum cannot be read (its Location?): Invalid IPv6 URL",
        ),
    ],
)
def test_a_redirects_message_names_the_base_url_it_points_to(
    signed_in: SumClient,
    service: FakeService,
    location: str,
    raised: type[SumClientError],
    message: str,
) -> None:
    service.reply(308, raw=b"", Location=location)

    with pytest.raises(raised) as caught:
        signed_in.sum([1])

    assert type(caught.value) is raised
    assert str(caught.value) == message


def test_a_requests_exception_becomes_a_transport_error(
    signed_in: SumClient, service: FakeService
) -> None:
    failure = requests.exceptions.InvalidHeader("Invalid leading whitespace in header value")
    service.fail_with(failure)

    with pytest.raises(TransportError, match="Invalid leading whitespace") as caught:
        signed_in.sum([1])

    assert caught.value.__cause__ is failure
    assert not isinstance(caught.value, UnexpectedResponseError)
    assert caught.value.response is None


@pytest.mark.parametrize(
    ("base_url", "message"),
    [
        ("http://exa mple.test", "contains invalid character"),
        ("http://a..b", "Failed to parse: 'a..b'"),
    ],
)
def test_an_unusable_url_raises_transport_error(base_url: str, message: str) -> None:
    with SumClient(base_url) as sum_client, pytest.raises(TransportError, match=message):
        sum_client.authenticate("alice", "secret")


@pytest.mark.parametrize(
    ("base_url", "message"),
    [
        ("localhost:8000", "must be an http:// or https:// URL with a host, such as"),
        ("127.0.0.1:8000", "must be an http:// or https:// URL with a host"),
        ("ftp://sum.test", "must be an http:// or https:// URL with a host"),
        ("http://", "must be an http:// or https:// URL with a host"),
        ("http://:8000", "must be an http:// or https:// URL with a host"),
        ("http://[::1", "base_url cannot be parsed"),
        ("http://127.0.0.1:port", "base_url cannot be parsed"),
        ("http://127.0.0.1:99999", "base_url cannot be parsed"),
        ("http://sum.test/?x=1", "must not carry a query or a fragment"),
        ("http://sum.test?", "must not carry a query or a fragment"),
        ("http://sum.test#top", "must not carry a query or a fragment"),
    ],
)
def test_a_base_url_that_cannot_reach_the_service_is_refused_at_construction(
    base_url: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        SumClient(base_url)

    assert repr(base_url) in str(caught.value)


def test_a_base_url_is_used_without_surrounding_whitespace(
    session: requests.Session, service: FakeService
) -> None:
    service.reply_token("token-1")

    SumClient(f" {BASE_URL}/\n", session=session).authenticate("alice", "secret")

    assert service.sent[0].url == f"{BASE_URL}/auth"


def test_a_copy_of_a_client_renews_its_token_on_its_own(
    session: requests.Session, service: FakeService
) -> None:
    original = SumClient(BASE_URL, session=session)
    service.reply_token("token-1")
    original.authenticate("alice", "secret")
    copied = copy.deepcopy(original)
    copied.session.mount("http://", service)  # the copy's session is a copy too
    service.reply(401, {"detail": "Token is expired"})
    service.reply_token("token-2")
    service.reply_hash()

    assert copied.sum([1, 2, 3, 4]) == HASH_OF_10
    assert (copied.token, original.token) == ("token-2", "token-1")
    assert pickle.loads(pickle.dumps(original)).token == "token-1"


@pytest.mark.parametrize(
    "base_url",
    [
        "bob:hunter2@localhost:8000",  # no scheme
        "httpx://bob:hünter2@localhost",
        "httpx://bob:hunter2 @localhost",
        "ftp://bob:hunter2@localhost",
        "http://bob:hunter2@localhost:99999",
        "http://bob:hunter2@[::1",
        "http://bob:hunter2@:8000",
        "http://bob:hunter2@",
        "http://bob:hunter2@host@localhost:8o00",
        " http://bob:hunter2@localhost:99999",
    ],
)
def test_a_refused_base_urls_password_is_not_shown(base_url: str) -> None:
    with pytest.raises(ValueError, match="^base_url ") as caught:
        SumClient(base_url)

    assert "nter2" not in str(caught.value) and "bob" not in str(caught.value)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"base_url": None}, "base_url must be a str, not NoneType"),
        ({"base_url": b"http://sum.test"}, "base_url must be a str, not bytes"),
        ({"base_url": BASE_URL, "token": b"token-1"}, "token must be a str or None, not bytes"),
        ({"base_url": BASE_URL, "token": 12345}, "token must be a str or None, not int"),
    ],
)
def test_a_base_url_or_token_that_is_not_text_is_refused_at_construction(
    arguments: dict, message: str
) -> None:
    with pytest.raises(TypeError, match=message):
        SumClient(**arguments)


def test_a_token_set_later_that_is_not_text_is_refused_without_being_sent(
    signed_in: SumClient, service: FakeService
) -> None:
    signed_in.token = b"token-1"

    with pytest.raises(AuthenticationError, match="cannot be sent"):
        signed_in.sum([1])
    assert service.sent == []


def test_a_netrc_password_is_never_sent(
    sum_client: SumClient, service: FakeService, tmp_path, monkeypatch
) -> None:
    """requests adds a ~/.netrc entry for the host as Basic auth to a request without `auth`:
    it would replace the token, and give that password to the service."""
    netrc = tmp_path / "netrc"
    netrc.write_text("machine sum.test login me password netrc-secret\n")
    monkeypatch.setenv("NETRC", str(netrc))
    service.reply_token("token-1")
    service.reply_hash()

    sum_client.authenticate("alice", "secret")
    sum_client.sum([1])

    assert "Authorization" not in service.sent[0].headers
    assert service.sent[1].headers["Authorization"] == "Bearer token-1"


def test_a_password_in_the_base_url_is_neither_sent_nor_shown(
    session: requests.Session, service: FakeService
) -> None:
    service.reply(401, {"detail": "Token is invalid"})

    with pytest.raises(AuthenticationError) as caught:
        SumClient("http://bob:hunter2@sum.test", token="t", session=session).sum([1])

    assert service.sent[0].headers["Authorization"] == "Bearer t"
    assert "hunter2" not in str(caught.value)
    assert str(caught.value).startswith(
        "authentication failed (401 Unauthorized from http://sum.test/sum)"
    )


@pytest.mark.parametrize(
    "base_url",
    [
        "http://bob:hunter2@exa mple.test",
        "http://bob:hunter2@a..b",
    ],
)
def test_a_password_in_a_base_url_that_cannot_be_used_is_not_shown(base_url: str) -> None:
    with SumClient(base_url) as sum_client, pytest.raises(TransportError) as caught:
        sum_client.authenticate("alice", "secret")

    assert str(caught.value).startswith("cannot send the request to ")
    assert "hunter2" not in str(caught.value) and "bob" not in str(caught.value)


@pytest.mark.parametrize("token", ["SECRET-TOKEN\n", " SECRET-TOKEN", "SECRET\u2019TOKEN", ""])
def test_a_token_that_cannot_be_sent_is_refused_without_being_sent_or_shown(
    session: requests.Session, service: FakeService, token: str
) -> None:
    with pytest.raises(AuthenticationError) as caught:
        SumClient(BASE_URL, token=token, session=session).sum([1])

    assert "SECRET" not in str(caught.value) and "cannot be sent" in str(caught.value)
    assert caught.value.request is None and service.sent == []


def test_an_access_token_that_could_not_be_sent_back_is_an_unexpected_answer(
    sum_client: SumClient, service: FakeService
) -> None:
    service.reply_token("two words")

    with pytest.raises(UnexpectedResponseError, match="holds no access_token"):
        sum_client.authenticate("alice", "secret")
    assert sum_client.token is None


def test_an_answer_nested_deeper_than_the_recursion_limit_is_read_as_not_json(
    signed_in: SumClient, service: FakeService
) -> None:
    deep = b"[" * 200_000 + b"]" * 200_000
    service.reply(200, raw=deep, **{"Content-Type": "application/json"})
    service.reply(400, raw=deep, **{"Content-Type": "application/json"})

    with pytest.raises(UnexpectedResponseError, match="is not JSON"):
        signed_in.sum([1])
    with pytest.raises(BadRequestError) as caught:
        signed_in.sum([1])
    assert caught.value.status_code == 400 and caught.value.detail is None


def test_error_messages_nested_deeper_than_the_client_reads_them_give_no_detail(
    signed_in: SumClient, service: FakeService
) -> None:
    # Parsed by json.loads, but deeper than the messages are joined.
    nested = b"[" * 900 + b'"deep"' + b"]" * 900
    service.reply(400, raw=nested, **{"Content-Type": "application/json"})
    service.reply(400, raw=b'{"username": ' + nested + b"}", **{"Content-Type": "application/json"})

    for _ in range(2):
        with pytest.raises(BadRequestError) as caught:
            signed_in.sum([1])
        assert (
            str(caught.value)
            == f"the server refused the request (400 Bad Request from {BASE_URL}/sum)"
        )
        assert caught.value.detail is None


@pytest.mark.parametrize(
    "timeout",
    [
        *(-1, 0, "10", (1, 2, 3), (1, "2"), True, Decimal(5), Fraction(5, 2)),
        *(math.nan, math.inf, 1e300, (math.nan, 5), 10**400),
    ],
)
def test_a_timeout_requests_would_refuse_is_refused_at_construction(timeout: object) -> None:
    with pytest.raises(ValueError, match="(?i)timeout"):
        SumClient(BASE_URL, timeout=timeout)


def test_every_error_is_a_sum_client_error() -> None:
    for error_class in (
        AuthenticationError,
        BadRequestError,
        ServerError,
        TransportError,
        UnexpectedResponseError,
        InvalidDocumentError,
    ):
        assert issubclass(error_class, SumClientError)
    assert issubclass(UnexpectedResponseError, TransportError)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("http://sum.test", "http://sum.test/sum"),
        ("http://sum.test/", "http://sum.test/sum"),
        ("http://sum.test/api/v1", "http://sum.test/api/v1/sum"),
        ("http://sum.test/api/v1/", "http://sum.test/api/v1/sum"),
    ],
)
def test_endpoint_urls_are_joined_to_the_base_url(
    session: requests.Session, service: FakeService, given: str, expected: str
) -> None:
    service.reply_hash()

    SumClient(given, token="t", session=session).sum([1])

    assert service.sent[0].url == expected


def test_the_default_timeout_is_sent_with_every_request(
    sum_client: SumClient, service: FakeService
) -> None:
    service.reply_token("token-1")
    service.reply_hash()

    sum_client.authenticate("alice", "secret")
    sum_client.sum([1])

    assert service.timeouts == [10.0, 10.0]


@pytest.mark.parametrize("timeout", [None, (None, None), (5, None)])
def test_no_timeout_is_passed_on_as_requests_takes_it(
    session: requests.Session, service: FakeService, timeout: object
) -> None:
    service.reply_hash()

    SumClient(BASE_URL, token="t", timeout=timeout, session=session).sum([1])

    assert service.timeouts == [timeout]


def test_a_connect_and_read_timeout_pair_is_passed_on(
    session: requests.Session, service: FakeService
) -> None:
    service.reply_hash()

    SumClient(BASE_URL, token="t", timeout=(3.05, 60), session=session).sum([1])

    assert service.timeouts == [(3.05, 60)]


def test_close_closes_the_session_the_client_created() -> None:
    sum_client = SumClient(BASE_URL)
    transport = FakeService()
    sum_client.session.mount("http://", transport)

    sum_client.close()

    assert transport.closed


def test_close_leaves_a_given_session_open(session: requests.Session, service: FakeService) -> None:
    SumClient(BASE_URL, session=session).close()

    assert not service.closed


def test_the_context_manager_closes_its_own_session_even_on_error() -> None:
    transport = FakeService()
    transport.reply(500, {"detail": "A server error occurred."})

    with pytest.raises(ServerError), SumClient(BASE_URL) as sum_client:
        sum_client.session.mount("http://", transport)
        sum_client.authenticate("alice", "secret")

    assert transport.closed


def test_the_context_manager_gives_the_client_and_leaves_a_given_session_open(
    session: requests.Session, service: FakeService
) -> None:
    service.reply_token("token-1")

    with SumClient(BASE_URL, session=session) as sum_client:
        assert sum_client.authenticate("alice", "secret") == "token-1"

    assert not service.closed


@pytest.mark.parametrize("body", [b"null", b"false", b"3", b"{}", b"[]"])
def test_an_error_answer_without_a_message_has_no_detail(
    signed_in: SumClient, service: FakeService, body: bytes
) -> None:
    service.reply(400, raw=body, **{"Content-Type": "application/json"})

    with pytest.raises(BadRequestError) as caught:
        signed_in.sum([1])

    assert caught.value.detail is None
    assert (
        str(caught.value) == f"the server refused the request (400 Bad Request from {BASE_URL}/sum)"
    )


def test_field_messages_that_are_not_text_are_shown_as_json(
    sum_client: SumClient, service: FakeService
) -> None:
    service.reply(400, {"username": [{"code": "blank"}, "Blank."], "password": None})

    with pytest.raises(BadRequestError) as caught:
        sum_client.authenticate("", "secret")

    assert caught.value.detail == 'username: {"code": "blank"} Blank.; password: null'


@pytest.mark.parametrize("status", [200, 400, 502])
def test_an_answer_larger_than_the_limit_is_cut_and_refused(
    signed_in: SumClient, service: FakeService, status: int
) -> None:
    service.reply(status, raw=b"<p>" * MAX_ANSWER_BYTES, **{"Content-Type": "text/html"})

    with pytest.raises(UnexpectedResponseError) as caught:
        signed_in.sum([1])

    assert str(caught.value) == (
        f"the answer from {BASE_URL}/sum ({status}) is larger than 1,048,576 bytes:"
        " not the service's (its first bytes are kept)"
    )
    assert caught.value.status_code == status
    assert caught.value.response.content == (b"<p>" * MAX_ANSWER_BYTES)[: MAX_ANSWER_BYTES + 1]


def test_a_compressed_answer_is_limited_once_decompressed(
    signed_in: SumClient, service: FakeService
) -> None:
    bomb = gzip.compress(b" " * (64 * MAX_ANSWER_BYTES))  # 64 KiB that decompress to 64 MiB
    service.reply(200, raw=bomb, **{"Content-Type": "application/json", "Content-Encoding": "gzip"})

    with pytest.raises(UnexpectedResponseError, match="larger than 1,048,576 bytes") as caught:
        signed_in.sum([1])

    assert len(caught.value.response.content) == MAX_ANSWER_BYTES + 1


def test_an_answer_at_the_limit_is_read_whole(signed_in: SumClient, service: FakeService) -> None:
    padded = b'{"sha256": "' + HASH_OF_6.encode() + b'", "sum": "6"}'
    padded += b" " * (MAX_ANSWER_BYTES - len(padded))
    service.reply(200, raw=padded, **{"Content-Type": "application/json"})

    assert signed_in.sum([1, 2, 3]) == HASH_OF_6


@pytest.mark.parametrize(
    ("status", "raised"),
    [
        (200, UnexpectedResponseError),
        (502, ServerError),  # a proxy's page, marked gzip but not
    ],
)
def test_an_answer_not_in_its_content_encoding_keeps_its_response(
    signed_in: SumClient, service: FakeService, status: int, raised: type[SumClientError]
) -> None:
    service.reply(status, raw=b"<html>not gzip</html>", **{"Content-Encoding": "gzip"})

    with pytest.raises(raised) as caught:
        signed_in.sum([1])

    assert str(caught.value).startswith(
        f"the answer from {BASE_URL}/sum ({status}) is not in its Content-Encoding (gzip): "
    )
    assert caught.value.status_code == status
    assert caught.value.response.headers["Content-Encoding"] == "gzip"
    assert caught.value.request.url == f"{BASE_URL}/sum"
