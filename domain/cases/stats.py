"""Figures for the district command center's overview (指挥中心总览), aggregated in PostgreSQL.

Definitions:

* **day** — a calendar day in Beijing (Asia/Shanghai). A window of ``days`` days ends with the Beijing day that
  contains ``now`` and includes it: ``days=30`` is today and the 29 days before.
* **alert** — one row of ``alert``, merged into an existing case or not, dated by ``captured_at`` (when the
  detector fired on the device). ``received_at`` is not used: an edge box that was offline delivers its backlog
  late, and those alerts belong to the day the problem was seen. Intake refuses capture times more than
  10 minutes ahead of the platform clock, so a device clock cannot push alerts into tomorrow.
* **open case** — a case projection whose status is not ``closed``.
* **rectification rate** (问题整改处置完成率, 办法 第十四条) — of the cases closed in the window (dated by
  ``closed_at``) that were not false alarms, the share closed because the merchant put the problem right:
  outcome ``rectified``, or ``no_penalty`` (rectified, and the officer decided not to penalise). ``penalised``
  and ``transferred`` cases count against the rate: the problem went to enforcement instead of being put right
  in the loop. ``false_alarm`` cases are left out of the denominator, since there was nothing to rectify; they
  are reported beside the rate so that the total of closed cases is still visible. A closed case without an
  outcome counts as not rectified.

Status and outcome values are named as strings: domain code does not import the workflow package
(``CaseStatus`` / ``CaseOutcome`` hold the same values; a test keeps them in step).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Date, cast, func
from sqlmodel import Session, col, select

from domain.cases.history import RECTIFIED_OUTCOMES
from domain.cases.models import Alert, AlertCase
from domain.merchants.models import StreetOffice

BEIJING = ZoneInfo("Asia/Shanghai")
# PostgreSQL's name for the same zone: grouping by day happens in SQL, independent of the session's TimeZone.
BEIJING_SQL_ZONE = "Asia/Shanghai"

CLOSED_STATUS = "closed"
# The open statuses in the order a case passes through them; every office lists all of them, zero included.
OPEN_STATUSES = ("awaiting_verification", "awaiting_dispute_review", "rectifying", "awaiting_review")
FALSE_ALARM_OUTCOME = "false_alarm"


@dataclass(frozen=True)
class OfficeLoad:
    """The open cases of one street office."""

    street_office_id: int
    code: str
    name: str
    open_by_status: dict[str, int] = field(default_factory=dict)
    overdue: int = 0  # open cases that missed a deadline (also counted in open_by_status)

    @property
    def open_total(self) -> int:
        return sum(self.open_by_status.values())


@dataclass(frozen=True)
class DayCount:
    day: date  # Beijing calendar day
    count: int


@dataclass(frozen=True)
class OfficeRate:
    """Cases of one street office closed in the window, by what closed them (see the module docstring)."""

    street_office_id: int
    code: str
    name: str
    closed: int
    false_alarms: int
    rectified: int

    @property
    def substantiated(self) -> int:
        return self.closed - self.false_alarms

    @property
    def rate(self) -> float | None:
        """rectified / substantiated; None when nothing substantiated was closed (no rate, rather than 0 %)."""
        return self.rectified / self.substantiated if self.substantiated else None


def open_cases_by_office(session: Session) -> list[OfficeLoad]:
    """Every street office, ordered by code, with its open cases by status; offices without cases included."""
    case_count = func.count(col(AlertCase.case_id))
    rows = session.exec(
        select(StreetOffice, AlertCase.status, case_count, case_count.filter(col(AlertCase.overdue)))
        .outerjoin(
            AlertCase,
            (col(AlertCase.street_office_id) == col(StreetOffice.id)) & (col(AlertCase.status) != CLOSED_STATUS),
        )
        # Grouping by the primary key lets PostgreSQL return the office's other columns.
        .group_by(col(StreetOffice.id), col(AlertCase.status))
        .order_by(col(StreetOffice.code), col(AlertCase.status))
    ).all()

    offices: dict[int, StreetOffice] = {}
    by_status: dict[int, dict[str, int]] = {}
    overdue: dict[int, int] = {}
    for office, status, count, overdue_count in rows:
        assert office.id is not None
        offices[office.id] = office
        statuses = by_status.setdefault(office.id, dict.fromkeys(OPEN_STATUSES, 0))
        if status is not None:  # None: the outer join found no open case for this office
            statuses[status] = count
            overdue[office.id] = overdue.get(office.id, 0) + overdue_count
    return [
        OfficeLoad(
            street_office_id=office_id,
            code=office.code,
            name=office.name,
            open_by_status=by_status[office_id],
            overdue=overdue.get(office_id, 0),
        )
        for office_id, office in offices.items()
    ]


def alerts_today(session: Session, *, now: datetime) -> int:
    """Alerts captured on the Beijing calendar day that contains ``now``."""
    start, end = beijing_day_window(now=now, days=1)
    count = session.exec(
        select(func.count()).select_from(Alert).where(col(Alert.captured_at) >= start, col(Alert.captured_at) < end)
    ).one()
    return int(count)


def alert_trend(session: Session, *, now: datetime, days: int = 30) -> list[DayCount]:
    """Alerts per Beijing day over the ``days`` days ending today, oldest first, days without alerts as 0."""
    start, end = beijing_day_window(now=now, days=days)
    beijing_day = cast(func.timezone(BEIJING_SQL_ZONE, col(Alert.captured_at)), Date)
    rows = session.exec(
        select(beijing_day, func.count())
        .where(col(Alert.captured_at) >= start, col(Alert.captured_at) < end)
        .group_by(beijing_day)
    ).all()
    counts: dict[date, int] = {day: int(count) for day, count in rows}
    first_day = start.date()
    return [
        DayCount(day=first_day + timedelta(days=offset), count=counts.get(first_day + timedelta(days=offset), 0))
        for offset in range(days)
    ]


def rectification_rate(session: Session, *, now: datetime, days: int = 30) -> list[OfficeRate]:
    """Per street office (ordered by code, offices without closed cases included), the cases closed in the
    ``days`` Beijing days ending today, split as the module docstring defines."""
    start, end = beijing_day_window(now=now, days=days)
    closed = func.count(col(AlertCase.case_id))
    rows = session.exec(
        select(
            StreetOffice,
            closed,
            closed.filter(col(AlertCase.outcome) == FALSE_ALARM_OUTCOME),
            closed.filter(col(AlertCase.outcome).in_(RECTIFIED_OUTCOMES)),
        )
        .outerjoin(
            AlertCase,
            (col(AlertCase.street_office_id) == col(StreetOffice.id))
            & (col(AlertCase.status) == CLOSED_STATUS)
            & (col(AlertCase.closed_at) >= start)
            & (col(AlertCase.closed_at) < end),
        )
        .group_by(col(StreetOffice.id))
        .order_by(col(StreetOffice.code))
    ).all()
    rates = []
    for office, closed_count, false_alarms, rectified in rows:
        assert office.id is not None
        rates.append(
            OfficeRate(
                street_office_id=office.id,
                code=office.code,
                name=office.name,
                closed=closed_count,
                false_alarms=false_alarms,
                rectified=rectified,
            )
        )
    return rates


def district_rectification_rate(rates: Sequence[OfficeRate]) -> float | None:
    """The district figure: all offices' rectified cases over all their substantiated ones (not a mean of the
    office rates, which would weigh an office with one case like one with a hundred)."""
    substantiated = sum(rate.substantiated for rate in rates)
    return sum(rate.rectified for rate in rates) / substantiated if substantiated else None


def cameras_online_rate(session: Session) -> float | None:
    """Always None for now: the platform records no camera health.

    ``Camera`` has no heartbeat, last-seen time or status, only ``enabled`` (an administrator's switch, not a
    sign that the stream is up), and devices report nothing but alerts. A camera that raised an alert is online,
    but a quiet one may be a clean kitchen or a dead camera, so any rate derived from alerts would be invented.
    The overview shows "—" until a heartbeat exists; the session parameter is there so callers need not change
    when it does.
    """
    del session
    return None


def beijing_day_window(*, now: datetime, days: int) -> tuple[datetime, datetime]:
    """[start, end) of the ``days`` Beijing calendar days ending with the one that contains ``now``, as aware
    datetimes in Beijing time."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if days < 1:
        raise ValueError("days must be at least 1")
    today = now.astimezone(BEIJING).date()
    end = datetime.combine(today + timedelta(days=1), time(), tzinfo=BEIJING)
    start = datetime.combine(today - timedelta(days=days - 1), time(), tzinfo=BEIJING)
    return start, end
