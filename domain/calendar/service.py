"""Official calendar years in the database, and the working calendar built from them.

The caller owns the transaction (e.g. ``infra.db.session_scope``); these functions only add and flush.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import func
from sqlmodel import Session, col, select

from domain.calendar.models import OfficialCalendarYear
from domain.calendar.rules import OfficialYearData, WorkingCalendar


def load_official_year(session: Session, *, data: OfficialYearData, loaded_by: str) -> OfficialCalendarYear:
    """Store ``data`` as the next version of its year; identical content again returns the latest row.

    Rows are never updated, so a deadline stored with ``official:<year>:v<N>:<sha8>`` can always be traced
    to the exact data it was computed with. Two concurrent loads of one year collide on the
    ``(year, version)`` unique constraint; the loser's transaction fails and can simply be retried.
    """
    if not loaded_by.strip():
        raise ValueError("loaded_by must name the administrator")
    latest = _latest_row(session, data.year)
    if latest is not None and latest.content_sha256 == data.content_sha256:
        return latest
    row = OfficialCalendarYear(
        year=data.year,
        version=1 if latest is None else latest.version + 1,
        rest_days=sorted(day.isoformat() for day in data.rest_days),
        working_days=sorted(day.isoformat() for day in data.working_days),
        source_doc_no=data.doc_no,
        source_url=data.url,
        content_sha256=data.content_sha256,
        loaded_by=loaded_by.strip(),
    )
    session.add(row)
    session.flush()
    return row


def latest_official_years(session: Session) -> list[OfficialCalendarYear]:
    """The winning (highest) version of every year, ordered by year."""
    latest_versions = (
        select(OfficialCalendarYear.year, func.max(OfficialCalendarYear.version).label("version"))
        .group_by(col(OfficialCalendarYear.year))
        .subquery()
    )
    statement = (
        select(OfficialCalendarYear)
        .join(
            latest_versions,
            (col(OfficialCalendarYear.year) == latest_versions.c.year)
            & (col(OfficialCalendarYear.version) == latest_versions.c.version),
        )
        .order_by(col(OfficialCalendarYear.year))
    )
    return list(session.exec(statement).all())


def official_year_data(row: OfficialCalendarYear) -> OfficialYearData:
    return OfficialYearData(
        year=row.year,
        rest_days=frozenset(date.fromisoformat(day) for day in row.rest_days),
        working_days=frozenset(date.fromisoformat(day) for day in row.working_days),
        doc_no=row.source_doc_no,
        url=row.source_url,
        revision=row.version,
    )


def official_years(session: Session) -> list[OfficialYearData]:
    """The winning version of every loaded year, in the form the pure rules take (``next_year_status``)."""
    return [official_year_data(row) for row in latest_official_years(session)]


def working_calendar(session: Session) -> WorkingCalendar:
    """The calendar with every officially loaded year taking precedence over the packages."""
    return WorkingCalendar(official_years(session))


def _latest_row(session: Session, year: int) -> OfficialCalendarYear | None:
    statement = (
        select(OfficialCalendarYear)
        .where(OfficialCalendarYear.year == year)
        .order_by(col(OfficialCalendarYear.version).desc())
        .limit(1)
    )
    return session.exec(statement).first()
