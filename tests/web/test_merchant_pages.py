"""The merchant's pages on a phone: own shop only, the 办法 第十六条 notice acknowledged once, answers that are
refused readably (no CSRF, a missing reason, Temporal down, a photo too large) and change nothing, the profile
with certificate expiry, and one real answer with a photo through the page on the real workflow."""

from __future__ import annotations

import asyncio
import struct
import uuid
import zlib
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from api.app import create_app
from domain.audit.models import AuditAction, AuditEvent
from domain.cases.models import AlertCase
from domain.merchants.models import Certificate
from domain.users.models import User
from tests.api.conftest import T0, World, add_case, api_settings_for
from tests.web.conftest import csrf_of, sign_in

Browser = Callable[[str], TestClient]


def tiny_png() -> bytes:
    """A real 2×2 PNG: evidence intake checks the bytes, not the name."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0)
    rows = b"".join(b"\x00" + bytes([200, 30, 30]) * 2 for _ in range(2))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"tEXt", b"Comment\x00" + uuid.uuid4().hex.encode()) + chunk(b"IEND", b""))


def acknowledge(browser: TestClient) -> None:
    page = browser.get("/m/notice")
    response = browser.post("/m/notice", data={"csrf_token": csrf_of(page.text)}, follow_redirects=False)
    assert response.status_code == 303, response.text


def case_row(engine: Engine, case_id: str) -> AlertCase:
    with Session(engine) as session:
        case = session.get(AlertCase, case_id)
        assert case is not None
        return case


def case_actions(engine: Engine) -> list[AuditEvent]:
    with Session(engine) as session:
        return list(session.exec(select(AuditEvent).where(AuditEvent.action == AuditAction.case_action.value)))


def test_the_inbox_lists_the_shops_own_open_cases_soonest_deadline_first(
    browser_for: Browser, world: World, db_engine: Engine
) -> None:
    with Session(db_engine, expire_on_commit=False) as session:
        add_case(session, world, "case-m1-urgent", merchant="m1", alert_type="smoking",
                 next_due_at=T0 + timedelta(hours=2))
        add_case(session, world, "case-m1-closed", merchant="m1", status="closed")
        session.commit()
    merchant = browser_for("merchant1")
    assert merchant.get("/", follow_redirects=False).headers["location"] == "/m"
    inbox = merchant.get("/m")
    assert inbox.status_code == 200
    assert "case-m1" in inbox.text and "case-m2" not in inbox.text and "case-m3" not in inbox.text
    assert inbox.text.index("case-m1-urgent") < inbox.text.index('/m/cases/case-m1"')
    assert "case-m1-closed" not in inbox.text
    assert 'class="countdown" data-due="2026-12-02T09:00:00Z"' in inbox.text
    assert "吸烟" in inbox.text
    history = merchant.get("/m/history")
    assert history.status_code == 200
    assert "case-m1-closed" in history.text and 'href="/m/cases/case-m1"' not in history.text


def test_another_shops_case_is_a_404_page(browser_for: Browser, world: World) -> None:
    merchant = browser_for("merchant1")
    page = merchant.get("/m/cases/case-m2")
    assert page.status_code == 404
    assert "<html" in page.text and "贵店没有这个案件" in page.text
    token = csrf_of(merchant.get("/m").text)
    refused = merchant.post("/m/cases/case-m2/verify", data={
        "csrf_token": token, "choice": "unsubstantiated", "reason_code": "misdetection", "note": "不是我们店"})
    assert refused.status_code == 404
    assert merchant.get("/m/cases/no-such-case").status_code == 404


def test_other_roles_do_not_get_the_merchant_pages(browser_for: Browser, world: World) -> None:
    officer = browser_for("officer1")
    for path in ("/m", "/m/cases/case-m1", "/m/profile", "/m/history", "/m/notice"):
        assert officer.get(path).status_code == 403, path


def test_the_notice_is_acknowledged_once_and_comes_before_the_first_answer(
    browser_for: Browser, world: World, db_engine: Engine
) -> None:
    merchant = browser_for("merchant1")
    inbox = merchant.get("/m")
    assert 'href="/m/notice"' in inbox.text and "flash warn" in inbox.text
    case = merchant.get("/m/cases/case-m1")
    assert "第十六条" in case.text and 'action="/m/notice"' in case.text
    assert 'name="choice"' not in case.text  # no answer before the notice
    token = csrf_of(case.text)
    early = merchant.post("/m/cases/case-m1/verify", data={
        "csrf_token": token, "choice": "unsubstantiated", "reason_code": "misdetection", "note": "误报"})
    assert early.status_code == 409 and "确认知悉" in early.text

    notice = merchant.get("/m/notice")
    assert "稽查执法" in notice.text and "24小时" in notice.text
    first = merchant.post("/m/notice", data={"csrf_token": csrf_of(notice.text), "next": "/m/cases/case-m1"},
                          follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"] == "/m/cases/case-m1"
    with Session(db_engine) as session:
        user = session.exec(select(User).where(User.username == "merchant1")).one()
        acknowledged_at = user.enforcement_notice_acknowledged_at
    assert acknowledged_at is not None
    second = merchant.post("/m/notice", data={"csrf_token": token}, follow_redirects=False)
    assert second.status_code == 303 and second.headers["location"] == "/m?done=notice"
    with Session(db_engine) as session:
        user = session.exec(select(User).where(User.username == "merchant1")).one()
        assert user.enforcement_notice_acknowledged_at == acknowledged_at
    after = merchant.get("/m?done=notice")
    assert "flash warn" not in after.text and "已确认知悉告知" in after.text
    assert 'name="choice" value="rectified_now"' in merchant.get("/m/cases/case-m1").text
    assert "您已于" in merchant.get("/m/notice").text
    # Another merchant of another shop has still to acknowledge it.
    assert "flash warn" in browser_for("merchant2").get("/m").text


def test_an_answer_without_the_csrf_token_is_refused(browser_for: Browser, world: World, db_engine: Engine) -> None:
    merchant = browser_for("merchant1")
    acknowledge(merchant)
    response = merchant.post("/m/cases/case-m1/verify", data={
        "choice": "unsubstantiated", "reason_code": "misdetection", "note": "误报"})
    assert response.status_code == 403
    forged = merchant.post("/m/cases/case-m1/verify", data={
        "csrf_token": "forged", "choice": "unsubstantiated", "reason_code": "misdetection", "note": "误报"})
    assert forged.status_code == 403
    with Session(db_engine) as session:
        refusals = session.exec(select(AuditEvent).where(AuditEvent.action == AuditAction.csrf_refused.value)).all()
    assert len(refusals) == 2
    assert case_row(db_engine, "case-m1").status == "awaiting_verification"


def test_an_answer_while_temporal_is_down_is_a_readable_503_and_changes_nothing(
    browser_for: Browser, world: World, db_engine: Engine
) -> None:
    merchant = browser_for("merchant1")
    acknowledge(merchant)
    token = csrf_of(merchant.get("/m/cases/case-m1").text)
    response = merchant.post("/m/cases/case-m1/verify", data={
        "csrf_token": token, "choice": "unsubstantiated", "reason_code": "not_staff", "note": "是来送货的供应商"})
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) > 0
    assert "案件系统未确认您的答复" in response.text
    assert "是来送货的供应商" in response.text  # what was typed is kept for the retry
    assert 'value="not_staff" selected' in response.text
    assert case_row(db_engine, "case-m1").status == "awaiting_verification"
    assert case_actions(db_engine) == []

    token = csrf_of(response.text)
    tomorrow = (datetime.now(UTC) + timedelta(hours=8) + timedelta(days=1)).date()
    deferred = merchant.post("/m/cases/case-m1/verify", data={
        "csrf_token": token, "choice": "needs_time", "proposed_date": tomorrow.isoformat()})
    assert deferred.status_code == 503


def test_answers_missing_what_they_need_are_422_with_every_problem_named(
    browser_for: Browser, world: World, db_engine: Engine
) -> None:
    merchant = browser_for("merchant1")
    acknowledge(merchant)
    token = csrf_of(merchant.get("/m/cases/case-m1").text)
    no_reason = merchant.post("/m/cases/case-m1/verify", data={
        "csrf_token": token, "choice": "unsubstantiated", "reason_code": "", "note": ""})
    assert no_reason.status_code == 422
    assert "请选择预警不属实的原因" in no_reason.text and "请简要说明预警不属实的具体情况" in no_reason.text
    bad_reason = merchant.post("/m/cases/case-m1/verify", data={
        "csrf_token": token, "choice": "unsubstantiated", "reason_code": "made-up", "note": "说明"})
    assert bad_reason.status_code == 422
    no_photo = merchant.post(
        "/m/cases/case-m1/verify", data={"csrf_token": token, "choice": "rectified_now"},
        files={"photo": ("", b"", "application/octet-stream")},
    )
    assert no_photo.status_code == 422 and "请拍摄或选择一张显示问题已整改的照片" in no_photo.text
    past = merchant.post("/m/cases/case-m1/verify", data={
        "csrf_token": token, "choice": "needs_time", "proposed_date": "2020-01-01"})
    assert past.status_code == 422 and "日期不能早于今天" in past.text
    too_late = merchant.post("/m/cases/case-m1/verify", data={
        "csrf_token": token, "choice": "needs_time", "proposed_date": (date.today() + timedelta(days=60)).isoformat()})
    assert too_late.status_code == 422 and "最晚日期" in too_late.text
    no_choice = merchant.post("/m/cases/case-m1/verify", data={"csrf_token": token, "choice": "maybe"})
    assert no_choice.status_code == 422
    assert case_row(db_engine, "case-m1").status == "awaiting_verification"
    # Rectification is asked only of a case that is rectifying.
    not_now = merchant.post("/m/cases/case-m1/rectify", data={"csrf_token": token},
                            files={"photo": ("fix.png", tiny_png(), "image/png")})
    assert not_now.status_code == 409


def test_the_case_page_is_made_for_a_phone_camera(browser_for: Browser, world: World, db_engine: Engine) -> None:
    with Session(db_engine, expire_on_commit=False) as session:
        add_case(session, world, "case-m1-rectifying", merchant="m1", status="rectifying",
                 next_due_at=T0 + timedelta(days=2))
        session.commit()
    merchant = browser_for("merchant1")
    acknowledge(merchant)
    page = merchant.get("/m/cases/case-m1")
    assert page.status_code == 200
    assert '<html lang="zh-CN">' in page.text
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page.text
    assert 'accept="image/*"' in page.text and 'capture="environment"' in page.text
    assert 'enctype="multipart/form-data"' in page.text and "data-upload-progress" in page.text
    assert '<progress class="hidden" max="100" value="0">' in page.text
    assert "属实 · 已整改" in page.text and "属实 · 需限期整改" in page.text and "不属实" in page.text
    assert 'value="misdetection"' in page.text and 'type="date"' in page.text
    assert "style=" not in page.text and "<script>" not in page.text
    rectifying = merchant.get("/m/cases/case-m1-rectifying")
    assert 'action="/m/cases/case-m1-rectifying/rectify"' in rectifying.text
    assert 'accept="image/*"' in rectifying.text and 'name="choice"' not in rectifying.text


def test_a_photo_over_the_limit_is_refused_before_it_is_read(
    database_url: str, tmp_path: Path, world: World, db_engine: Engine
) -> None:
    settings = api_settings_for(database_url, tmp_path, evidence_max_bytes=1024)
    with TestClient(create_app(settings)) as client:
        sign_in(client, "merchant1")
        acknowledge(client)
        token = csrf_of(client.get("/m/cases/case-m1").text)
        response = client.post("/m/cases/case-m1/verify", data={"csrf_token": token, "choice": "rectified_now"},
                               files={"photo": ("big.jpg", b"\xff\xd8\xff" + b"0" * 200_000, "image/jpeg")})
    assert response.status_code == 413
    assert "照片超过" in response.text
    assert case_row(db_engine, "case-m1").status == "awaiting_verification"


def test_the_profile_shows_the_shop_and_its_certificates_with_days_left(
    browser_for: Browser, world: World, db_engine: Engine
) -> None:
    today = (datetime.now(UTC) + timedelta(hours=8)).date()
    shop, other = world.merchants["m1"], world.merchants["m2"]
    assert shop.id is not None and other.id is not None
    with Session(db_engine) as session:
        session.add_all([
            Certificate(merchant_id=shop.id, kind="food_business_licence", number="JY11201030000001",
                        valid_from=today - timedelta(days=1000), valid_until=today + timedelta(days=10)),
            Certificate(merchant_id=shop.id, kind="health_certificate", number="HC-2025-001", holder_name="王师傅",
                        valid_from=today - timedelta(days=400), valid_until=today - timedelta(days=5)),
            Certificate(merchant_id=shop.id, kind="business_licence", number="92120103MA05TEST1A",
                        valid_from=today - timedelta(days=2000), valid_until=None),
        ])
        session.add(Certificate(merchant_id=other.id, kind="business_licence", number="OTHER-SHOP-LICENCE",
                                valid_from=today, valid_until=None))
        session.commit()
    page = browser_for("merchant1").get("/m/profile")
    assert page.status_code == 200
    text = page.text
    assert "津味小馆" in text and "92120103MA05TEST1A" in text and "友谊路街市场监管所" in text
    assert "食品经营许可证" in text and "剩余 10 天" in text and "badge soon" in text
    assert "健康证明" in text and "王师傅" in text and "已过期 5 天" in text and "badge overdue" in text
    assert "营业执照" in text and "长期有效" in text
    assert (today + timedelta(days=10)).isoformat() in text
    assert "OTHER-SHOP-LICENCE" not in text


# With a Temporal dev server, the casework worker and an S3 store: one real answer through the page.


@pytest.mark.integration
@pytest.mark.slow
async def test_a_merchant_answers_with_a_photo_through_the_page_and_the_case_moves_on(
    temporal_dev_server: str, database_url: str, tmp_path: Path, db_engine: Engine, world: World, seaweedfs
) -> None:
    from temporalio.client import Client

    from infra.evidence_store import EvidenceStore
    from infra.worker import build_casework_worker
    from tests.api.test_casework_end_to_end import open_real_case

    settings = api_settings_for(
        database_url, tmp_path, temporal_address=temporal_dev_server,
        temporal_task_queue=f"casework-web-{uuid.uuid4().hex[:8]}",
        s3_endpoint=seaweedfs.endpoint, s3_access_key=seaweedfs.access_key, s3_secret_key=seaweedfs.secret_key,
        evidence_bucket=f"web-merchant-{uuid.uuid4().hex[:8]}", evidence_retention_days=1,
    )
    EvidenceStore.from_settings(settings, db_engine).ensure_bucket()
    client = await Client.connect(temporal_dev_server)
    async with build_casework_worker(client, settings):
        case_id = await open_real_case(client, settings.temporal_task_queue, world)
        with TestClient(create_app(settings)) as http:
            await asyncio.to_thread(sign_in, http, "merchant1")
            await asyncio.to_thread(acknowledge, http)
            page = await wait_for_page(http, f"/m/cases/{case_id}")
            assert 'name="choice" value="rectified_now"' in page.text
            answered = await asyncio.to_thread(
                http.post, f"/m/cases/{case_id}/verify",
                data={"csrf_token": csrf_of(page.text), "choice": "rectified_now", "note": "已戴好工作帽"},
                files={"photo": ("fix.png", tiny_png(), "image/png")}, follow_redirects=False,
            )
            assert answered.status_code == 303, answered.text
            assert answered.headers["location"] == f"/m/cases/{case_id}?done=verified"
            shown = await asyncio.to_thread(http.get, answered.headers["location"])
            assert "您的答复已记录" in shown.text
            assert "待审核" in shown.text and 'name="choice"' not in shown.text
            assert "/evidence/" in shown.text  # the photo is shown among the case's evidence
            again = await asyncio.to_thread(
                http.post, f"/m/cases/{case_id}/verify",
                data={"csrf_token": csrf_of(shown.text), "choice": "unsubstantiated", "reason_code": "other",
                      "note": "再答一次"},
            )
            assert again.status_code == 409
        assert case_row(db_engine, case_id).status == "awaiting_review"
        [audited] = case_actions(db_engine)
        assert audited.target == f"case:{case_id}" and audited.username == "merchant1"
        await client.get_workflow_handle(case_id).terminate("test over")


async def wait_for_page(http: TestClient, path: str, timeout: float = 20.0) -> Response:
    """The case page once the workflow's first projection has landed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        response = await asyncio.to_thread(http.get, path)
        if response.status_code == 200 and "待核实" in response.text:
            return response
        if loop.time() > deadline:
            raise AssertionError(f"{path} not shown within {timeout} s: {response.status_code}")
        await asyncio.sleep(0.2)


def test_history_lists_closed_cases_with_their_outcome(browser_for: Browser, world: World, db_engine: Engine) -> None:
    with Session(db_engine, expire_on_commit=False) as session:
        case = add_case(session, world, "case-m1-done", merchant="m1", status="closed")
        case.outcome = "rectified"
        case.closed_at = T0 + timedelta(days=1)
        session.add(case)
        session.commit()
    page = browser_for("merchant1").get("/m/history")
    assert "case-m1-done" in page.text and "已整改" in page.text
    assert "case-m3-transferred" not in page.text
    with Session(db_engine) as session:
        assert session.exec(select(AlertCase).where(col(AlertCase.status) == "closed")).all()
