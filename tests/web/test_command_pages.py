"""The district command center's overview and its read-only drill-down into one street office's queue."""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import get_args
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event
from sqlmodel import Session

from api.web import command_pages
from domain.cases.models import Alert, AlertCase
from domain.cases.stats import CLOSED_STATUS, OPEN_STATUSES
from domain.evidence.models import Evidence
from domain.merchants.models import StreetOffice
from tests.api.conftest import World, add_case

Browser = Callable[[str], TestClient]
SVG = re.compile(r"<svg\b.*?</svg>", re.DOTALL)
SVG_NS = "{http://www.w3.org/2000/svg}"
FORBIDDEN_ZH = "您的角色无权访问此页面。"


def office_row(html: str, code: str) -> str:
    match = re.search(rf'<tr data-office="{re.escape(code)}">(.*?)</tr>', html, re.DOTALL)
    assert match, f"no row for office {code!r}"
    return match.group(1)


def cell(row: str, attribute: str) -> int:
    """The number in a cell marked ``attribute`` (``data-status="…"``, ``data-total``, ``data-overdue``)."""
    match = re.search(rf"<td[^>]*\b{attribute}[^>]*>(?:<a [^>]*>)?(?:<span [^>]*>)?(\d+)<", row)
    assert match, f"no cell {attribute} in {row}"
    return int(match.group(1))


def kpi(html: str, name: str) -> str:
    match = re.search(rf'data-kpi="{name}">.*?<div class="kpi">([^<]*)</div>', html, re.DOTALL)
    assert match, f"no KPI tile {name}"
    return match.group(1)


def svgs(html: str) -> list[ET.Element]:
    return [ET.fromstring(fragment) for fragment in SVG.findall(html)]


def case_ids(html: str) -> set[str]:
    return set(re.findall(r'<tr data-case="([^"]+)">', html))


def add_alert(session: Session, world: World, merchant: str, *, captured_at: datetime) -> None:
    shop, camera = world.merchants[merchant], world.cameras[merchant]
    assert shop.id is not None and camera.id is not None
    digest = uuid.uuid4().hex * 2
    evidence = Evidence(
        id=uuid.uuid4(),
        bucket="evidence",
        key=f"sha256/{digest}",
        sha256=digest,
        sm3=digest,
        size=1,
        content_type="image/jpeg",
        stored_at=captured_at,
        retain_until=captured_at + timedelta(days=1095),
        collection_method="ai_capture",
    )
    session.add(evidence)
    session.flush()
    session.add(
        Alert(
            id=uuid.uuid4(),
            source="device:test",
            event_id=uuid.uuid4().hex,
            camera_id=camera.id,
            merchant_id=shop.id,
            street_office_id=shop.street_office_id,
            alert_type="no_hat",
            captured_at=captured_at,
            score=0.9,
            snapshot_evidence_id=evidence.id,
        )
    )


def mark_overdue(engine: Engine, case_id: str) -> None:
    with Session(engine) as session:
        case = session.get(AlertCase, case_id)
        assert case is not None
        case.overdue = True
        session.add(case)
        session.commit()


@contextmanager
def counted_queries(engine: Engine) -> Iterator[list[str]]:
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_command_center_sees_open_and_overdue_cases_per_street_office(
    browser_for: Browser, world: World, db_engine: Engine
) -> None:
    mark_overdue(db_engine, "case-m1")
    page = browser_for("command").get("/overview")
    assert page.status_code == 200
    html = page.text

    youyilu = office_row(html, "youyilu")
    assert world.offices["youyilu"].name in youyilu
    assert 'href="/overview/streets/youyilu"' in youyilu
    assert cell(youyilu, 'data-status="awaiting_verification"') == 2
    assert cell(youyilu, 'data-status="rectifying"') == 0
    assert cell(youyilu, "data-total") == 2
    assert cell(youyilu, "data-overdue") == 1
    assert 'href="/overview/streets/youyilu?overdue=1"' in youyilu

    machang = office_row(html, "machang")  # case-m3 open; the transferred case is closed and not counted
    assert cell(machang, 'data-status="awaiting_verification"') == 1
    assert cell(machang, "data-total") == 1
    assert cell(machang, "data-overdue") == 0

    district = office_row(html, "")
    assert cell(district, "data-total") == 3 and cell(district, "data-overdue") == 1
    assert kpi(html, "open") == "3"
    assert kpi(html, "overdue") == "1"
    assert kpi(html, "alerts_today") == "0"
    # Cameras report no heartbeat yet: a dash and a note, never an invented rate.
    assert kpi(html, "cameras_online") == "—"
    assert "暂无摄像头运行状态数据" in html
    assert "全区概览" in html and "在办案件" in html and "待核实" in html


def test_the_charts_are_inline_well_formed_translated_svg(
    browser_for: Browser, world: World, db_engine: Engine
) -> None:
    now = datetime.now(UTC)
    with Session(db_engine, expire_on_commit=False) as session:
        add_alert(session, world, "m1", captured_at=now)
        add_alert(session, world, "m3", captured_at=now)
        add_alert(session, world, "m3", captured_at=now - timedelta(days=2))
        done = add_case(session, world, "case-m1-done", merchant="m1", status="closed")
        done.outcome, done.closed_at = "rectified", now
        transferred = session.get(AlertCase, "case-m3-transferred")
        assert transferred is not None
        transferred.outcome, transferred.closed_at = "transferred", now
        session.commit()

    html = browser_for("command").get("/overview").text
    charts = svgs(html)
    assert len(charts) == 3
    titles = {chart.findtext(f"{SVG_NS}title") for chart in charts}
    assert titles == {"近 30 天每日预警数", "近 30 天各街道问题整改处置完成率", "各街道在办案件（按状态）"}
    for chart in charts:
        assert chart.get("role") == "img" and chart.get("aria-label")
        assert not list(chart.iter(f"{SVG_NS}script"))
        assert all(element.get("style") is None for element in chart.iter())

    by_title = {chart.findtext(f"{SVG_NS}title"): chart for chart in charts}
    trend = by_title["近 30 天每日预警数"]
    today = now.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%m-%d")
    assert (trend.findtext(f"{SVG_NS}desc") or "").endswith(f"{today}: 2")
    assert len(list(trend.iter(f"{SVG_NS}circle"))) == 30

    rates = by_title["近 30 天各街道问题整改处置完成率"].findtext(f"{SVG_NS}desc") or ""
    assert f"{world.offices['youyilu'].name}: 100%" in rates
    assert f"{world.offices['machang'].name}: 0%" in rates
    assert kpi(html, "rectification_rate") == "50%"

    legend = {text.text for text in by_title["各街道在办案件（按状态）"].iter(f"{SVG_NS}text")}
    assert {"待核实", "整改中"} <= legend

    assert kpi(html, "alerts_today") == "2"
    # CSP allows neither inline style attributes nor inline scripts.
    assert "style=" not in html
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)


def test_an_office_without_substantiated_closed_cases_has_no_rate(browser_for: Browser, world: World) -> None:
    html = browser_for("command").get("/overview").text
    assert kpi(html, "rectification_rate") == "—"
    assert "本期内没有办结的属实案件。" in html  # the rate chart's empty text
    assert re.search(r'data-rate-office="youyilu">.*?<td data-rate>—</td>', html, re.DOTALL)


def test_office_names_from_the_database_are_escaped(browser_for: Browser, world: World, db_engine: Engine) -> None:
    with Session(db_engine) as session:
        session.add(StreetOffice(code="evil", name="<script>alert(1)</script>"))
        session.commit()
    command = browser_for("command")
    for path in ("/overview", "/overview/streets/evil"):
        html = command.get(path).text
        assert "<script>alert(1)</script>" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    overview = command.get("/overview").text
    assert len(svgs(overview)) == 3  # still well-formed with the hostile label inside
    assert cell(office_row(overview, "evil"), "data-total") == 0


def test_the_drill_down_lists_only_that_streets_cases_read_only(
    browser_for: Browser, world: World, db_engine: Engine
) -> None:
    mark_overdue(db_engine, "case-m2")
    command = browser_for("command")
    youyilu = command.get("/overview/streets/youyilu")
    assert youyilu.status_code == 200
    assert world.offices["youyilu"].name in youyilu.text
    assert case_ids(youyilu.text) == {"case-m1", "case-m2"}
    assert 'href="/cases/case-m1"' in youyilu.text
    assert "此列表只读" in youyilu.text
    # Read-only: the only form is the sign-out button in the header.
    assert youyilu.text.count("<form") == 1

    assert case_ids(command.get("/overview/streets/machang").text) == {"case-m3"}
    assert case_ids(command.get("/overview/streets/machang?status=all").text) == {"case-m3", "case-m3-transferred"}
    assert case_ids(command.get("/overview/streets/machang?status=closed").text) == {"case-m3-transferred"}
    assert case_ids(command.get("/overview/streets/youyilu?overdue=1").text) == {"case-m2"}
    assert case_ids(command.get("/overview/streets/youyilu?status=rectifying").text) == set()


def test_the_drill_down_pages_through_the_queue(
    browser_for: Browser, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(command_pages, "QUEUE_PAGE_SIZE", 1)
    command = browser_for("command")
    first = command.get("/overview/streets/youyilu").text
    assert case_ids(first) == {"case-m1"}  # the sooner deadline first
    next_href = re.search(r'<a href="([^"]+)">下一页', first)
    assert next_href
    second = command.get(next_href.group(1).replace("&amp;", "&")).text
    assert case_ids(second) == {"case-m2"}
    assert "下一页" not in second and "第一页" in second

    broken = command.get("/overview/streets/youyilu?cursor=not-a-cursor")
    assert broken.status_code == 400
    assert "此分页链接无效" in broken.text


def test_an_unknown_street_or_filter_is_refused_readably(browser_for: Browser, world: World) -> None:
    command = browser_for("command")
    missing = command.get("/overview/streets/nowhere")
    assert missing.status_code == 404
    assert "没有此代码的街道市场监管所。" in missing.text
    assert command.get("/overview/streets/youyilu?status=bogus").status_code == 422


@pytest.mark.parametrize("username", ["officer1", "merchant1", "auditor", "admin", "brigade"])
def test_other_roles_get_the_forbidden_page(browser_for: Browser, world: World, username: str) -> None:
    browser = browser_for(username)
    for path in ("/overview", "/overview/streets/youyilu"):
        response = browser.get(path)
        assert response.status_code == 403
        assert FORBIDDEN_ZH in response.text
        assert "case-m1" not in response.text


def test_the_overview_switches_to_english(browser_for: Browser, world: World) -> None:
    command = browser_for("command")
    command.get("/lang/en?next=/overview")
    html = command.get("/overview").text
    assert '<html lang="en">' in html
    for text in ("District overview", "Open cases", "No camera health data yet", "Awaiting verification"):
        assert text in html
    titles = {chart.findtext(f"{SVG_NS}title") for chart in svgs(html)}
    assert "Alerts per day, last 30 days" in titles
    street = command.get("/overview/streets/youyilu").text
    assert "read-only" in street and "Next deadline" in street


def test_the_overview_reads_its_figures_in_a_handful_of_queries(
    api: TestClient, browser_for: Browser, world: World
) -> None:
    command = browser_for("command")
    engine: Engine = api.app.state.engine
    with counted_queries(engine) as statements:
        assert command.get("/overview").status_code == 200
    # Session lookup and touch, the user, then one aggregate per figure.
    assert len(statements) <= 8, statements


def test_the_status_filter_offers_every_case_status() -> None:
    assert set(get_args(command_pages.StatusFilter)) == {"open", "all", *OPEN_STATUSES, CLOSED_STATUS}
