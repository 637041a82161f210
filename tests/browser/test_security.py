"""What the pages refuse, seen in a real browser: another street's case, too many wrong passwords, an idle
session, and a form without its CSRF token. Each refusal is a readable page with the right HTTP status (and
Chromium logs a document answered 4xx as a console error: each test allows exactly its own status)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from playwright.async_api import Page, expect
from sqlalchemy import delete, update
from sqlmodel import Session, col, select

from domain.audit.models import AuditEvent
from domain.users.lockout import LoginLockout
from domain.users.saved_filters import SavedFilter
from domain.users.web_sessions import WebSession
from tests.browser.conftest import LiveStack, screenshot
from tests.browser.steps import sign_in

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SESSION_COOKIE = "sunshine_session"
FORBIDDEN = r"status of 403 \(Forbidden\)"
UNAUTHORIZED = r"status of 401 \(Unauthorized\)"
TOO_MANY = r"status of 429 \(Too Many Requests\)"
CSRF_MESSAGE = "表单已过期或并非来自本站，请刷新页面后重试。"


async def submit_login(page: Page, username: str, password: str) -> int:
    """Fill in the sign-in form already shown and send it; the HTTP status of the page that answers."""
    await page.locator("input[name=username]").fill(username)
    await page.locator("input[name=password]").fill(password)
    async with page.expect_navigation() as navigation:
        await page.locator("form[action='/login'] button[type=submit]").click()
    response = await navigation.value
    assert response is not None
    return response.status


@pytest.mark.allow_console_errors(FORBIDDEN)
async def test_an_officer_cannot_open_another_streets_case(page: Page, live_stack: LiveStack) -> None:
    created = await live_stack.raise_alert(merchant="merchant01", camera=0, alert_type="no_mask")  # youyilu
    case_id = created["case_id"]
    await live_stack.wait_for_case(case_id, username="officer.youyilu")

    await sign_in(page, live_stack, "officer.yuexiulu", "/queue")
    await expect(page.locator(f"a[href='/cases/{case_id}']")).to_have_count(0)  # not in this street's queue
    response = await page.goto(f"/cases/{case_id}")
    assert response is not None and response.status == 403
    await expect(page.locator("h1")).to_have_text("403 · 无权访问")
    await expect(page.locator("main")).to_contain_text("该案件属于另一个街道市场监管所")
    await expect(page.locator("main")).not_to_contain_text("未戴口罩")  # nothing of the case itself
    await expect(page.locator("figure.evidence")).to_have_count(0)
    await screenshot(page, "security-other-street-403")

    with Session(live_stack.engine) as session:
        refusals = session.exec(
            select(AuditEvent).where(
                AuditEvent.username == "officer.yuexiulu",
                AuditEvent.action == "permission_denied",
                AuditEvent.target == f"case:{case_id}",
            )
        ).all()
    assert len(refusals) == 1 and refusals[0].outcome == "denied"


@pytest.mark.allow_console_errors(UNAUTHORIZED, TOO_MANY)
async def test_five_wrong_passwords_lock_the_account(page: Page, live_stack: LiveStack) -> None:
    username = "merchant03"  # no other browser test signs in with it
    try:
        await page.goto("/login")
        for attempt in range(1, 6):
            assert await submit_login(page, username, f"wrong-{attempt}-{live_stack.password}") == 401, attempt
            await expect(page.locator(".flash.error")).to_have_text("用户名或密码错误。")
        # The sixth attempt, with the right password, is refused all the same.
        assert await submit_login(page, username, live_stack.password) == 429
        await expect(page.locator(".flash.error")).to_contain_text("登录失败次数过多")
        await expect(page.locator(".flash.error")).to_contain_text("分钟后再试")
        assert page.url == f"{live_stack.base_url}/login"
        assert not [c for c in await page.context.cookies() if c["name"] == SESSION_COOKIE]
        await screenshot(page, "security-lockout-429")
        with Session(live_stack.engine) as session:
            lock = session.get(LoginLockout, username)
            assert lock is not None and lock.locked_until is not None
            assert lock.locked_until > datetime.now(UTC) + timedelta(minutes=14)
    finally:
        with Session(live_stack.engine) as session:  # the account stays usable for any later test
            session.exec(delete(LoginLockout).where(col(LoginLockout.username) == username))
            session.commit()


async def test_an_idle_session_expires_after_30_minutes(page: Page, live_stack: LiveStack) -> None:
    await sign_in(page, live_stack, "officer.machang", "/queue")
    token = next(c["value"] for c in await page.context.cookies() if c["name"] == SESSION_COOKIE)
    token_hash = hashlib.sha256(token.encode()).hexdigest()
    with Session(live_stack.engine) as session:
        changed = session.exec(
            update(WebSession)
            .where(col(WebSession.token_hash) == token_hash)
            .values(last_seen_at=datetime.now(UTC) - timedelta(minutes=31))
        )
        session.commit()
    assert changed.rowcount == 1

    await page.reload()
    assert page.url == f"{live_stack.base_url}/login?next=/queue&expired=1"
    await expect(page.locator(".flash.warn")).to_have_text("会话已结束，请重新登录。")
    assert not [c for c in await page.context.cookies() if c["name"] == SESSION_COOKIE]
    await screenshot(page, "security-session-expired")
    with Session(live_stack.engine) as session:
        record = session.get(WebSession, token_hash)
        assert record is not None and record.ended_at is not None and record.end_reason == "idle"

    # Signing in again from that page returns to where the officer was.
    await page.locator("input[name=username]").fill("officer.machang")
    await page.locator("input[name=password]").fill(live_stack.password)
    await page.locator("form[action='/login'] button[type=submit]").click()
    await page.wait_for_url(f"{live_stack.base_url}/queue")


@pytest.mark.allow_console_errors(FORBIDDEN)
async def test_a_form_without_its_csrf_token_is_refused(page: Page, live_stack: LiveStack) -> None:
    username = "officer.yuexiulu"
    started = datetime.now(UTC)
    await sign_in(page, live_stack, username, "/queue")

    # A post made outside the page (the session cookie goes with it, the token does not).
    response = await page.request.post("/queue/filters", form={"name": "forged", "query": "overdue=1"},
                                       max_redirects=0)
    assert response.status == 403
    assert CSRF_MESSAGE in await response.text()
    response = await page.request.post("/queue/filters", form={"name": "forged", "query": "overdue=1",
                                                               "csrf_token": "not-the-token"}, max_redirects=0)
    assert response.status == 403

    # The page's own form, its hidden token removed before it is sent.
    await page.locator("details.card summary").click()
    form = page.locator("form[action='/queue/filters']")
    await form.locator("input[name=name]").fill("tampered")
    await form.evaluate("form => form.querySelector('input[name=csrf_token]').remove()")
    assert await form.locator("input[name=csrf_token]").count() == 0
    async with page.expect_navigation() as navigation:
        await form.get_by_role("button").click()
    answered = await navigation.value
    assert answered is not None and answered.status == 403
    await expect(page.locator("h1")).to_have_text("403 · 无权访问")
    await expect(page.locator("main")).to_contain_text(CSRF_MESSAGE)
    await screenshot(page, "security-csrf-403")

    # Nothing was saved, the session is still good, and every refusal is in the audit log.
    again = await page.goto("/queue")
    assert again is not None and again.status == 200
    await expect(page.locator(".chips")).not_to_contain_text("tampered")
    with Session(live_stack.engine) as session:
        user_filters = session.exec(select(SavedFilter.name)).all()
        refused = session.exec(
            select(AuditEvent).where(
                AuditEvent.username == username, AuditEvent.action == "csrf_refused", col(AuditEvent.at) >= started
            )
        ).all()
    assert "forged" not in user_filters and "tampered" not in user_filters
    assert len(refused) == 3
