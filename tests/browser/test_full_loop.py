"""The whole loop in the browser: a camera's alert becomes a case in the street office's queue, the merchant
answers it on a phone with a photo (属实, put right at once), the officer approves the rectification and the
case closes. Every page visited is screenshotted; every evidence picture must really load (presigned URL of
the object store allowed by the Content-Security-Policy)."""

from __future__ import annotations

import asyncio
import struct
import zlib

import pytest
from playwright.async_api import Page, expect
from sqlmodel import Session

from domain.cases.models import AlertCase
from tests.browser.conftest import LiveStack, screenshot
from tests.browser.steps import assert_images_load, sign_in

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# merchant01 is the first demo merchant: street office youyilu (infra/demo.py assigns merchants round-robin).
MERCHANT = "merchant01"
OFFICER = "officer.youyilu"
PROJECTION_TIMEOUT_SECONDS = 20.0


def rectification_png(width: int = 48, height: int = 32) -> bytes:
    """A small, valid PNG (a green/white checkerboard) that differs from the alert's snapshot: evidence is
    content-addressed, so the snapshot's own bytes would be the snapshot again, not a new photo."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = b"".join(
        b"\x00" + b"".join(b"\x20\xa0\x40" if (x // 8 + y // 8) % 2 else b"\xf0\xf0\xf0" for x in range(width))
        for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


async def wait_for_status(live_stack: LiveStack, case_id: str, status: str) -> AlertCase:
    """Poll the case projection until it shows ``status`` (the worker writes it after the workflow moves)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + PROJECTION_TIMEOUT_SECONDS
    while True:
        with Session(live_stack.engine) as session:
            case = session.get(AlertCase, case_id)
        if case is not None and case.status == status:
            return case
        if loop.time() > deadline:
            found = None if case is None else case.status
            raise AssertionError(f"case {case_id} not {status} within {PROJECTION_TIMEOUT_SECONDS} s (is {found})")
        await asyncio.sleep(0.1)  # polling interval under a deadline


async def test_alert_to_closed_case_through_the_pages(page: Page, phone_page: Page, live_stack: LiveStack) -> None:
    # 1. A device posts an alert; the worker opens a case (camera 1: no other test merges into this case).
    created = await live_stack.raise_alert(merchant=MERCHANT, camera=1, alert_type="no_hat")
    assert created["merged"] is False, created
    case_id = created["case_id"]
    await live_stack.wait_for_case(case_id, username=OFFICER)

    # 2. The officer of merchant01's street finds it in the queue and opens it.
    await sign_in(page, live_stack, OFFICER, "/queue")
    case_link = page.locator(f"a[href='/cases/{case_id}']")
    await expect(case_link).to_have_count(1)
    await expect(page.locator("tr", has=case_link)).to_contain_text("待核实")
    await screenshot(page, "loop-01-officer-queue")
    await case_link.click()
    await page.wait_for_url(f"**/cases/{case_id}")
    await expect(page.locator("h1")).to_contain_text("未戴工作帽")
    await assert_images_load(page.locator("figure.evidence img"))
    await screenshot(page, "loop-02-officer-case-new")

    # 3. The merchant, on a phone, signs in, acknowledges the Art. 16 notice and opens the case.
    await sign_in(phone_page, live_stack, MERCHANT, "/m")
    assert await phone_page.evaluate("window.innerWidth") == 375
    await screenshot(phone_page, "loop-03-merchant-inbox")
    notice_link = phone_page.locator("a[href='/m/notice'].button")
    if await notice_link.count():
        await notice_link.click()
        await phone_page.wait_for_url("**/m/notice")
        assert await phone_page.evaluate("window.innerWidth") == 375
        await screenshot(phone_page, "loop-04-merchant-notice")
        await phone_page.get_by_role("button", name="我已阅读并知悉以上告知").click()
        await phone_page.wait_for_url("**/m?done=notice")
        await expect(phone_page.locator(".flash.ok")).to_be_visible()
    merchant_case_link = phone_page.locator(f"a[href='/m/cases/{case_id}']")
    await expect(merchant_case_link).to_have_count(1)
    await merchant_case_link.click()
    await phone_page.wait_for_url(f"**/m/cases/{case_id}")
    assert await phone_page.evaluate("window.innerWidth") == 375
    await assert_images_load(phone_page.locator("figure.evidence img"))
    await screenshot(phone_page, "loop-05-merchant-case")

    # 4. 属实 · 已整改: a photo through the file chooser, sent by the upload-with-progress form.
    form = phone_page.locator("form[action$='/verify']", has=phone_page.locator("input[value=rectified_now]"))
    await expect(form).to_be_visible()
    async with phone_page.expect_file_chooser() as chooser_info:
        await form.locator("input[type=file]").click()
    chooser = await chooser_info.value
    await chooser.set_files({"name": "rectified.png", "mimeType": "image/png", "buffer": rectification_png()})
    await form.locator("textarea[name=note]").fill("已戴好工作帽")
    await form.get_by_role("button", name="提交答复和照片").click()
    await phone_page.wait_for_url(f"**/m/cases/{case_id}?done=verified")
    await expect(phone_page.locator(".flash.ok")).to_have_text("您的答复已记录。")
    await wait_for_status(live_stack, case_id, "awaiting_review")
    await phone_page.reload()
    assert await phone_page.evaluate("window.innerWidth") == 375
    await expect(phone_page.locator("h1")).to_contain_text("待审核")
    own_photos = phone_page.locator("section.card", has=phone_page.get_by_role("heading", name="您上传的照片"))
    await assert_images_load(own_photos.locator("figure.evidence img"))
    await screenshot(phone_page, "loop-06-merchant-after-verify")

    # 5. The officer sees the photo and approves the rectification.
    await page.reload()
    await expect(page.locator("main")).to_contain_text("待审核")
    await assert_images_load(page.locator("figure.evidence img"), at_least=2)  # the snapshot and the photo
    await screenshot(page, "loop-07-officer-case-to-review")
    review = page.locator("form[action$='/review']")
    await review.locator("select[name=decision]").select_option("approve_rectification")
    await review.locator("select[name=harm]").select_option("none")
    await review.get_by_role("button", name="提交审核").click()
    await page.wait_for_url(f"**/cases/{case_id}?done=review")
    await expect(page.locator(".flash.ok")).to_have_text("审核结果已记录。")

    # 6. The case is closed in the projection and on the page, for both of them.
    closed = await wait_for_status(live_stack, case_id, "closed")
    assert closed.outcome == "rectified"
    await page.reload()
    await expect(page.locator("main .badge.closed").first).to_have_text("已办结")
    await expect(page.locator("#actions")).to_have_count(0)
    await screenshot(page, "loop-08-officer-case-closed")

    await phone_page.goto("/m/history")
    assert await phone_page.evaluate("window.innerWidth") == 375
    await expect(phone_page.locator(f"a[href='/m/cases/{case_id}']")).to_contain_text("已整改")
    await phone_page.goto(f"/m/cases/{case_id}")
    await expect(phone_page.locator("h1 .badge.closed")).to_have_text("已办结")
    await screenshot(phone_page, "loop-09-merchant-case-closed")
