"""The street office's queue and case pages (Temporal is down here: actions must say so, readably)."""

from __future__ import annotations

from sqlalchemy import Engine, text
from sqlmodel import Session, select

from domain.audit.models import AuditEvent
from tests.api.conftest import World
from tests.web.conftest import csrf_of


def test_the_queue_shows_only_the_officers_street(browser_for, world: World) -> None:
    page = browser_for("officer1").get("/queue")
    assert page.status_code == 200
    assert "case-m1" in page.text and "case-m2" in page.text
    assert "case-m3" not in page.text
    assert "案件队列" in page.text and "待核实" in page.text


def test_the_command_center_sees_the_whole_district(browser_for, world: World) -> None:
    page = browser_for("command").get("/queue")
    assert all(case_id in page.text for case_id in ("case-m1", "case-m2", "case-m3"))


def test_quick_filters_really_filter(browser_for, world: World, db_engine: Engine) -> None:
    with db_engine.begin() as connection:
        connection.execute(text("UPDATE alert_case SET overdue = true WHERE case_id = 'case-m2'"))
    officer = browser_for("officer1")
    overdue = officer.get("/queue?overdue=1").text
    assert "case-m2" in overdue and "case-m1" not in overdue
    closed = officer.get("/queue?status=closed").text
    assert "case-m1" not in closed
    assert officer.get("/queue?status=nonsense").status_code == 422


def test_an_officer_saves_and_deletes_a_filter(browser_for, world: World) -> None:
    officer = browser_for("officer1")
    page = officer.get("/queue?overdue=1")
    saved = officer.post("/queue/filters", data={"csrf_token": csrf_of(page.text), "name": "我的超期",
                                                 "query": "overdue=1"})
    assert saved.status_code == 200 and "★ 我的超期" in saved.text
    assert "★ 我的超期" not in browser_for("officer2").get("/queue").text, "saved filters are personal"
    filter_id = saved.text.split('action="/queue/filters/')[1].split("/delete")[0]
    officer.post(f"/queue/filters/{filter_id}/delete", data={"csrf_token": csrf_of(saved.text)})
    assert "★ 我的超期" not in officer.get("/queue").text


def test_another_streets_case_is_a_403_page_and_is_audited(browser_for, world: World, db_engine: Engine) -> None:
    response = browser_for("officer1").get("/cases/case-m3")
    assert response.status_code == 403
    assert "<html" in response.text and "另一个街道" in response.text
    with Session(db_engine) as session:
        denied = session.exec(select(AuditEvent).where(AuditEvent.action == "permission_denied")).all()
    assert [(row.username, row.target) for row in denied] == [("officer1", "case:case-m3")]


def test_an_unknown_case_is_a_404_page(browser_for, world: World) -> None:
    response = browser_for("officer1").get("/cases/no-such-case")
    assert response.status_code == 404 and "<html" in response.text


def test_merchants_and_auditors_do_not_get_the_officer_pages(browser_for, world: World) -> None:
    assert browser_for("merchant1").get("/queue").status_code == 403
    assert browser_for("auditor").get("/cases/case-m1").status_code == 403
    assert browser_for("admin").get("/queue").status_code == 403


def test_the_case_page_shows_deadline_choices_computed_before_submit(browser_for, world: World) -> None:
    page = browser_for("officer1").get("/cases/case-m1")
    assert page.status_code == 200
    assert page.text.count('name="working_days"') >= 1
    assert "个工作日" in page.text and "截至" in page.text


def test_an_action_while_the_case_engine_is_down_is_a_readable_503(browser_for, world: World) -> None:
    officer = browser_for("officer1")
    page = officer.get("/cases/case-m1")
    response = officer.post("/cases/case-m1/set_deadline", data={"csrf_token": csrf_of(page.text), "working_days": 2})
    assert response.status_code == 503
    assert "Temporal" in response.text and 'class="flash error"' in response.text


def test_invalid_action_input_names_the_field_before_the_engine_is_asked(browser_for, world: World) -> None:
    officer = browser_for("officer1")
    page = officer.get("/cases/case-m1")
    response = officer.post("/cases/case-m1/set_deadline", data={"csrf_token": csrf_of(page.text), "working_days": 5})
    assert response.status_code == 422 and "working_days" in response.text
    response = officer.post("/cases/case-m1/transfer", data={"csrf_token": csrf_of(page.text), "reason": " "})
    assert response.status_code == 422 and "reason" in response.text


def test_an_action_without_the_csrf_token_is_refused(browser_for, world: World) -> None:
    response = browser_for("officer1").post("/cases/case-m1/comment", data={"text": "hello"})
    assert response.status_code == 403


def test_bulk_actions_answer_case_by_case(browser_for, world: World) -> None:
    officer = browser_for("officer1")
    page = officer.get("/queue")
    response = officer.post("/queue/bulk", data={"csrf_token": csrf_of(page.text), "action": "remind",
                                                 "case_ids": ["case-m1", "case-m3"]})
    assert response.status_code == 200
    rows = response.text.split("<tr>")
    m1 = next(row for row in rows if "case-m1" in row)
    m3 = next(row for row in rows if "case-m3" in row)
    assert "Temporal" in m1  # the engine is down: refused, said so
    assert "不是您的案件" in m3 or "Not a case of yours" in m3
    missing = officer.post("/queue/bulk", data={"csrf_token": csrf_of(page.text), "action": "transfer",
                                                "case_ids": ["case-m1"]})
    assert missing.status_code == 422


def test_evidence_of_another_street_is_not_served(browser_for, world: World) -> None:
    import uuid

    response = browser_for("officer1").get(f"/evidence/{uuid.uuid4()}?case=case-m3", follow_redirects=False)
    assert response.status_code == 404
    assert browser_for("auditor").get(f"/evidence/{uuid.uuid4()}?case=case-m1").status_code == 403
