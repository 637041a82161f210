"""Every page of every role renders in chromium: signed in through the sign-in form, each page answers 200
with its heading, no console error or uncaught exception (the ``page`` fixtures fail the test on any), and a
screenshot of it in test-output/screenshots/pages-*.png. The language switch works on one page."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from playwright.async_api import Page, expect
from sqlmodel import Session, select

from domain.cases.models import EnforcementHandoff
from tests.browser.conftest import LiveStack, screenshot
from tests.browser.steps import assert_images_load, sign_in

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HANDOFF_TIMEOUT_SECONDS = 20.0
TRANSFER_REASON = "拒不整改，移交执法"


@pytest.fixture(scope="module")
async def open_case(live_stack: LiveStack) -> str:
    """An open case of merchant01 (street youyilu), for the pages that show one."""
    created = await live_stack.raise_alert(merchant="merchant01", camera=0, alert_type="smoking")
    await live_stack.wait_for_case(created["case_id"], username="officer.youyilu")
    return str(created["case_id"])


async def visit(page: Page, path: str, name: str, *, heading: str | None = None) -> None:
    """Open ``path``: 200, a main heading (with ``heading`` in it, if given), a screenshot."""
    response = await page.goto(path)
    assert response is not None, path
    assert response.status == 200, f"{path}: {response.status} {(await response.text())[:500]}"
    main_heading = page.locator("main h1").first
    await expect(main_heading).to_be_visible()
    if heading is not None:
        await expect(main_heading).to_contain_text(heading)
    await screenshot(page, f"pages-{name}")


async def nav_targets(page: Page) -> list[str]:
    hrefs = await page.locator("nav.nav a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    return [str(href) for href in hrefs]


async def transferred_case(live_stack: LiveStack) -> EnforcementHandoff:
    """A case of merchant01 that officer.youyilu transfers to the brigade (through the JSON API)."""
    created = await live_stack.raise_alert(merchant="merchant01", camera=0, alert_type="phone_use")
    case_id = created["case_id"]
    await live_stack.wait_for_case(case_id, username="officer.youyilu")
    async with httpx.AsyncClient(base_url=live_stack.base_url, timeout=30) as http:
        response = await http.post(
            f"/api/v1/cases/{case_id}/transfer",
            headers=live_stack.bearer_headers("officer.youyilu"),
            json={"reason": TRANSFER_REASON},
        )
    assert response.status_code == 200, response.text
    loop = asyncio.get_running_loop()
    deadline = loop.time() + HANDOFF_TIMEOUT_SECONDS
    while True:
        with Session(live_stack.engine) as session:
            handoff = session.exec(select(EnforcementHandoff).where(EnforcementHandoff.case_id == case_id)).first()
        if handoff is not None:
            return handoff
        assert loop.time() < deadline, f"no hand-off projected for {case_id} within {HANDOFF_TIMEOUT_SECONDS} s"
        await asyncio.sleep(0.1)  # polling interval under a deadline


async def test_street_officer_pages(page: Page, live_stack: LiveStack, open_case: str) -> None:
    await sign_in(page, live_stack, "officer.youyilu", "/queue")
    assert await nav_targets(page) == ["/queue"]
    await visit(page, "/queue", "officer-queue", heading="案件队列")
    await expect(page.locator(f"a[href='/cases/{open_case}']")).to_have_count(1)
    await visit(page, "/queue?status=awaiting_verification&alert_type=smoking", "officer-queue-filtered")
    await expect(page.locator(f"a[href='/cases/{open_case}']")).to_have_count(1)
    await visit(page, f"/cases/{open_case}", "officer-case", heading="吸烟")
    await assert_images_load(page.locator("figure.evidence img"))
    await visit(page, "/account", "officer-account")
    await visit(page, "/password", "officer-password")

    # The language switch: English on the queue, then back to Chinese; it stays on the same page.
    await page.goto("/queue")
    await page.locator(".lang a[lang=en]").click()
    await page.wait_for_url(f"{live_stack.base_url}/queue")
    assert await page.locator("html").get_attribute("lang") == "en"
    await expect(page.locator("main h1")).to_have_text("Case queue")
    await expect(page.locator("nav.nav")).to_contain_text("Case queue")
    await screenshot(page, "pages-officer-queue-english")
    await page.goto(f"/cases/{open_case}")
    await expect(page.locator("main h1")).to_contain_text("Smoking")
    await page.locator(".lang a[lang=zh-CN]").click()
    await page.wait_for_url(f"{live_stack.base_url}/cases/{open_case}")
    assert await page.locator("html").get_attribute("lang") == "zh-CN"
    await expect(page.locator("main h1")).to_contain_text("吸烟")


async def test_merchant_pages_on_a_phone(phone_page: Page, live_stack: LiveStack, open_case: str) -> None:
    await sign_in(phone_page, live_stack, "merchant01", "/m")
    assert await nav_targets(phone_page) == ["/m", "/m/history", "/m/profile"]
    for path, name in (("/m", "inbox"), ("/m/history", "history"), ("/m/profile", "profile"),
                       ("/m/notice", "notice"), (f"/m/cases/{open_case}", "case")):
        await visit(phone_page, path, f"merchant-{name}")
        assert await phone_page.evaluate("window.innerWidth") == 375, path
        # Nothing wider than the phone: no sideways scrolling.
        assert await phone_page.evaluate("document.documentElement.scrollWidth") <= 375, path
    await expect(phone_page.locator("main h1")).to_contain_text("吸烟")


async def test_brigade_pages(page: Page, live_stack: LiveStack) -> None:
    handoff = await transferred_case(live_stack)
    await sign_in(page, live_stack, "brigade", "/brigade")
    assert await nav_targets(page) == ["/brigade"]
    await visit(page, "/brigade", "brigade-inbox")
    link = page.locator(f"a[href='/brigade/handoffs/{handoff.handoff_id}']").first
    await expect(link).to_be_visible()
    await link.click()
    await page.wait_for_url(f"**/brigade/handoffs/{handoff.handoff_id}")
    await expect(page.locator("main")).to_contain_text(TRANSFER_REASON)
    await assert_images_load(page.locator("figure.evidence img"))
    await visit(page, f"/brigade/handoffs/{handoff.handoff_id}", "brigade-handoff")
    await visit(page, "/account", "brigade-account")


async def test_command_center_pages(page: Page, live_stack: LiveStack, open_case: str) -> None:
    await sign_in(page, live_stack, "command", "/overview")
    assert await nav_targets(page) == ["/overview", "/queue", "/brigade"]
    await visit(page, "/overview", "command-overview")
    await expect(page.locator("main svg").first).to_be_visible()
    await page.locator("a[href='/overview/streets/youyilu']").first.click()
    await page.wait_for_url("**/overview/streets/youyilu")
    await expect(page.locator(f"a[href='/cases/{open_case}']")).to_have_count(1)
    await screenshot(page, "pages-command-street")
    await visit(page, "/overview/streets/youyilu?status=all", "command-street-all")
    await visit(page, "/queue", "command-queue")
    await visit(page, f"/cases/{open_case}", "command-case", heading="吸烟")
    await visit(page, "/brigade", "command-brigade")


async def test_auditor_pages(page: Page, live_stack: LiveStack, open_case: str) -> None:
    await sign_in(page, live_stack, "auditor", "/audit")
    assert await nav_targets(page) == ["/audit", "/audit/log"]
    await visit(page, "/audit", "auditor-cases")
    await expect(page.locator(f"a[href='/audit/cases/{open_case}']")).to_have_count(1)
    await visit(page, f"/audit/cases/{open_case}", "auditor-case", heading="吸烟")
    await expect(page.locator("img")).to_have_count(0)  # digests, never pictures, for the auditor
    await visit(page, "/audit/log", "auditor-log")
    await visit(page, "/audit/log?action=signed_in&username=auditor", "auditor-log-filtered")
    await expect(page.locator("main")).to_contain_text("auditor")


async def test_admin_pages(page: Page, live_stack: LiveStack) -> None:
    await sign_in(page, live_stack, "admin", "/admin")
    assert await nav_targets(page) == ["/admin", "/admin/devices"]
    await visit(page, "/admin", "admin-users")
    await expect(page.locator("main")).to_contain_text("merchant01")
    await visit(page, "/admin/devices", "admin-devices")
    await expect(page.locator("main")).to_contain_text("browser-test edge box")
