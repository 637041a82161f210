"""The brigade's inbox in the browser: who may open it, what it lists, the hand-off page with evidence, advice and
timeline, the forms' validation (422 naming the field, before the engine is asked), Temporal down (503 page), and
on the real workflows: transfer, then accept, 立案 and 处罚决定 through the pages, fed back into the case timeline."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from api.app import create_app
from domain.audit.models import AuditEvent
from domain.cases.models import AlertCase, CaseEvent, EnforcementHandoff
from tests.api.conftest import T0, World, api_settings_for, bearer_for
from tests.web.conftest import csrf_of, sign_in

SEEDED = "handoff-case-m3-transferred"
DOCUMENT_NO = "津河执罚决字〔2026〕第0012号"

ADVICE = {
    "recommendation": "lighter",
    "recommendation_label": "从轻",
    "rule": "repeat",
    "table_row": 3,
    "articles": ["《食品安全法》第一百二十六条"],
    "conditions": ["24个月内同类违法 1 次"],
    "missing_facts": ["harm"],
    "sanction": "警告；拒不改正的，处五千元以上五万元以下罚款",
    "fine_range": "5,000–50,000 元",
    "explanation": "首次以外的同类违法，已整改。",
    "facts": {"alert_type": "no_hat", "legal_basis": "《餐饮服务食品安全操作规范》", "prior_same_type_24m": 1,
              "rectified": True},
    "three_penalties_flag": True,
    "label": "建议，由执法人员决定",
}


@pytest.fixture
def brigade(browser_for: Callable[[str], TestClient]) -> TestClient:
    return browser_for("brigade")


def with_advice_and_timeline(engine: Engine, case_id: str = "case-m3-transferred") -> None:
    with Session(engine) as session:
        case = session.get(AlertCase, case_id)
        assert case is not None
        case.disposition = ADVICE
        case.deadlines = {"verification": {"due_at": (T0 + timedelta(hours=24)).isoformat(), "rule": "clock_hours",
                                           "amount": 24, "calendar_versions": ["cn-2026"], "provisional": False,
                                           "provenance": "24h", "met": True}}
        session.add(case)
        session.add(CaseEvent(case_id=case_id, seq=1, at=T0, kind="opened", actor="system", summary="预警立案跟踪"))
        session.add(CaseEvent(case_id=case_id, seq=2, at=T0 + timedelta(days=2), kind="transferred",
                              actor="officer2", summary="移交综合行政执法支队：逾期未整改"))
        session.commit()


# Who may open it


def test_merchants_officers_and_admins_get_a_403_page(browser_for: Callable[[str], TestClient], world: World) -> None:
    for username in ("merchant1", "officer1", "auditor", "admin"):
        client = browser_for(username)
        for path in ("/brigade", f"/brigade/handoffs/{SEEDED}"):
            response = client.get(path)
            assert response.status_code == 403, (username, path)
            assert "<html" in response.text


def test_the_inbox_lists_the_transferred_case(brigade: TestClient, world: World) -> None:
    page = brigade.get("/brigade")
    assert page.status_code == 200, page.text
    assert f"/brigade/handoffs/{SEEDED}" in page.text
    assert "马场道西点烘焙坊" in page.text and "马场街市场监管所" in page.text
    assert "逾期未整改" in page.text and "待受理" in page.text


def test_the_inbox_filters_by_status_and_pages(
    brigade: TestClient, world: World, db_engine: Engine
) -> None:
    assert SEEDED not in brigade.get("/brigade?status=closed").text
    assert SEEDED in brigade.get("/brigade?status=awaiting_acceptance").text
    assert brigade.get("/brigade?status=dismissed").status_code == 422
    assert brigade.get("/brigade?cursor=garbage").status_code == 422
    with Session(db_engine) as session:
        seeded = session.get(EnforcementHandoff, SEEDED)
        assert seeded is not None
        for n in range(55):
            session.add(EnforcementHandoff(
                handoff_id=f"handoff-extra-{n:02d}", version=1, case_id=f"extra-{n}", merchant_id=seeded.merchant_id,
                street_office_id=seeded.street_office_id, status="closed", reason=f"extra {n}",
                transferred_by="officer2", transferred_at=T0 - timedelta(hours=n + 1),
            ))
        session.commit()
    first = brigade.get("/brigade")
    assert SEEDED in first.text and "handoff-extra-48" in first.text and "handoff-extra-49" not in first.text
    assert 'rel="next"' in first.text
    next_link = first.text.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0].replace("&amp;", "&")
    second = brigade.get(next_link)
    assert second.status_code == 200
    assert "handoff-extra-49" in second.text and "handoff-extra-54" in second.text and SEEDED not in second.text


def test_the_command_center_reads_without_forms(browser_for: Callable[[str], TestClient], world: World) -> None:
    command = browser_for("command")
    assert SEEDED in command.get("/brigade").text
    page = command.get(f"/brigade/handoffs/{SEEDED}")
    assert page.status_code == 200
    assert "/accept" not in page.text and "/decision" not in page.text
    token = csrf_of(page.text)  # the sign-out form's
    refused = command.post(f"/brigade/handoffs/{SEEDED}/accept", data={"csrf_token": token, "note": "x"})
    assert refused.status_code == 403


def test_the_hand_off_page_shows_advice_evidence_and_timeline(
    brigade: TestClient, world: World, db_engine: Engine
) -> None:
    with_advice_and_timeline(db_engine)
    page = brigade.get(f"/brigade/handoffs/{SEEDED}")
    assert page.status_code == 200, page.text
    text = page.text
    assert "从轻" in text and "《食品安全法》第一百二十六条" in text and "《餐饮服务食品安全操作规范》" in text
    assert "建议，由执法人员决定" in text and "24个月内同类违法 1 次" in text
    assert "移交综合行政执法支队：逾期未整改" in text
    assert f"/brigade/handoffs/{SEEDED}/accept" in text
    assert "/decision" not in text  # nothing to decide before acceptance


def test_an_unknown_hand_off_is_a_404_page(brigade: TestClient, world: World) -> None:
    response = brigade.get("/brigade/handoffs/handoff-nope")
    assert response.status_code == 404
    assert "<html" in response.text
    token = csrf_of(brigade.get("/brigade").text)
    assert brigade.post("/brigade/handoffs/handoff-nope/accept", data={"csrf_token": token}).status_code == 404


# Acting without Temporal


@pytest.mark.parametrize(
    ("form", "field_label"),
    [
        ({}, "执法决定"),
        ({"kind": "dismissed"}, "执法决定"),
        ({"kind": "penalty_decision", "amount_yuan": "1500"}, "处罚决定书文号"),
        ({"kind": "penalty_decision", "document_no": DOCUMENT_NO}, "罚款金额"),
        ({"kind": "penalty_decision", "document_no": DOCUMENT_NO, "amount_yuan": "-5"}, "罚款金额"),
        ({"kind": "penalty_decision", "document_no": DOCUMENT_NO, "amount_yuan": "12.345"}, "罚款金额"),
        ({"kind": "penalty_decision", "document_no": "号" * 65, "amount_yuan": "1"}, "处罚决定书文号"),
        ({"kind": "not_opened", "note": "   "}, "决定说明"),
        ({"kind": "case_opened", "amount_yuan": "10"}, "罚款金额"),
        ({"kind": "case_opened", "note": "x" * 2001}, "决定说明"),
    ],
)
def test_a_decision_form_with_problems_is_a_422_page_naming_the_field(
    brigade: TestClient, world: World, db_engine: Engine, form: dict[str, str], field_label: str
) -> None:
    token = csrf_of(brigade.get(f"/brigade/handoffs/{SEEDED}").text)
    response = brigade.post(f"/brigade/handoffs/{SEEDED}/decision", data={"csrf_token": token, **form})
    assert response.status_code == 422, response.text
    error = response.text.split('class="flash error"')[1].split("</div>")[0]
    assert field_label in error
    if form.get("note"):
        assert form["note"] in response.text  # what was typed is kept


def test_with_temporal_down_actions_answer_a_readable_503_page(
    brigade: TestClient, world: World, db_engine: Engine
) -> None:
    token = csrf_of(brigade.get(f"/brigade/handoffs/{SEEDED}").text)
    accepted = brigade.post(f"/brigade/handoffs/{SEEDED}/accept", data={"csrf_token": token, "note": "已指派一中队"})
    assert accepted.status_code == 503
    assert "案件引擎" in accepted.text and "已指派一中队" in accepted.text
    assert int(accepted.headers["retry-after"]) > 0
    decided = brigade.post(f"/brigade/handoffs/{SEEDED}/decision", data={
        "csrf_token": token, "kind": "penalty_decision", "amount_yuan": "1500.50", "document_no": DOCUMENT_NO})
    assert decided.status_code == 503 and "案件引擎" in decided.text
    with Session(db_engine) as session:
        assert not session.exec(select(AuditEvent).where(AuditEvent.action == "handoff_action")).all()


def test_a_form_without_the_csrf_token_is_refused(brigade: TestClient, world: World) -> None:
    response = brigade.post(f"/brigade/handoffs/{SEEDED}/accept", data={"note": "x"})
    assert response.status_code == 403


# On the real workflows


@pytest.mark.integration
@pytest.mark.slow
async def test_accept_open_and_penalise_through_the_pages(
    temporal_dev_server: str, database_url: str, tmp_path: Path, db_engine: Engine, world: World
) -> None:
    from temporalio.client import Client
    from temporalio.service import RPCError

    from infra.worker import build_casework_worker
    from tests.api.test_casework_end_to_end import open_real_case, wait_for_listing
    from tests.api.test_handoffs import wait_for_handoff

    settings = api_settings_for(
        database_url, tmp_path, temporal_address=temporal_dev_server,
        temporal_task_queue=f"handoff-pages-{uuid.uuid4().hex[:8]}",
    )
    officer = bearer_for(settings, world.users["officer1"])
    brigade_token = bearer_for(settings, world.users["brigade"])
    client = await Client.connect(temporal_dev_server)
    async with build_casework_worker(client, settings):
        case_id = await open_real_case(client, settings.temporal_task_queue, world)
        handoff_id = f"handoff-{case_id}"
        try:
            with TestClient(create_app(settings)) as http:
                await wait_for_listing(http, officer, case_id)
                transferred = await asyncio.to_thread(
                    http.post, f"/api/v1/cases/{case_id}/transfer", headers=officer, json={"reason": "拒不整改"})
                assert transferred.status_code == 200, transferred.text
                await wait_for_handoff(http, brigade_token, handoff_id)

                browser = TestClient(http.app, base_url="http://testserver")
                await asyncio.to_thread(sign_in, browser, "brigade")

                def post(action: str, data: dict[str, Any]) -> Any:
                    page = browser.get(f"/brigade/handoffs/{handoff_id}")
                    return browser.post(f"/brigade/handoffs/{handoff_id}/{action}",
                                        data={"csrf_token": csrf_of(page.text), **data}, follow_redirects=False)

                too_early = await asyncio.to_thread(post, "decision", {"kind": "case_opened"})
                assert too_early.status_code == 409 and "待受理" in too_early.text

                accepted = await asyncio.to_thread(post, "accept", {"note": "已指派一中队"})
                assert accepted.status_code == 303, accepted.text
                assert accepted.headers["location"] == f"/brigade/handoffs/{handoff_id}?done=accepted"
                shown = await asyncio.to_thread(browser.get, accepted.headers["location"])
                assert "已受理" in shown.text and 'class="flash ok"' in shown.text

                opened = await asyncio.to_thread(post, "decision", {"kind": "case_opened", "note": "立案调查"})
                assert opened.status_code == 303, opened.text
                penalised = await asyncio.to_thread(post, "decision", {
                    "kind": "penalty_decision", "amount_yuan": "1500.50", "document_no": DOCUMENT_NO, "note": ""})
                assert penalised.status_code == 303, penalised.text
                final = await asyncio.to_thread(browser.get, f"/brigade/handoffs/{handoff_id}")
                assert DOCUMENT_NO in final.text and "1500.50" in final.text and "已办结" in final.text
                browser.close()

                case = (await asyncio.to_thread(http.get, f"/api/v1/cases/{case_id}", headers=officer)).json()
                kinds = {event["kind"]: event for event in case["timeline"]}
                assert {"handoff_accepted", "handoff_case_opened", "handoff_penalty_decision"} <= set(kinds)
                assert DOCUMENT_NO in kinds["handoff_penalty_decision"]["summary"]
            with Session(db_engine) as session:
                audited = session.exec(select(AuditEvent).where(AuditEvent.action == "handoff_action")).all()
                assert [(e.outcome, e.detail["update"]) for e in audited] == [
                    ("failure", "record_decision"), ("success", "accept"), ("success", "record_decision"),
                    ("success", "record_decision"),
                ]
        finally:
            for workflow_id in (handoff_id, case_id):
                with contextlib.suppress(RPCError):
                    await client.get_workflow_handle(workflow_id).terminate("test over")
