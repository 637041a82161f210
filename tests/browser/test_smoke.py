"""The browser-test plumbing itself: the live stack answers in chromium, pages are what they claim, and the
console-error watch really catches errors (the pages of every audience come with their own tests)."""

from __future__ import annotations

import json

import pytest
from playwright.async_api import Page, expect

from domain.users.models import Role
from tests.browser.conftest import SCREENSHOT_DIR, LiveStack, errors_of, screenshot

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# Chromium asks every document's origin for /favicon.ico, and logs its 404 as a console error at some moment
# after the load. HTML pages avoid it with <link rel="icon">; the JSON documents visited here cannot.
FAVICON_404 = r"status of 404 .*/favicon\.ico"
VIEWPORT_META = '<meta name="viewport" content="width=device-width, initial-scale=1">'


@pytest.mark.allow_console_errors(FAVICON_404)
async def test_healthz_renders_in_the_browser(page: Page, live_stack: LiveStack) -> None:
    response = await page.goto("/healthz")
    assert response is not None and response.status == 200
    assert page.url == f"{live_stack.base_url}/healthz"
    # Chromium shows a JSON document as text in a <pre>.
    body = json.loads(await page.locator("pre").first.inner_text())
    assert body["status"] == "ok"
    assert {name: check["status"] for name, check in body["checks"].items()} == {
        "database": "ok",
        "temporal": "ok",
        "object_store": "ok",
    }
    path = await screenshot(page, "smoke-healthz")
    assert path == SCREENSHOT_DIR / "smoke-healthz.png"
    assert path.read_bytes().startswith(b"\x89PNG")


# Chromium logs the 404 of the document itself as a console error; nothing else may appear.
@pytest.mark.allow_console_errors(r"status of 404 \(Not Found\) \(http://[^)]*/(no-such-page|favicon\.ico)\)")
async def test_an_unknown_path_is_a_plain_404(page: Page) -> None:
    response = await page.goto("/no-such-page")
    assert response is not None and response.status == 404
    await expect(page.locator("body")).to_contain_text("Not Found")
    assert errors_of(page).page_errors == []


@pytest.mark.allow_console_errors(FAVICON_404)
async def test_phone_page_is_a_phone(phone_page: Page, page: Page) -> None:
    await phone_page.goto("/healthz")
    assert await phone_page.evaluate("[screen.width, screen.height, navigator.maxTouchPoints > 0]") == [375, 812, True]
    assert "Mobile" in await phone_page.evaluate("navigator.userAgent")
    await screenshot(phone_page, "smoke-healthz-phone")
    # A mobile browser lays out a page without a viewport meta 980 px wide: a phone test that checks
    # window.innerWidth == 375 finds a page that forgot it.
    assert await phone_page.evaluate("window.innerWidth") > 375
    await phone_page.set_content(f"<!doctype html>{VIEWPORT_META}<p>手机</p>")
    assert await phone_page.evaluate("window.innerWidth") == 375

    await page.goto("/healthz")
    assert await page.evaluate("[window.innerWidth, navigator.maxTouchPoints]") == [1280, 0]


@pytest.mark.allow_console_errors
async def test_the_error_watch_sees_console_errors_and_uncaught_errors(page: Page) -> None:
    errors = errors_of(page)
    await page.set_content("<!doctype html><p>error watch</p>")  # no request, so no favicon either
    await page.evaluate("console.log('fine'); console.warn('also fine'); console.info('fine too')")
    await page.evaluate("0")
    assert errors.problems() == []
    errors.assert_clean()

    await page.evaluate("console.error('boom from the test')")
    async with page.expect_event("pageerror"):
        await page.evaluate("setTimeout(() => { throw new TypeError('uncaught from the test') }, 0)")
    await page.evaluate("0")  # a round trip: the console event has been delivered

    assert any("boom from the test" in text for text in errors.console_errors), errors
    assert any("uncaught from the test" in text for text in errors.page_errors), errors
    # What the teardown of an unmarked test does: fail, naming both.
    with pytest.raises(pytest.fail.Exception) as failure:
        errors.assert_clean()
    assert "boom from the test" in str(failure.value) and "TypeError: uncaught from the test" in str(failure.value)
    # An allowance covers only what it matches.
    with pytest.raises(pytest.fail.Exception):
        errors.assert_clean(allow=[r"boom from the test"])
    errors.assert_clean(allow=[r"boom from the test", r"uncaught from the test"])


@pytest.mark.allow_console_errors(r"allowed noise")
async def test_a_pattern_allows_only_what_it_matches(page: Page) -> None:
    await page.set_content("<!doctype html><p>error watch</p>")
    await page.evaluate("console.error('allowed noise')")
    await page.evaluate("0")
    errors = errors_of(page)
    assert errors.problems([r"allowed noise"]) == []
    await page.evaluate("console.error('something else')")
    await page.evaluate("0")
    assert [text for text in errors.problems([r"allowed noise"]) if "something else" in text]
    errors.clear()  # this test checked the failure itself; the teardown would fail on 'something else'


async def test_an_alert_becomes_a_case_through_the_worker(live_stack: LiveStack, page: Page) -> None:
    created = await live_stack.raise_alert(merchant="merchant01", alert_type="no_hat")
    case = await live_stack.wait_for_case(created["case_id"], username="officer.youyilu")
    assert case["case"]["case_id"] == created["case_id"]
    # The merchant's own case is readable in the browser too, with a bearer token (pages come later).
    response = await page.request.get(
        f"/api/v1/cases/{created['case_id']}", headers=live_stack.bearer_headers("merchant01")
    )
    assert response.status == 200, await response.text()


async def test_one_account_of_every_role_signs_in_with_the_known_password(live_stack: LiveStack, page: Page) -> None:
    for role in Role:
        account = live_stack.account(role)
        response = await page.request.post(
            "/api/v1/auth/token", form={"username": account.username, "password": live_stack.password}
        )
        assert response.status == 200, f"{account.username}: {await response.text()}"
        assert (await response.json())["must_change_password"] is False
    assert live_stack.account(Role.street_officer).username == "officer.youyilu"
    assert live_stack.account("merchant").username == "merchant01"
