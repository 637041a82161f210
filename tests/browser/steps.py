"""Steps several browser tests share: signing in through the form, checking that evidence pictures load."""

from __future__ import annotations

import re

from playwright.async_api import Locator, Page

from tests.browser.conftest import LiveStack


async def sign_in(page: Page, live_stack: LiveStack, username: str, home: str) -> None:
    await page.goto("/login")
    await page.locator("input[name=username]").fill(username)
    await page.locator("input[name=password]").fill(live_stack.password)
    await page.locator("form[action='/login'] button[type=submit]").click()
    await page.wait_for_url(re.compile(re.escape(live_stack.base_url + home) + r"(\?.*)?$"))


async def assert_images_load(images: Locator, *, at_least: int = 1) -> None:
    """Each <img> decoded a real picture: /evidence redirected to a presigned URL the CSP allows."""
    count = await images.count()
    assert count >= at_least, f"expected at least {at_least} evidence image(s), found {count}"
    for index in range(count):
        image = images.nth(index)
        await image.scroll_into_view_if_needed()  # loading="lazy": only a visible image is fetched
        handle = await image.element_handle()
        assert handle is not None
        await image.page.wait_for_function("img => img.complete", arg=handle)
        width = await image.evaluate("img => img.naturalWidth")
        assert width > 0, f"evidence image {await image.get_attribute('src')} did not load"
