"""District command center (区局指挥中心): the overview of every street office, and a read-only look into one
street office's queue.

The figures come from ``domain.cases.stats``, which aggregates in PostgreSQL, so the overview costs a few
queries however many cases the district holds. Charts are SVG written on the server (``api.web.charts``):
the page needs no script and nothing is fetched after it loads. The drill-down only lists; acting "for the
street" happens on the case page, which applies the command center's own permissions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Literal
from urllib.parse import quote, urlencode

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import Response
from markupsafe import Markup

from api.deps import SessionDep
from api.web.charts import bar_chart, line_chart, plain_number, stacked_bar_chart
from api.web.context import Page, page_roles
from api.web.i18n import Translator
from api.web.labels import label
from api.web.templating import render
from domain.cases.service import CaseCursor, CaseFilters, CaseScope, ScopeKind, list_cases
from domain.cases.stats import (
    CLOSED_STATUS,
    OPEN_STATUSES,
    DayCount,
    OfficeLoad,
    OfficeRate,
    alert_trend,
    cameras_online_rate,
    district_rectification_rate,
    open_cases_by_office,
    rectification_rate,
)
from domain.errors import ValidationFailed
from domain.users.models import Role

router = APIRouter(include_in_schema=False)

COMMAND_CENTER_ONLY = [page_roles(Role.command_center)]
TREND_DAYS = 30
RATE_DAYS = 30
QUEUE_PAGE_SIZE = 50

# "open" (the default: what the street still has to deal with), "all", or one status.
StatusFilter = Literal[
    "open", "all", "awaiting_verification", "awaiting_dispute_review", "rectifying", "awaiting_review", "closed"
]
OPEN_FILTER = "open"
ALL_FILTER = "all"


def percent(value: float) -> str:
    """A share as a percentage with at most one decimal (1/3 → "33.3%")."""
    return f"{plain_number(round(value * 100, 1))}%"


@dataclass(frozen=True)
class Totals:
    open_by_status: dict[str, int]
    open: int
    overdue: int


@dataclass(frozen=True)
class Chip:
    href: str
    text: str
    active: bool


def district_totals(loads: Sequence[OfficeLoad]) -> Totals:
    return Totals(
        open_by_status={status: sum(load.open_by_status.get(status, 0) for load in loads) for status in OPEN_STATUSES},
        open=sum(load.open_total for load in loads),
        overdue=sum(load.overdue for load in loads),
    )


def trend_chart(trend: Sequence[DayCount], tr: Translator) -> Markup:
    return line_chart(
        [(day.day.strftime("%m-%d"), day.count) for day in trend],
        title=tr.gettext("Alerts per day, last %(days)s days") % {"days": TREND_DAYS},
        empty_text=tr.gettext("No data"),
    )


def rate_chart(rates: Sequence[OfficeRate], tr: Translator) -> Markup:
    # An office that closed nothing substantiated has no rate; a 0 % bar would accuse it of failing.
    return bar_chart(
        [(rate.name, rate.rate) for rate in rates if rate.rate is not None],
        title=tr.gettext("Rectification rate by street office, last %(days)s days") % {"days": RATE_DAYS},
        value_format=percent,
        empty_text=tr.gettext("No substantiated case was closed in this period."),
    )


def status_chart(loads: Sequence[OfficeLoad], tr: Translator) -> Markup:
    return stacked_bar_chart(
        [(load.name, [load.open_by_status.get(status, 0) for status in OPEN_STATUSES]) for load in loads],
        series=[tr.gettext(label("status", status)) for status in OPEN_STATUSES],
        title=tr.gettext("Open cases by status and street office"),
        empty_text=tr.gettext("No data"),
    )


@router.get("/overview", dependencies=COMMAND_CENTER_ONLY)
def overview(context: Page, session: SessionDep) -> Response:
    tr = context.tr
    as_of = datetime.now(UTC)
    loads = open_cases_by_office(session)
    trend = alert_trend(session, now=as_of, days=TREND_DAYS)
    rates = rectification_rate(session, now=as_of, days=RATE_DAYS)
    district_rate = district_rectification_rate(rates)
    cameras_online = cameras_online_rate(session)
    return render(
        context.request,
        "command/overview.html",
        tr=tr,
        page=context,
        as_of=as_of,
        statuses=OPEN_STATUSES,
        loads=loads,
        totals=district_totals(loads),
        # The trend's last day is today (both use the same Beijing-day window): no separate query.
        alerts_today=trend[-1].count if trend else 0,
        cameras_online=None if cameras_online is None else percent(cameras_online),
        rates=rates,
        rate_days=RATE_DAYS,
        district_rate=None if district_rate is None else percent(district_rate),
        district_rectified=sum(rate.rectified for rate in rates),
        district_substantiated=sum(rate.substantiated for rate in rates),
        district_false_alarms=sum(rate.false_alarms for rate in rates),
        percent=percent,
        trend_svg=trend_chart(trend, tr),
        rate_svg=rate_chart(rates, tr),
        status_svg=status_chart(loads, tr),
    )


def street_path(code: str, **query: str) -> str:
    path = f"/overview/streets/{quote(code, safe='')}"
    return f"{path}?{urlencode(query)}" if query else path


def status_chips(office: OfficeLoad, chosen: str, overdue: bool, tr: Translator) -> list[Chip]:
    keep = {"overdue": "1"} if overdue else {}
    open_text = tr.gettext("Open")
    choices: list[tuple[str, str]] = [(OPEN_FILTER, f"{open_text} ({office.open_total})")]
    for status in OPEN_STATUSES:
        status_text = tr.gettext(label("status", status))
        choices.append((status, f"{status_text} ({office.open_by_status.get(status, 0)})"))
    choices += [(CLOSED_STATUS, tr.gettext(label("status", CLOSED_STATUS))), (ALL_FILTER, tr.gettext("All"))]
    return [
        Chip(href=street_path(office.code, status=value, **keep), text=text, active=value == chosen)
        for value, text in choices
    ]


def statuses_for(chosen: str) -> tuple[str, ...]:
    if chosen == OPEN_FILTER:
        return OPEN_STATUSES
    if chosen == ALL_FILTER:
        return ()
    return (chosen,)


@router.get("/overview/streets/{code}", dependencies=COMMAND_CENTER_ONLY)
def street_queue(
    code: str,
    context: Page,
    session: SessionDep,
    case_status: Annotated[StatusFilter, Query(alias="status")] = "open",
    overdue: bool = False,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> Response:
    tr = context.tr
    # The per-office aggregate both finds the office and gives the counts on the filter chips.
    office = next((load for load in open_cases_by_office(session) if load.code == code), None)
    if office is None:
        raise HTTPException(404, detail=tr.gettext("There is no street office with this code."))
    try:
        after = CaseCursor.decode(cursor) if cursor else None
    except ValidationFailed:
        message = tr.gettext("This page link is not valid. Start again from the first page.")
        raise HTTPException(400, detail=message) from None
    page = list_cases(
        session,
        scope=CaseScope(ScopeKind.street_office, street_office_id=office.street_office_id),
        filters=CaseFilters(statuses=statuses_for(case_status), overdue=True if overdue else None),
        limit=QUEUE_PAGE_SIZE,
        after=after,
    )
    keep = {"status": case_status, **({"overdue": "1"} if overdue else {})}
    overdue_text = tr.gettext("Overdue only")
    return render(
        context.request,
        "command/street.html",
        tr=tr,
        page=context,
        office=office,
        items=page.items,
        chips=status_chips(office, case_status, overdue, tr),
        overdue_chip=Chip(
            href=street_path(office.code, status=case_status, **({} if overdue else {"overdue": "1"})),
            text=f"{overdue_text} ({office.overdue})",
            active=overdue,
        ),
        first_href=street_path(office.code, **keep) if cursor else None,
        next_href=street_path(office.code, **keep, cursor=page.next_cursor) if page.next_cursor else None,
    )
