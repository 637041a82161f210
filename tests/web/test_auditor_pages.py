"""The auditor's pages: the district's cases read-only (filters, detail with deadline provenance, evidence digests,
hand-off and decisions) and the audit log with filters that really filter; nobody else gets in, and the auditor
cannot post anything."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from domain.audit.models import AuditAction
from domain.audit.service import AuditContext, record_audit
from domain.cases.models import Alert, AlertCase, CaseEvent, EnforcementHandoff
from domain.evidence.models import Evidence
from tests.api.conftest import PASSWORD, T0, World
from tests.web.conftest import csrf_of

SHA256 = "a" * 64
SM3 = "b" * 64


@pytest.fixture
def auditor(browser_for: Callable[[str], TestClient]) -> TestClient:
    return browser_for("auditor")


def failed_sign_in(client: TestClient, username: str) -> None:
    page = client.get("/login")
    response = client.post("/login", data={"username": username, "password": "wrong-Password1",
                                           "csrf_token": csrf_of(page.text)}, follow_redirects=False)
    assert response.status_code == 401


def with_evidence_and_decision(engine: Engine, world: World) -> None:
    """case-m3-transferred gets a snapshot, deadlines with provenance, a timeline line and a recorded decision."""
    with Session(engine) as session:
        evidence = Evidence(
            id=uuid.uuid4(), bucket="sunshine-evidence", key=f"sha256/{SHA256}", sha256=SHA256, sm3=SM3, size=2048,
            content_type="image/jpeg", stored_at=T0, retain_until=T0 + timedelta(days=3650),
            collection_method="ai_capture",
        )
        session.add(evidence)
        session.flush()
        camera, merchant = world.cameras["m3"], world.merchants["m3"]
        session.add(Alert(
            id=uuid.uuid4(), source="device:test", event_id="evt-1", camera_id=camera.id, merchant_id=merchant.id,
            street_office_id=merchant.street_office_id, alert_type="no_hat", captured_at=T0, score=0.9,
            snapshot_evidence_id=evidence.id, case_id="case-m3-transferred",
        ))
        case = session.get(AlertCase, "case-m3-transferred")
        assert case is not None
        case.deadlines = {
            "verification": {"due_at": (T0 + timedelta(hours=24)).isoformat(), "rule": "clock_hours", "amount": 24,
                             "calendar_versions": [], "provisional": False, "provenance": "24 clock hours",
                             "met": False},
            "rectification": {"due_at": (T0 + timedelta(days=5)).isoformat(), "rule": "working_days", "amount": 3,
                              "calendar_versions": ["cn-holidays-2026@v3"], "provisional": True,
                              "provenance": "3 working days after 2026-12-01", "met": None},
        }
        session.add(case)
        session.add(CaseEvent(case_id="case-m3-transferred", seq=1_000_002, at=T0 + timedelta(days=3),
                              kind="handoff_penalty_decision", actor="brigade", summary="处罚决定：罚款 1,500.50 元"))
        handoff = session.get(EnforcementHandoff, "handoff-case-m3-transferred")
        assert handoff is not None
        decision = {"kind": "penalty_decision", "by": "brigade", "at": (T0 + timedelta(days=3)).isoformat(),
                    "note": "", "amount_fen": 150050, "document_no": "津河执罚决字〔2026〕第0012号"}
        handoff.decision = {**decision, "history": [decision]}
        handoff.status = "closed"
        session.add(handoff)
        session.commit()


def test_only_the_auditor_gets_in(browser_for: Callable[[str], TestClient], world: World) -> None:
    for username in ("merchant1", "officer1", "brigade", "command", "admin"):
        client = browser_for(username)
        for path in ("/audit", "/audit/log", "/audit/cases/case-m1"):
            assert client.get(path).status_code == 403, (username, path)


def test_the_auditor_posts_nothing(auditor: TestClient, world: World) -> None:
    token = csrf_of(auditor.get("/audit").text)
    for path in ("/brigade/handoffs/handoff-case-m3-transferred/accept",
                 "/brigade/handoffs/handoff-case-m3-transferred/decision",
                 "/admin/users", "/admin/users/officer1/disable", "/admin/devices"):
        response = auditor.post(path, data={"csrf_token": token, "kind": "case_opened", "username": "x",
                                            "role": "auditor", "name": "x"})
        assert response.status_code == 403, (path, response.status_code)
    assert "<form method=\"post\"" not in auditor.get("/audit").text.split("</header>", 1)[1]


def test_the_case_list_covers_the_district_and_filters(auditor: TestClient, world: World) -> None:
    page = auditor.get("/audit")
    assert page.status_code == 200, page.text
    for case_id in ("case-m1", "case-m2", "case-m3", "case-m3-transferred"):
        assert f"/audit/cases/{case_id}" in page.text
    machang = auditor.get("/audit?office=machang").text
    assert "/audit/cases/case-m3\"" in machang and "/audit/cases/case-m1\"" not in machang
    closed = auditor.get("/audit?status=closed").text
    assert "/audit/cases/case-m3-transferred" in closed and "/audit/cases/case-m1\"" not in closed
    text = auditor.get("/audit?q=粤珍").text
    assert "/audit/cases/case-m2" in text and "/audit/cases/case-m1\"" not in text
    assert "/audit/cases/" not in auditor.get("/audit?alert_type=smoking").text
    assert auditor.get("/audit?status=nonsense").status_code == 422
    assert auditor.get("/audit?cursor=garbage").status_code == 422


def test_the_case_page_shows_deadline_provenance_digests_and_decisions(
    auditor: TestClient, world: World, db_engine: Engine
) -> None:
    with_evidence_and_decision(db_engine, world)
    page = auditor.get("/audit/cases/case-m3-transferred")
    assert page.status_code == 200, page.text
    text = page.text
    assert SHA256 in text and SM3 in text
    assert "/evidence/" not in text  # digests, not pictures
    assert "cn-holidays-2026@v3" in text and "3 working days after 2026-12-01" in text and "暂定" in text
    assert "24 小时" in text and "3 个工作日" in text
    assert "津河执罚决字〔2026〕第0012号" in text and "1500.50" in text
    assert "处罚决定：罚款 1,500.50 元" in text
    assert "逾期未整改" in text  # the transfer's reason
    assert auditor.get("/audit/cases/case-nope").status_code == 404


def test_the_audit_log_filters_really_filter(auditor: TestClient, world: World, db_engine: Engine) -> None:
    # The auditor's own sign-in is in the log already; add a failure for officer1 and a success for merchant1.
    failed_sign_in(TestClient(auditor.app), "officer1")
    other = TestClient(auditor.app)
    page = other.get("/login")
    other.post("/login", data={"username": "merchant1", "password": PASSWORD, "csrf_token": csrf_of(page.text)})

    def rows(query: str) -> str:
        response = auditor.get(f"/audit/log{query}")
        assert response.status_code == 200, response.text
        return response.text.split("<tbody>", 1)[1].split("</tbody>", 1)[0]

    everything = rows("")
    assert "officer1" in everything and "merchant1" in everything and "auditor" in everything
    failures = rows("?action=sign_in_failed")
    assert "officer1" in failures and "merchant1" not in failures and "auditor" not in failures
    merchant = rows("?username=merchant1")
    assert "merchant1" in merchant and "officer1" not in merchant
    by_outcome = rows("?outcome=failure")
    assert "officer1" in by_outcome and "merchant1" not in by_outcome
    assert "officer1" not in rows("?action=signed_in")

    beijing_today = (datetime.now(UTC) + timedelta(hours=8)).date()
    assert "officer1" in rows(f"?date_from={beijing_today}&date_to={beijing_today}")
    assert "officer1" not in rows(f"?date_to={beijing_today - timedelta(days=1)}")
    assert "officer1" not in rows(f"?date_from={beijing_today + timedelta(days=1)}")
    assert auditor.get("/audit/log?date_from=yesterday").status_code == 422
    assert auditor.get("/audit/log?action=nonsense").status_code == 422


def test_the_audit_log_pages_newest_first(auditor: TestClient, world: World, db_engine: Engine) -> None:
    with Session(db_engine) as session:
        for n in range(60):
            record_audit(session, context=AuditContext(username=f"bulk{n:02d}"), action=AuditAction.signed_out)
        session.commit()
    first = auditor.get("/audit/log?action=signed_out").text
    assert "bulk59" in first and "bulk10" in first and "bulk09" not in first
    assert first.index("bulk59") < first.index("bulk58")
    next_link = first.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0].replace("&amp;", "&")
    assert "action=signed_out" in next_link
    second = auditor.get(next_link).text
    assert "bulk09" in second and "bulk00" in second and "bulk10" not in second
    assert 'rel="next"' not in second
