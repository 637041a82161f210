"""The brigade's hand-off API (办法 第七条): who lists and reads which hand-offs (scope, 403, 404), the inbox order
and its keyset pages, malformed bodies (422 naming the field), Temporal down (503), and, on the real
AlertCaseWorkflow and EnforcementHandoffWorkflow with a real casework worker: transfer → accept → 立案 →
处罚决定 lands in the projection and in the originating case's timeline, refusals are 409 with the reason.

Merchants get 403 on every hand-off route, like administrators: the inbox is the authorities' working list,
and a merchant learns of the transfer from their own case.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session
from temporalio.client import Client
from temporalio.service import RPCError

from api.app import create_app
from api.routes.handoffs import DecisionBody
from domain.cases.handoffs import AWAITING_ACCEPTANCE, HandoffCursor
from domain.cases.models import EnforcementHandoff
from infra.worker import build_casework_worker
from tests.api.conftest import T0, World, add_case, api_settings_for, bearer_for
from tests.api.test_casework_end_to_end import open_real_case, wait_for_listing
from workflows.enforcement_handoff import HandoffStatus

pytestmark = pytest.mark.integration

SEEDED = "handoff-case-m3-transferred"  # conftest's: machang, awaiting acceptance, no deadline projected yet
# The inbox order for the district: awaiting acceptance by deadline (none last), then the rest newest first.
ALL_IN_ORDER = [
    "handoff-h-soon",
    "handoff-h-later",
    SEEDED,
    "handoff-h-closed",
    "handoff-h-accepted",
    "handoff-h-orphan",
]
YOUYILU = {"handoff-h-soon", "handoff-h-later", "handoff-h-closed"}
MACHANG = {SEEDED, "handoff-h-accepted", "handoff-h-orphan"}
PENALTY = {"kind": "penalty_decision", "amount_yuan": "1500.50", "document_no": "津河执罚决字〔2026〕第0012号"}


def add_handoff(
    session: Session,
    world: World,
    case_id: str,
    *,
    merchant: str,
    status: str,
    transferred_at: datetime,
    acceptance_due_at: datetime | None = None,
    overdue: bool = False,
    alert_type: str = "no_hat",
) -> EnforcementHandoff:
    add_case(session, world, case_id, merchant=merchant, status="closed", alert_type=alert_type, transferred=True)
    handoff = session.get(EnforcementHandoff, f"handoff-{case_id}")
    assert handoff is not None
    handoff.status = status
    handoff.transferred_at = transferred_at
    handoff.acceptance_due_at = acceptance_due_at
    handoff.overdue = overdue
    if status != AWAITING_ACCEPTANCE:
        handoff.accepted_by, handoff.accepted_at = "brigade", transferred_at + timedelta(hours=2)
    session.flush()
    return handoff


@pytest.fixture
def inbox(world: World, db_engine: Engine) -> Iterator[World]:
    """Hand-offs in every state on both streets, and one whose case record is missing."""
    with Session(db_engine, expire_on_commit=False) as session:
        add_handoff(
            session, world, "h-soon", merchant="m1", status=AWAITING_ACCEPTANCE, transferred_at=T0 + timedelta(days=1),
            acceptance_due_at=T0 + timedelta(days=4), alert_type="smoking",
        )
        add_handoff(
            session, world, "h-later", merchant="m2", status=AWAITING_ACCEPTANCE, transferred_at=T0 + timedelta(days=2),
            acceptance_due_at=T0 + timedelta(days=5),
        )
        add_handoff(
            session, world, "h-closed", merchant="m1", status=HandoffStatus.closed.value,
            transferred_at=T0 + timedelta(days=6), acceptance_due_at=T0 + timedelta(days=9), overdue=True,
        )
        add_handoff(
            session, world, "h-accepted", merchant="m3", status=HandoffStatus.accepted.value,
            transferred_at=T0 + timedelta(days=3), acceptance_due_at=T0 + timedelta(days=1),
        )
        shop = world.merchants["m3"]
        assert shop.id is not None
        session.add(
            EnforcementHandoff(
                handoff_id="handoff-h-orphan", version=3, case_id="h-orphan", merchant_id=shop.id,
                street_office_id=shop.street_office_id, status=HandoffStatus.case_opened.value, reason="屡查屡犯",
                transferred_by="officer2", transferred_at=T0, acceptance_due_at=T0 + timedelta(days=3),
            )
        )
        session.commit()
    yield world


def handoff_ids(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["handoff_id"] for item in response.json()["items"]]


# Reading, without Temporal


def test_the_workflow_and_the_read_model_agree_on_the_awaiting_status() -> None:
    assert HandoffStatus.awaiting_acceptance.value == AWAITING_ACCEPTANCE


def test_the_district_and_the_brigade_see_every_hand_off_in_inbox_order(api: TestClient, as_user, inbox) -> None:
    for username in ("brigade", "command", "auditor"):
        assert handoff_ids(api.get("/api/v1/handoffs", headers=as_user(username))) == ALL_IN_ORDER, username


def test_a_street_officer_sees_the_hand_offs_of_their_own_street(api: TestClient, as_user, inbox) -> None:
    youyilu = handoff_ids(api.get("/api/v1/handoffs", headers=as_user("officer1")))
    machang = handoff_ids(api.get("/api/v1/handoffs", headers=as_user("officer2")))
    assert youyilu == [h for h in ALL_IN_ORDER if h in YOUYILU]
    assert machang == [h for h in ALL_IN_ORDER if h in MACHANG]


def test_merchants_and_administrators_are_refused(api: TestClient, as_user, inbox) -> None:
    for username in ("merchant1", "merchant3", "admin"):
        for path in ("/api/v1/handoffs", f"/api/v1/handoffs/{SEEDED}", "/api/v1/handoffs/handoff-h-soon"):
            assert api.get(path, headers=as_user(username)).status_code == 403, (username, path)
    assert api.get("/api/v1/handoffs").status_code == 401


def test_an_item_carries_merchant_street_and_case(api: TestClient, as_user, inbox) -> None:
    items = {i["handoff_id"]: i for i in api.get("/api/v1/handoffs", headers=as_user("brigade")).json()["items"]}
    soon = items["handoff-h-soon"]
    assert soon["case_id"] == "h-soon"
    assert (soon["status"], soon["status_label"]) == ("awaiting_acceptance", "待受理")
    assert (soon["merchant_name"], soon["merchant_credit_code"]) == ("津味小馆", "92120103MA05TEST1A")
    assert (soon["street_office_code"], soon["street_office_name"]) == ("youyilu", "友谊路街市场监管所")
    assert soon["alert_type"] == "smoking" and soon["alert_type_label"]
    assert soon["case_summary"] == "津味小馆 smoking"
    assert datetime.fromisoformat(soon["acceptance_due_at"]) == T0 + timedelta(days=4)
    # The hand-off outlives its case: without the case record the line still shows, minus the case's fields.
    orphan = items["handoff-h-orphan"]
    assert (orphan["alert_type"], orphan["alert_type_label"], orphan["case_summary"]) == (None, None, None)
    assert orphan["merchant_name"] == "马场道西点烘焙坊" and orphan["status_label"] == "已立案"


def test_filters_by_status_and_overdue(api: TestClient, as_user, inbox) -> None:
    brigade = as_user("brigade")
    assert handoff_ids(api.get("/api/v1/handoffs?status=accepted", headers=brigade)) == ["handoff-h-accepted"]
    both = api.get("/api/v1/handoffs?status=accepted&status=case_opened", headers=brigade)
    assert handoff_ids(both) == ["handoff-h-accepted", "handoff-h-orphan"]
    assert handoff_ids(api.get("/api/v1/handoffs?overdue=true", headers=brigade)) == ["handoff-h-closed"]
    officer2 = as_user("officer2")
    assert handoff_ids(api.get("/api/v1/handoffs?status=awaiting_acceptance", headers=officer2)) == [SEEDED]
    assert api.get("/api/v1/handoffs?status=dismissed", headers=brigade).status_code == 422
    assert api.get("/api/v1/handoffs?limit=0", headers=brigade).status_code == 422


@pytest.mark.parametrize("limit", [1, 2, 4])
def test_keyset_pages_follow_the_inbox_order(api: TestClient, as_user, inbox, limit: int) -> None:
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(len(ALL_IN_ORDER) + 1):
        params: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        response = api.get("/api/v1/handoffs", headers=as_user("brigade"), params=params)
        seen += handoff_ids(response)
        cursor = response.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == ALL_IN_ORDER


def test_a_cursor_not_given_out_is_422(api: TestClient, as_user, inbox) -> None:
    naive = base64.urlsafe_b64encode(json.dumps({"g": 0, "d": None, "t": "2026-12-01T09:00:00", "h": "x"}).encode())
    assert HandoffCursor.decode(HandoffCursor(0, None, T0, "x").encode()).transferred_at == T0
    for cursor in ("garbage", naive.decode()):
        response = api.get("/api/v1/handoffs", headers=as_user("brigade"), params={"cursor": cursor})
        assert response.status_code == 422, cursor
        assert "cursor" in response.json()["detail"]


def test_detail_outside_ones_scope_is_404_like_an_unknown_id(api: TestClient, as_user, inbox) -> None:
    unknown = api.get("/api/v1/handoffs/handoff-nope", headers=as_user("brigade"))
    assert unknown.status_code == 404
    assert unknown.json() == {"detail": "no hand-off 'handoff-nope'"}
    outside = api.get("/api/v1/handoffs/handoff-h-soon", headers=as_user("officer2"))
    assert outside.status_code == 404
    assert outside.json() == {"detail": "no hand-off 'handoff-h-soon'"}
    # The brigade's actions on an unknown id: 404 before Temporal is asked.
    assert api.post("/api/v1/handoffs/handoff-nope/accept", headers=as_user("brigade"), json={}).status_code == 404


def test_detail_from_the_projection_while_temporal_is_down(api: TestClient, as_user, inbox) -> None:
    response = api.get("/api/v1/handoffs/handoff-h-soon", headers=as_user("officer1"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["handoff"]["merchant_name"] == "津味小馆"
    assert body["state"]["source"] == "projection" and body["live"] is None
    assert (body["state"]["status"], body["state"]["status_label"]) == ("awaiting_acceptance", "待受理")
    assert body["state"]["decisions"] == []


# Acting, without Temporal: roles and bodies are settled before any workflow is asked.


@pytest.mark.parametrize(
    ("action", "body"), [("accept", {"note": "收到"}), ("decision", {"kind": "case_opened", "note": "立案调查"})]
)
def test_only_the_brigade_acts(api: TestClient, as_user, inbox, action: str, body: dict[str, Any]) -> None:
    for username in ("officer1", "officer2", "command", "auditor", "merchant1", "admin"):
        response = api.post(f"/api/v1/handoffs/handoff-h-soon/{action}", headers=as_user(username), json=body)
        assert response.status_code == 403, (username, response.text)
    # Past the role check the brigade reaches for Temporal, which is down.
    response = api.post(f"/api/v1/handoffs/handoff-h-soon/{action}", headers=as_user("brigade"), json=body)
    assert response.status_code == 503, response.text
    assert int(response.headers["retry-after"]) > 0


@pytest.mark.parametrize(
    ("action", "body", "field"),
    [
        ("decision", {}, "kind"),
        ("decision", {"kind": "dismissed"}, "kind"),
        ("decision", {"kind": "penalty_decision", "amount_yuan": "1500"}, "document_no"),
        ("decision", {"kind": "penalty_decision", "document_no": "津河执罚决字〔2026〕第1号"}, "amount_yuan"),
        ("decision", {**PENALTY, "amount_yuan": "-5"}, "amount_yuan"),
        ("decision", {**PENALTY, "amount_yuan": "12.345"}, "amount_yuan"),
        ("decision", {**PENALTY, "amount_yuan": "1e3"}, "amount_yuan"),
        ("decision", {**PENALTY, "amount_yuan": 1500}, "amount_yuan"),  # a decimal string, never a float
        ("decision", {**PENALTY, "document_no": "   "}, "document_no"),
        ("decision", {**PENALTY, "document_no": "号" * 65}, "document_no"),
        ("decision", {"kind": "not_opened"}, "note"),
        ("decision", {"kind": "not_opened", "note": "  "}, "note"),
        ("decision", {"kind": "case_opened", "amount_yuan": "10"}, "amount_yuan"),
        ("decision", {"kind": "not_opened", "note": "证据不足", "document_no": "x"}, "document_no"),
        ("decision", {"kind": "case_opened", "note": "x" * 2001}, "note"),
        ("accept", {"note": "x" * 2001}, "note"),
    ],
)
def test_malformed_bodies_are_422_naming_the_field(
    api: TestClient, as_user, inbox, action: str, body: dict[str, Any], field: str
) -> None:
    response = api.post(f"/api/v1/handoffs/handoff-h-soon/{action}", headers=as_user("brigade"), json=body)
    assert response.status_code == 422, response.text
    assert field in response.text


def test_the_fine_in_yuan_becomes_exact_fen() -> None:
    for yuan, fen in (("1500.50", 150050), ("0", 0), ("0.01", 1), ("999999999.99", 99999999999), ("20.1", 2010)):
        assert DecisionBody.model_validate({**PENALTY, "amount_yuan": yuan}).amount_fen() == fen
    assert DecisionBody.model_validate({"kind": "case_opened"}).amount_fen() is None
    assert DecisionBody.model_validate({**PENALTY, "document_no": "  津河执罚〔2026〕3号 "}).document_no == (
        "津河执罚〔2026〕3号"
    )


# On the real workflows, with a Temporal dev server and the casework worker.


async def wait_for_handoff(http: TestClient, headers: dict[str, str], handoff_id: str, timeout: float = 20.0) -> None:
    """Until the hand-off workflow has projected itself with its acceptance deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        response = await asyncio.to_thread(http.get, f"/api/v1/handoffs/{handoff_id}", headers=headers)
        if response.status_code == 200 and response.json()["handoff"]["acceptance_due_at"]:
            return
        if loop.time() > deadline:
            raise AssertionError(f"hand-off {handoff_id} not projected within {timeout} s: {response.text}")
        await asyncio.sleep(0.1)


@pytest.mark.slow
async def test_transfer_accept_open_and_penalise_on_the_real_workflows(
    temporal_dev_server: str, database_url: str, tmp_path: Path, db_engine: Engine, world: World
) -> None:
    settings = api_settings_for(
        database_url, tmp_path, temporal_address=temporal_dev_server,
        temporal_task_queue=f"handoff-api-{uuid.uuid4().hex[:8]}",
    )
    brigade = bearer_for(settings, world.users["brigade"])
    officer = bearer_for(settings, world.users["officer1"])
    other_officer = bearer_for(settings, world.users["officer2"])
    client = await Client.connect(temporal_dev_server)
    async with build_casework_worker(client, settings):
        case_id = await open_real_case(client, settings.temporal_task_queue, world)
        handoff_id = f"handoff-{case_id}"
        try:
            with TestClient(create_app(settings)) as http:

                def post(path: str, headers: dict[str, str], body: dict[str, Any]) -> Any:
                    return asyncio.to_thread(http.post, f"/api/v1{path}", headers=headers, json=body)

                await wait_for_listing(http, officer, case_id)
                transferred = await post(f"/cases/{case_id}/transfer", officer, {"reason": "拒不整改"})
                assert transferred.status_code == 200, transferred.text
                await wait_for_handoff(http, brigade, handoff_id)

                listed = await asyncio.to_thread(http.get, "/api/v1/handoffs", headers=brigade)
                [line] = [i for i in listed.json()["items"] if i["handoff_id"] == handoff_id]
                assert (line["case_id"], line["reason"], line["transferred_by"]) == (case_id, "拒不整改", "officer1")
                assert line["status"] == "awaiting_acceptance" and line["alert_type"] == "no_hat"
                assert (await asyncio.to_thread(http.get, f"/api/v1/handoffs/{handoff_id}", headers=other_officer)
                        ).status_code == 404

                # Before acceptance the real validator refuses a decision, and the API passes its reason on.
                early = await post(f"/handoffs/{handoff_id}/decision", brigade, {"kind": "case_opened"})
                assert early.status_code == 409, early.text
                assert early.json()["detail"] == "移交案件当前状态为「待受理」，不能记录「立案」"
                assert (await post(f"/handoffs/{handoff_id}/accept", officer, {})).status_code == 403

                accepted = await post(f"/handoffs/{handoff_id}/accept", brigade, {"note": "已指派一中队", "actor": {}})
                assert accepted.status_code == 200, accepted.text
                assert (accepted.json()["status"], accepted.json()["status_label"]) == ("accepted", "已受理")
                assert accepted.json()["accepted_by"] == "brigade"
                live = (await asyncio.to_thread(http.get, f"/api/v1/handoffs/{handoff_id}", headers=brigade)).json()
                assert (live["state"]["source"], live["state"]["status"]) == ("workflow", "accepted")
                assert live["live"]["handoff_id"] == handoff_id and live["live"]["acceptance_deadline"]["met"] is True
                assert live["handoff"]["accepted_by"] == "brigade"  # projected before the update answered
                again = await post(f"/handoffs/{handoff_id}/accept", brigade, {})
                assert again.status_code == 409 and "已受理" in again.json()["detail"]
                # A penalty needs a case opened first.
                too_soon = await post(f"/handoffs/{handoff_id}/decision", brigade, PENALTY)
                assert too_soon.status_code == 409 and "处罚决定" in too_soon.json()["detail"]

                opened = await post(f"/handoffs/{handoff_id}/decision", brigade, {"kind": "case_opened"})
                assert opened.status_code == 200 and opened.json()["status"] == "case_opened", opened.text
                penalised = await post(f"/handoffs/{handoff_id}/decision", brigade, PENALTY)
                assert penalised.status_code == 200, penalised.text
                state = penalised.json()
                assert (state["status"], state["status_label"]) == ("closed", "已办结")
                assert [d["kind"] for d in state["decisions"]] == ["case_opened", "penalty_decision"]
                last = state["decisions"][-1]
                assert (last["amount_fen"], last["document_no"], last["label"]) == (
                    150050, PENALTY["document_no"], "处罚决定",
                )

                # The projection, as the officer of the street that transferred it reads it.
                detail = (await asyncio.to_thread(http.get, f"/api/v1/handoffs/{handoff_id}", headers=officer)).json()
                projected = detail["handoff"]
                assert (projected["status"], projected["accepted_by"]) == ("closed", "brigade")
                assert projected["decision"]["kind"] == "penalty_decision"
                assert (projected["decision"]["amount_fen"], projected["decision"]["document_no"]) == (
                    150050, PENALTY["document_no"],
                )
                assert [d["kind"] for d in projected["decision"]["history"]] == ["case_opened", "penalty_decision"]
                assert [d["kind"] for d in detail["state"]["decisions"]] == ["case_opened", "penalty_decision"]

                # Fed back into the originating case's timeline.
                case = (await asyncio.to_thread(http.get, f"/api/v1/cases/{case_id}", headers=officer)).json()
                timeline = {event["kind"]: event for event in case["timeline"]}
                assert {"transferred", "handoff_received", "handoff_accepted", "handoff_case_opened",
                        "handoff_penalty_decision"} <= set(timeline)
                penalty_line = timeline["handoff_penalty_decision"]
                assert penalty_line["actor"] == "brigade"
                assert PENALTY["document_no"] in penalty_line["summary"] and "1,500.50" in penalty_line["summary"]
                assert penalty_line["payload"]["amount_fen"] == 150050

                # Settled: the workflow has finished, and nothing more is recorded.
                late = await post(f"/handoffs/{handoff_id}/decision", brigade, {"kind": "not_opened", "note": "x"})
                assert late.status_code == 409, late.text
                assert "takes no more actions" in late.json()["detail"]
        finally:
            for workflow_id in (handoff_id, case_id):
                with contextlib.suppress(RPCError):  # already finished
                    await client.get_workflow_handle(workflow_id).terminate("test over")
