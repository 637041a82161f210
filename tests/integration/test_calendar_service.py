"""Official calendar years in PostgreSQL: versions, idempotent loads, and the calendar built from them."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from pathlib import Path

import pytest
from sqlmodel import Session

from domain.calendar.rules import CalendarSource, parse_official_calendar
from domain.calendar.service import latest_official_years, load_official_year, working_calendar
from infra.cli import main
from infra.settings import get_settings

pytestmark = pytest.mark.integration

OFFICIAL_2027 = parse_official_calendar(
    """
year: 2027
source: {doc_no: "测试〔2026〕1号", url: "https://www.gov.cn/test"}
rest_days: [2027-01-01, 2027-01-02, 2027-01-03]
working_days: []
"""
)


def test_loading_identical_content_twice_is_a_no_op(db_session: Session) -> None:
    first = load_official_year(db_session, data=OFFICIAL_2027, loaded_by="admin")
    db_session.commit()
    again = load_official_year(db_session, data=OFFICIAL_2027, loaded_by="someone-else")
    db_session.commit()
    assert again.id == first.id and again.version == 1 and again.loaded_by == "admin"
    assert [(row.year, row.version) for row in latest_official_years(db_session)] == [(2027, 1)]
    assert first.rest_days == ["2027-01-01", "2027-01-02", "2027-01-03"]
    assert first.content_sha256 == OFFICIAL_2027.content_sha256


def test_changed_content_adds_the_next_version_and_it_wins(db_session: Session) -> None:
    load_official_year(db_session, data=OFFICIAL_2027, loaded_by="admin")
    corrected = dataclasses.replace(OFFICIAL_2027, rest_days=OFFICIAL_2027.rest_days | {date(2027, 1, 4)})
    second = load_official_year(db_session, data=corrected, loaded_by="admin")
    db_session.commit()
    assert second.version == 2
    assert [(row.year, row.version) for row in latest_official_years(db_session)] == [(2027, 2)]
    # Loading the first content again is a change relative to the latest: version 3, rows never updated.
    third = load_official_year(db_session, data=OFFICIAL_2027, loaded_by="admin")
    assert third.version == 3


def test_latest_official_years_returns_one_row_per_year(db_session: Session) -> None:
    other_year = dataclasses.replace(OFFICIAL_2027, year=2028, rest_days=frozenset({date(2028, 1, 1)}))
    load_official_year(db_session, data=OFFICIAL_2027, loaded_by="admin")
    load_official_year(db_session, data=other_year, loaded_by="admin")
    load_official_year(
        db_session,
        data=dataclasses.replace(OFFICIAL_2027, doc_no="测试〔2026〕2号"),
        loaded_by="admin",
    )
    db_session.commit()
    assert [(row.year, row.version) for row in latest_official_years(db_session)] == [(2027, 2), (2028, 1)]


def test_working_calendar_uses_the_loaded_years(db_session: Session) -> None:
    row = load_official_year(db_session, data=OFFICIAL_2027, loaded_by="admin")
    db_session.commit()
    calendar = working_calendar(db_session)
    assert calendar.year_calendar(2027).source is CalendarSource.official
    deadline = calendar.add_working_days(datetime.fromisoformat("2026-12-30T10:00+08:00"), 3)
    assert deadline.due_at.isoformat() == "2027-01-06T00:00:00+08:00"
    assert not deadline.provisional
    assert deadline.calendar_versions == (
        "chinese-calendar:1.11.0",
        f"official:2027:v1:{row.content_sha256[:8]}",
    )


def test_loaded_by_must_name_someone(db_session: Session) -> None:
    with pytest.raises(ValueError, match="loaded_by"):
        load_official_year(db_session, data=OFFICIAL_2027, loaded_by="  ")


def test_cli_loads_a_file_once_and_deadlines_use_it(
    db_session: Session,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SUNSHINE_DATABASE_URL", database_url)
    get_settings.cache_clear()
    try:
        notice = tmp_path / "2027.yaml"
        notice.write_text(
            "year: 2027\nsource: {doc_no: '测试〔2026〕1号'}\nrest_days: [2027-01-01, 2027-01-04]\nworking_days: []\n",
            encoding="utf-8",
        )
        assert main(["calendar", "load", str(notice), "--loaded-by", "admin"]) == 0
        assert " loaded; loaded by admin at " in capsys.readouterr().out
        assert main(["calendar", "load", str(notice), "--loaded-by", "admin"]) == 0
        assert "unchanged (identical to the latest version)" in capsys.readouterr().out

        assert main(["calendar", "deadline", "--from", "2026-12-30T10:00+08:00", "--workdays", "3"]) == 0
        captured = capsys.readouterr()
        # The official 2027 data makes 4 Jan a rest day: 31 Dec, 5 Jan, 6 Jan.
        assert captured.out.splitlines()[0] == "2027-01-07T00:00:00+08:00"
        assert "2027: official:2027:v1:" in captured.out and "provisional: no" in captured.out
        assert captured.err == ""

        assert main(["calendar", "status", "--today", "2026-12-01"]) == 0
        captured = capsys.readouterr()
        assert "2027: official:2027:v1:" in captured.out and captured.err == ""
    finally:
        get_settings.cache_clear()
