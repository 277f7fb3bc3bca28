"""A person in a real browser: Debian's chromium, driven by Playwright, on gunicorn.

With nothing but the service's URL they get a token and a sum, from Swagger UI (/docs/) and from
DRF's browsable API (/auth, /sum); no page loads anything from another host. Playwright's own
browser download is never used: ./test.sh installs Debian's chromium, launched here by its path.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, Request, sync_playwright

from tests.liveserver import LiveServer
from tests.utils import get_token

SUM_OF_1_2_3 = {"sha256": hashlib.sha256(b"6").hexdigest(), "sum": "6"}
TIMEOUT_MS = 15_000
# Screenshots of each flow's end, to look at when a test fails (or to see what a person sees).
SCREENSHOTS = Path(os.environ.get("BROWSER_SCREENSHOTS", "/tmp/sumservice-browser-tests"))


def chromium_binary() -> str:
    found = shutil.which("chromium")
    assert found, "chromium is missing: ./test.sh installs it (apt-get install chromium)"
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_binary())
        yield browser
        browser.close()


class Traffic:
    """Every request a page makes, and those the browser refused to send."""

    def __init__(self, page: Page) -> None:
        self.requests: list[str] = []
        self.refused: dict[str, str] = {}
        page.on("request", self.requested)
        page.on("requestfailed", self.failed)

    def requested(self, request: Request) -> None:
        self.requests.append(request.url)

    def failed(self, request: Request) -> None:
        self.refused[request.url] = request.failure or ""

    def assert_only_from(self, origin: str) -> None:
        assert self.requests
        for url in self.requests:
            parts = urlsplit(url)
            if parts.scheme in ("blob", "data") or f"{parts.scheme}://{parts.netloc}" == origin:
                continue
            # Redoc's bundle asks cdn.redoc.ly for its logo, whatever its options: the page's
            # Content-Security-Policy makes the browser refuse it before it is sent.
            assert self.refused.get(url) == "csp", f"{url} was requested from another host"


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    yield page
    context.close()


def shoot(page: Page, name: str, around: str | None = None) -> None:
    """The page as a person sees it (scrolled to `around`), in SCREENSHOTS/name.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    if around:
        page.locator(around).first.scroll_into_view_if_needed()
    page.screenshot(path=SCREENSHOTS / f"{name}.png")


# ---------------------------------------------------------------------------------------------
# Swagger UI


def try_it_out(page: Page, operation: str, body: str) -> dict:
    """Open an operation ("tag-operationId"), "Try it out" with this body, "Execute", and return
    the JSON answer it shows."""
    operation = page.locator(f"#operations-{operation}")
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()
    operation.locator("textarea.body-param__text").fill(body)
    operation.get_by_role("button", name="Execute").click()
    answer = operation.locator(".live-responses-table .response-col_description pre").first
    answer.wait_for()
    return json.loads(answer.inner_text())


def test_swagger_ui_gets_a_token_and_a_sum(page: Page, server: LiveServer) -> None:
    traffic = Traffic(page)
    page.goto(server.url + "/docs/")
    page.locator(".opblock").first.wait_for()

    token = try_it_out(page, "tokens-obtain_token", '{"username": "alice", "password": "secret"}')
    assert token["token_type"] == "Bearer"
    assert token["expires_in"] == 3600

    page.get_by_role("button", name="Authorize").first.click()
    dialog = page.locator(".dialog-ux")
    dialog.get_by_label("auth-bearer-value").fill(token["access_token"])
    dialog.get_by_role("button", name="Apply credentials").click()
    dialog.get_by_role("button", name="Close", exact=True).click()

    assert try_it_out(page, "sum-sum", "[1, 2, 3]") == SUM_OF_1_2_3
    # The request Swagger UI shows is the one it sent: with the token, as a Bearer.
    curl = page.locator("#operations-sum-sum .curl-command").inner_text()
    assert f"Authorization: Bearer {token['access_token']}" in curl
    shoot(page, "swagger-ui", around="#operations-sum-sum .live-responses-table")
    traffic.assert_only_from(server.url)


def test_redoc_shows_every_operation(page: Page, server: LiveServer) -> None:
    traffic = Traffic(page)
    page.goto(server.url + "/redoc/")
    for summary in ["Get an access token", "Sum every number in a JSON document", "Health check"]:
        page.get_by_role("heading", name=summary).wait_for()
    shoot(page, "redoc")
    traffic.assert_only_from(server.url)


# ---------------------------------------------------------------------------------------------
# The browsable API


def post_raw(page: Page, document: str) -> None:
    """Fill the page's "Content" and press its POST button (DRF's raw data form)."""
    form = page.locator("#post-generic-content-form")
    form.locator("textarea").fill(document)
    form.get_by_role("button", name="POST").click()


def shown_answer(page: Page) -> dict:
    text = page.locator(".response-info").inner_text()
    return json.loads(text[text.index("{") :])


def test_the_browsable_api_gets_a_token_and_a_sum(page: Page, server: LiveServer) -> None:
    traffic = Traffic(page)
    page.goto(server.url + "/auth")
    # The first view is the form and how to use it.
    page.locator("#how-to").wait_for()
    assert not page.locator(".response-info").is_visible()
    post_raw(page, '{"username": "alice", "password": "secret"}')
    page.get_by_text("HTTP 200 OK").wait_for()
    token = shown_answer(page)["access_token"]

    page.goto(server.url + "/sum")
    page.locator("#how-to").wait_for()
    page.locator("#bearer-token").fill(token)
    page.get_by_role("button", name="Use this token").click()
    post_raw(page, "[1, 2, 3]")
    page.get_by_text("HTTP 200 OK").wait_for()
    assert shown_answer(page) == SUM_OF_1_2_3
    shoot(page, "browsable-api")

    # The page keeps the token (this tab only) and sends it again; "Forget it" stops that.
    post_raw(page, "[4, 6]")
    page.get_by_text('"sum": "10"').wait_for()
    page.get_by_role("button", name="Forget it").click()
    post_raw(page, "[1]")
    page.get_by_text("HTTP 401 Unauthorized").wait_for()
    traffic.assert_only_from(server.url)


def test_a_token_pasted_in_the_box_is_used_without_its_button(
    page: Page, server: LiveServer
) -> None:
    page.goto(server.url + "/sum")
    page.locator("#bearer-token").fill(get_token(server))
    post_raw(page, "[1, 2, 3]")
    page.get_by_text("HTTP 200 OK").wait_for()
    assert shown_answer(page) == SUM_OF_1_2_3


def test_the_token_page_hands_its_token_to_the_sum_page(page: Page, server: LiveServer) -> None:
    page.goto(server.url + "/auth")
    post_raw(page, '{"username": "bob", "password": "secret"}')
    page.get_by_role("button", name="Use this token on /sum").click()
    page.goto(server.url + "/sum")
    post_raw(page, "[0.1, 0.2]")
    page.get_by_text("HTTP 200 OK").wait_for()
    assert shown_answer(page)["sum"] == "0.3"


def test_a_token_in_quotes_is_taken_and_one_that_cannot_be_sent_is_refused(
    page: Page, server: LiveServer
) -> None:
    token = get_token(server)
    page.goto(server.url + "/sum")
    box, status = page.locator("#bearer-token"), page.locator("#bearer-token-status")
    # As chat and office programs quote what they paste, with its scheme or without.
    for pasted in (f"\u201c{token}\u201d", f'"Bearer {token}"', f"Bearer '{token}'"):
        box.fill(pasted)
        page.get_by_role("button", name="Use this token").click()
        assert box.input_value() == token, pasted
    post_raw(page, "[1, 2, 3]")
    page.get_by_text("HTTP 200 OK").wait_for()
    assert shown_answer(page) == SUM_OF_1_2_3

    # Cut short with an ellipsis, which no HTTP header can carry.
    box.fill(token[:20] + "\u2026")
    page.get_by_role("button", name="Use this token").click()
    assert status.inner_text().startswith("Not kept: a token is letters, digits and -._~+/ only")
    post_raw(page, "[1]")
    page.get_by_text("HTTP 401 Unauthorized").wait_for()
    assert "Authentication credentials were not provided." in page.inner_text(".response-info")


def test_an_answer_given_before_drf_is_shown_on_the_page(page: Page, server: LiveServer) -> None:
    """A body over /auth's 64 KiB is refused before Django reads it, in JSON; DRF's form then
    loads the page again, and the page shows what came."""
    page.goto(server.url + "/auth")
    post_raw(page, json.dumps({"username": "alice", "password": "p" * 70_000}))
    shown = page.locator("#last-answer")
    shown.wait_for()
    assert shown.locator("strong").inner_text() == "POST /auth answered 413 Payload Too Large"
    detail = json.loads(shown.locator("pre").inner_text())["detail"]
    assert re.fullmatch(r"The request body is 700\d\d bytes; the limit is 65536 bytes\.", detail)
    shoot(page, "browsable-api-413", around="#last-answer")
    # Shown once: the next page of the tab does not show it again.
    page.reload()
    page.locator("#how-to").wait_for()
    assert not shown.is_visible()


def test_the_browsable_api_fits_a_phone_and_loads_nothing_missing(
    browser: Browser, server: LiveServer
) -> None:
    phone = browser.new_context(
        viewport={"width": 375, "height": 812}, device_scale_factor=2, is_mobile=True
    )
    try:
        page = phone.new_page()
        missing: list[str] = []
        page.on(
            "response",
            lambda r: (
                r.status >= 400
                and r.request.resource_type != "document"
                and missing.append(f"{r.status} {r.url}")
            ),
        )
        for path in ("/sum", "/redoc/"):
            page.goto(server.url + path, wait_until="networkidle")
            assert page.evaluate("window.innerWidth") == 375, path
        assert missing == []
    finally:
        phone.close()
