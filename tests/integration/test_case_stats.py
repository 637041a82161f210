"""The command-center overview figures, aggregated on a real PostgreSQL."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlmodel import Session

from domain.cases.history import RECTIFIED_OUTCOMES
from domain.cases.models import Alert, AlertCase
from domain.cases.stats import (
    CLOSED_STATUS,
    FALSE_ALARM_OUTCOME,
    OPEN_STATUSES,
    DayCount,
    OfficeRate,
    alert_trend,
    alerts_today,
    beijing_day_window,
    cameras_online_rate,
    district_rectification_rate,
    open_cases_by_office,
    rectification_rate,
)
from domain.evidence.models import Evidence
from domain.merchants.models import Camera, Merchant, StreetOffice
from workflows.alert_case_types import CaseOutcome, CaseStatus

pytestmark = pytest.mark.integration

# 2026-12-02 10:00 in Beijing.
NOW = datetime(2026, 12, 2, 2, 0, tzinfo=UTC)
_numbers = itertools.count(1)


@dataclass
class Shop:
    office_id: int
    merchant_id: int
    camera_id: int
    snapshot_id: uuid.UUID


@dataclass
class District:
    youyilu: Shop
    machang: Shop
    empty_office_id: int  # an office with no merchants, cases or alerts


def _office(session: Session, code: str, name: str) -> int:
    office = StreetOffice(code=code, name=name)
    session.add(office)
    session.flush()
    assert office.id is not None
    return office.id


def _shop(session: Session, office_id: int, credit_code: str) -> Shop:
    merchant = Merchant(
        credit_code=credit_code, name=f"商户{credit_code[-2:]}", address="河西区", street_office_id=office_id
    )
    session.add(merchant)
    session.flush()
    assert merchant.id is not None
    camera = Camera(merchant_id=merchant.id, name="后厨", area="cooking", stream_url="rtsp://camera.invalid/1")
    digest = uuid.uuid4().hex * 2
    evidence = Evidence(
        id=uuid.uuid4(),
        bucket="evidence",
        key=f"sha256/{digest}",
        sha256=digest,
        sm3=digest,
        size=1,
        content_type="image/jpeg",
        stored_at=NOW,
        retain_until=NOW + timedelta(days=1095),
        collection_method="ai_capture",
    )
    session.add_all([camera, evidence])
    session.flush()
    assert camera.id is not None
    return Shop(office_id=office_id, merchant_id=merchant.id, camera_id=camera.id, snapshot_id=evidence.id)


@pytest.fixture
def district(db_session: Session) -> District:
    # Codes chosen so that the alphabetical order (which the figures use) is machang, xiaobaidi, youyilu.
    youyilu = _office(db_session, "youyilu", "友谊路街市场监管所")
    machang = _office(db_session, "machang", "马场街市场监管所")
    empty = _office(db_session, "xiaobaidi", "<b>小白堤</b>街市场监管所")
    result = District(
        youyilu=_shop(db_session, youyilu, "91120103MA05STAT1A"),
        machang=_shop(db_session, machang, "91120103MA05STAT2B"),
        empty_office_id=empty,
    )
    db_session.commit()
    return result


def add_alert(session: Session, shop: Shop, *, captured_at: datetime) -> None:
    number = next(_numbers)
    session.add(
        Alert(
            id=uuid.uuid4(),
            source="device:stats",
            event_id=f"evt-{number}",
            camera_id=shop.camera_id,
            merchant_id=shop.merchant_id,
            street_office_id=shop.office_id,
            alert_type="no_hat",
            captured_at=captured_at,
            # Received long after capture on purpose: the figures date an alert by its capture.
            received_at=captured_at + timedelta(days=3),
            score=0.9,
            snapshot_evidence_id=shop.snapshot_id,
        )
    )
    session.commit()


def add_case(
    session: Session,
    shop: Shop,
    *,
    status: str,
    overdue: bool = False,
    outcome: str | None = None,
    closed_at: datetime | None = None,
) -> None:
    opened_at = NOW - timedelta(days=40)
    session.add(
        AlertCase(
            case_id=f"case-{next(_numbers)}",
            merchant_id=shop.merchant_id,
            street_office_id=shop.office_id,
            camera_id=shop.camera_id,
            alert_type="no_hat",
            category="dress",
            status=status,
            outcome=outcome,
            opened_at=opened_at,
            closed_at=closed_at,
            last_alert_at=opened_at,
            overdue=overdue,
        )
    )
    session.commit()


def test_names_match_the_workflow_contract() -> None:
    assert {*OPEN_STATUSES, CLOSED_STATUS} == {status.value for status in CaseStatus}
    assert CaseStatus.closed.value == CLOSED_STATUS
    assert CaseOutcome.false_alarm.value == FALSE_ALARM_OUTCOME
    assert {CaseOutcome(outcome) for outcome in RECTIFIED_OUTCOMES} == {CaseOutcome.rectified, CaseOutcome.no_penalty}


def test_empty_district(db_session: Session, district: District) -> None:
    loads = open_cases_by_office(db_session)
    assert [load.code for load in loads] == ["machang", "xiaobaidi", "youyilu"]
    for load in loads:
        assert load.open_by_status == dict.fromkeys(OPEN_STATUSES, 0)
        assert (load.open_total, load.overdue) == (0, 0)
    assert alerts_today(db_session, now=NOW) == 0
    trend = alert_trend(db_session, now=NOW)
    assert len(trend) == 30
    assert all(day.count == 0 for day in trend)
    rates = rectification_rate(db_session, now=NOW)
    assert [(rate.code, rate.closed, rate.rate) for rate in rates] == [
        ("machang", 0, None),
        ("xiaobaidi", 0, None),
        ("youyilu", 0, None),
    ]
    assert district_rectification_rate(rates) is None


def test_open_cases_by_office_counts_open_statuses_and_overdue(db_session: Session, district: District) -> None:
    shop, other = district.youyilu, district.machang
    add_case(db_session, shop, status="awaiting_verification")
    add_case(db_session, shop, status="awaiting_verification", overdue=True)
    add_case(db_session, shop, status="rectifying", overdue=True)
    add_case(db_session, shop, status="awaiting_review")
    # Closed cases are not open, overdue or not.
    add_case(db_session, shop, status="closed", overdue=True, outcome="rectified", closed_at=NOW)
    add_case(db_session, other, status="awaiting_dispute_review")

    loads = {load.code: load for load in open_cases_by_office(db_session)}
    assert set(loads) == {"youyilu", "machang", "xiaobaidi"}

    youyilu = loads["youyilu"]
    assert youyilu.street_office_id == shop.office_id
    assert youyilu.name == "友谊路街市场监管所"
    assert youyilu.open_by_status == {
        "awaiting_verification": 2,
        "awaiting_dispute_review": 0,
        "rectifying": 1,
        "awaiting_review": 1,
    }
    assert (youyilu.open_total, youyilu.overdue) == (4, 2)

    machang = loads["machang"]
    assert machang.open_by_status["awaiting_dispute_review"] == 1
    assert (machang.open_total, machang.overdue) == (1, 0)

    empty = loads["xiaobaidi"]
    assert empty.street_office_id == district.empty_office_id
    assert empty.name == "<b>小白堤</b>街市场监管所"  # stored as given; escaping is the renderer's job
    assert (empty.open_total, empty.overdue) == (0, 0)


def test_alerts_today_uses_the_beijing_calendar_day(db_session: Session, district: District) -> None:
    shop = district.youyilu
    # Beijing 2026-12-02 runs from 2026-12-01T16:00Z to 2026-12-02T16:00Z.
    add_alert(db_session, shop, captured_at=datetime(2026, 12, 1, 16, 0, tzinfo=UTC))  # 00:00 Beijing: today
    add_alert(db_session, shop, captured_at=datetime(2026, 12, 1, 16, 30, tzinfo=UTC))  # 00:30 Beijing: today
    add_alert(db_session, district.machang, captured_at=datetime(2026, 12, 2, 15, 59, tzinfo=UTC))  # 23:59: today
    add_alert(db_session, shop, captured_at=datetime(2026, 12, 1, 15, 59, tzinfo=UTC))  # 23:59 on 12-01
    add_alert(db_session, shop, captured_at=datetime(2026, 12, 2, 16, 0, tzinfo=UTC))  # 00:00 on 12-03

    assert alerts_today(db_session, now=NOW) == 3
    # Just before Beijing midnight, the UTC date is still 12-01 but Beijing's is 12-02.
    assert alerts_today(db_session, now=datetime(2026, 12, 1, 16, 0, tzinfo=UTC)) == 3
    assert alerts_today(db_session, now=datetime(2026, 12, 1, 15, 59, tzinfo=UTC)) == 1


def test_alert_trend_has_one_entry_per_beijing_day_with_zero_days(db_session: Session, district: District) -> None:
    shop = district.youyilu
    add_alert(db_session, shop, captured_at=datetime(2026, 12, 1, 16, 30, tzinfo=UTC))  # 12-02 Beijing
    add_alert(db_session, district.machang, captured_at=datetime(2026, 12, 2, 1, 0, tzinfo=UTC))  # 12-02
    add_alert(db_session, shop, captured_at=datetime(2026, 12, 1, 15, 30, tzinfo=UTC))  # 12-01 Beijing
    add_alert(db_session, shop, captured_at=datetime(2026, 11, 28, 4, 0, tzinfo=UTC))  # 11-28
    add_alert(db_session, shop, captured_at=datetime(2026, 11, 25, 16, 0, tzinfo=UTC))  # 11-26 00:00, first day
    add_alert(db_session, shop, captured_at=datetime(2026, 11, 25, 15, 59, tzinfo=UTC))  # 11-25: before the window

    trend = alert_trend(db_session, now=NOW, days=7)
    assert trend == [
        DayCount(date(2026, 11, 26), 1),
        DayCount(date(2026, 11, 27), 0),
        DayCount(date(2026, 11, 28), 1),
        DayCount(date(2026, 11, 29), 0),
        DayCount(date(2026, 11, 30), 0),
        DayCount(date(2026, 12, 1), 1),
        DayCount(date(2026, 12, 2), 2),
    ]

    month = alert_trend(db_session, now=NOW)
    assert len(month) == 30
    assert (month[0].day, month[-1].day) == (date(2026, 11, 3), date(2026, 12, 2))
    assert sum(day.count for day in month) == 6
    assert [day.day for day in month] == sorted(day.day for day in month)

    assert alert_trend(db_session, now=NOW, days=1) == [DayCount(date(2026, 12, 2), 2)]


def test_rectification_rate_per_office_in_the_window(db_session: Session, district: District) -> None:
    shop, other = district.youyilu, district.machang
    inside = NOW - timedelta(days=3)
    # youyilu: 2 rectified + 1 no_penalty (rectified, not penalised) + 1 penalised + 1 transferred, 1 false alarm.
    for outcome in ("rectified", "rectified", "no_penalty", "penalised", "transferred", "false_alarm"):
        add_case(db_session, shop, status="closed", outcome=outcome, closed_at=inside)
    # Not counted: still open, closed before the window, closed after now's Beijing day.
    add_case(db_session, shop, status="rectifying")
    add_case(
        db_session, shop, status="closed", outcome="rectified", closed_at=datetime(2026, 11, 2, 15, 59, tzinfo=UTC)
    )
    add_case(db_session, shop, status="closed", outcome="penalised", closed_at=datetime(2026, 12, 2, 16, 0, tzinfo=UTC))
    # machang: only false alarms, so no rate at all.
    add_case(db_session, other, status="closed", outcome="false_alarm", closed_at=inside)
    # The first Beijing day of the window counts from its midnight (2026-11-03 00:00 Beijing).
    add_case(
        db_session, other, status="closed", outcome="false_alarm", closed_at=datetime(2026, 11, 2, 16, 0, tzinfo=UTC)
    )

    rates = rectification_rate(db_session, now=NOW)
    assert rates == [
        OfficeRate(other.office_id, "machang", "马场街市场监管所", closed=2, false_alarms=2, rectified=0),
        OfficeRate(district.empty_office_id, "xiaobaidi", "<b>小白堤</b>街市场监管所", 0, 0, 0),
        OfficeRate(shop.office_id, "youyilu", "友谊路街市场监管所", closed=6, false_alarms=1, rectified=3),
    ]
    machang, empty, youyilu = rates
    assert youyilu.substantiated == 5
    assert youyilu.rate == pytest.approx(3 / 5)
    assert machang.rate is None
    assert empty.rate is None
    assert district_rectification_rate(rates) == pytest.approx(3 / 5)

    week = {rate.code: rate for rate in rectification_rate(db_session, now=NOW, days=2)}
    assert week["youyilu"].closed == 0  # closed three days ago: outside a two-day window


def test_district_rate_weighs_cases_not_offices() -> None:
    rates = [
        OfficeRate(1, "a", "A", closed=1, false_alarms=0, rectified=1),
        OfficeRate(2, "b", "B", closed=9, false_alarms=0, rectified=0),
    ]
    assert district_rectification_rate(rates) == pytest.approx(0.1)


def test_cameras_online_rate_is_unknown_without_a_heartbeat(db_session: Session, district: District) -> None:
    assert cameras_online_rate(db_session) is None


def test_day_window_refuses_naive_times_and_empty_windows() -> None:
    with pytest.raises(ValueError, match="aware"):
        beijing_day_window(now=datetime(2026, 12, 2, 10, 0), days=1)
    with pytest.raises(ValueError, match="days"):
        beijing_day_window(now=NOW, days=0)
