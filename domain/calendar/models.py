"""Official holiday data loaded by an administrator, one row per (year, version)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from domain.base import timestamp_field


class OfficialCalendarYear(SQLModel, table=True):
    """The State Council notice for one year: rest days and 调休 make-up working days.

    Rows are never updated: loading a corrected notice adds the next version; the highest version wins.
    """

    __tablename__ = "official_calendar_year"
    __table_args__ = (UniqueConstraint("year", "version", name="official_calendar_year_version"),)

    id: int | None = Field(default=None, primary_key=True)
    year: int = Field(index=True)
    version: int
    rest_days: list[str] = Field(sa_column=Column(JSON, nullable=False))  # ISO dates
    working_days: list[str] = Field(sa_column=Column(JSON, nullable=False))  # ISO dates (weekend make-up days)
    source_doc_no: str = Field(max_length=100)  # 国办发明电〔YYYY〕N号
    source_url: str | None = Field(default=None, max_length=500)
    content_sha256: str = Field(max_length=64)
    loaded_by: str = Field(max_length=64)
    loaded_at: datetime = timestamp_field(default_now=True)
