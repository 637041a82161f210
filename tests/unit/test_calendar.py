"""Working days and deadlines, on the real package data (chinese-calendar 1.11.0, holidays 0.109)."""

from __future__ import annotations

import dataclasses
import json
from datetime import date, datetime, timedelta

import chinese_calendar
import pytest

from domain.calendar.rules import (
    BEIJING,
    CalendarSource,
    OfficialCalendarError,
    OfficialYearData,
    WorkingCalendar,
    beijing_date,
    next_year_status,
    package_year_calendar,
    parse_official_calendar,
    year_status,
)

CALENDAR = WorkingCalendar()


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def due(start: str, working_days: int, calendar: WorkingCalendar = CALENDAR) -> str:
    return calendar.add_working_days(at(start), working_days).due_at.isoformat()


def days(*texts: str) -> tuple[date, ...]:
    return tuple(date.fromisoformat(text) for text in texts)


OFFICIAL_2027_YAML = """
year: 2027
source: {doc_no: "测试〔2026〕1号", url: "https://www.gov.cn/test"}
rest_days: [2027-01-01, 2027-01-02, 2027-01-03]
working_days: []
"""


# --- the package data agrees with the State Council notice for 2026 -------------------------------------


def test_chinese_calendar_has_the_2026_national_day_and_mid_autumn_notice() -> None:
    for rest_day in days("2026-09-25", *(f"2026-10-0{n}" for n in range(1, 8))):
        assert not chinese_calendar.is_workday(rest_day), rest_day
        assert not CALENDAR.is_working_day(rest_day), rest_day
    for make_up_day in days("2026-09-20", "2026-10-10"):  # a Sunday and a Saturday
        assert make_up_day.weekday() >= 5
        assert chinese_calendar.is_workday(make_up_day)
        assert CALENDAR.is_working_day(make_up_day)


def test_chinese_calendar_has_the_2026_spring_festival_notice() -> None:
    for rest_day in days(*(f"2026-02-{n}" for n in range(15, 24))):
        assert not chinese_calendar.is_workday(rest_day), rest_day
        assert not CALENDAR.is_working_day(rest_day), rest_day
    for make_up_saturday in days("2026-02-14", "2026-02-28"):
        assert make_up_saturday.weekday() == 5
        assert chinese_calendar.is_workday(make_up_saturday)
        assert CALENDAR.is_working_day(make_up_saturday)


@pytest.mark.parametrize("year", [2024, 2025, 2026])
def test_holidays_table_agrees_with_chinese_calendar_on_announced_years(year: int) -> None:
    from domain.calendar.rules import _holidays_year

    from_holidays = _holidays_year(year)
    assert from_holidays.source is CalendarSource.holidays_table and not from_holidays.provisional
    assert from_holidays.working_days == package_year_calendar(year).working_days
    day = date(year, 1, 1)
    while day.year == year:
        assert from_holidays.is_working_day(day) == chinese_calendar.is_workday(day), day
        day += timedelta(days=1)


# --- working-day deadlines (民法典 201①, 203; 行政处罚法 85) ----------------------------------------------


@pytest.mark.parametrize(
    ("start", "working_days", "expected_due", "expected_counted"),
    [
        # The domain reference's worked example: Sat → Mon 30, Tue 1, Wed 2 → 24:00 of Wed 2 December.
        ("2026-11-28T09:00+08:00", 3, "2026-12-03T00:00:00+08:00", ("2026-11-30", "2026-12-01", "2026-12-02")),
        # 1–7 Oct off, Thu 8, Fri 9, then the make-up Saturday 10 Oct.
        ("2026-09-30T15:00+08:00", 3, "2026-10-11T00:00:00+08:00", ("2026-10-08", "2026-10-09", "2026-10-10")),
        # From Friday 18 Sep: Saturday off, the make-up Sunday 20 Sep is the first working day.
        ("2026-09-18T10:00+08:00", 1, "2026-09-21T00:00:00+08:00", ("2026-09-20",)),
        ("2026-09-18T10:00+08:00", 2, "2026-09-22T00:00:00+08:00", ("2026-09-20", "2026-09-21")),
        # From Thursday 24 Sep: Mid-Autumn Friday 25 and the weekend are skipped.
        ("2026-09-24T11:00+08:00", 1, "2026-09-29T00:00:00+08:00", ("2026-09-28",)),
        ("2026-09-24T11:00+08:00", 3, "2026-10-01T00:00:00+08:00", ("2026-09-28", "2026-09-29", "2026-09-30")),
        ("2026-09-24T11:00+08:00", 4, "2026-10-09T00:00:00+08:00",
         ("2026-09-28", "2026-09-29", "2026-09-30", "2026-10-08")),
        # Spring Festival: Saturday 14 Feb works, 15–23 Feb off, Saturday 28 Feb works.
        ("2026-02-13T18:00+08:00", 1, "2026-02-15T00:00:00+08:00", ("2026-02-14",)),
        ("2026-02-13T18:00+08:00", 2, "2026-02-25T00:00:00+08:00", ("2026-02-14", "2026-02-24")),
        ("2026-02-27T18:00+08:00", 1, "2026-03-01T00:00:00+08:00", ("2026-02-28",)),
    ],
)  # fmt: skip
def test_working_days_count_from_the_next_day_and_end_at_24_00(
    start: str, working_days: int, expected_due: str, expected_counted: tuple[str, ...]
) -> None:
    deadline = CALENDAR.add_working_days(at(start), working_days)
    assert deadline.due_at.isoformat() == expected_due
    assert deadline.counted_days == days(*expected_counted)
    assert deadline.rule == "working_days" and deadline.amount == working_days
    assert deadline.calendar_versions == ("chinese-calendar:1.11.0",)
    assert not deadline.provisional


def test_start_late_in_the_day_counts_the_same_as_early() -> None:
    assert due("2026-11-30T00:00+08:00", 1) == due("2026-11-30T23:59:59+08:00", 1) == "2026-12-02T00:00:00+08:00"


def test_utc_input_counts_from_the_beijing_date() -> None:
    # 17:00Z on Friday 27 Nov is 01:00 on Saturday 28 Nov in Beijing: the worked example again.
    start = at("2026-11-27T17:00Z")
    assert beijing_date(start) == date(2026, 11, 28)
    deadline = CALENDAR.add_working_days(start, 3)
    assert deadline.due_at.isoformat() == "2026-12-03T00:00:00+08:00"
    assert deadline.started_at.isoformat() == "2026-11-28T01:00:00+08:00"
    # Here the UTC date would give another answer: Thu 26 Nov (UTC) vs Fri 27 Nov (Beijing).
    assert due("2026-11-26T16:30Z", 1) == "2026-12-01T00:00:00+08:00"
    assert due("2026-11-26T16:30+00:00", 1) == due("2026-11-27T00:30+08:00", 1)


def test_due_instant_is_stored_as_utc_correctly() -> None:
    deadline = CALENDAR.add_working_days(at("2026-11-28T09:00+08:00"), 3)
    assert deadline.due_at.utcoffset() == timedelta(hours=8)
    assert deadline.due_at == at("2026-12-02T16:00Z")


def test_a_deadline_crossing_into_an_unannounced_year_is_provisional_and_says_so() -> None:
    deadline = CALENDAR.add_working_days(at("2026-12-30T10:00+08:00"), 3)
    # Provisional 2027: 1 Jan (Friday) off, weekend, then Monday 4 and Tuesday 5.
    assert deadline.counted_days == days("2026-12-31", "2027-01-04", "2027-01-05")
    assert deadline.due_at.isoformat() == "2027-01-06T00:00:00+08:00"
    assert deadline.provisional
    assert deadline.calendar_versions == ("chinese-calendar:1.11.0", "provisional:holidays-0.109")
    assert [source.source for source in deadline.year_sources] == [
        CalendarSource.chinese_calendar,
        CalendarSource.provisional,
    ]
    assert "2027: provisional:holidays-0.109 (PROVISIONAL" in deadline.provenance()
    assert "2026: chinese-calendar:1.11.0" in str(deadline)


def test_only_examined_years_are_recorded() -> None:
    # Start on 31 Dec 2026: the start day is not examined, so only 2027 decides.
    deadline = CALENDAR.add_working_days(at("2026-12-31T10:00+08:00"), 1)
    assert deadline.calendar_versions == ("provisional:holidays-0.109",)


def test_the_provisional_rule_gives_statutory_days_and_weekend_compensation_only() -> None:
    year_2027 = package_year_calendar(2027)
    assert year_2027.provisional and year_2027.source is CalendarSource.provisional
    assert year_2027.working_days == frozenset()  # no 调休 make-up days without a notice
    # Spring Festival 2027: eve Fri 5 Feb to Mon 8 Feb, plus 补假 Tue 9 and Wed 10 for the weekend days.
    assert set(days(*(f"2027-02-{n:02d}" for n in range(5, 11)))) <= year_2027.rest_days
    assert year_2027.is_working_day(date(2027, 2, 11))


def test_chinese_calendar_is_never_asked_about_years_it_does_not_cover() -> None:
    with pytest.raises(NotImplementedError):  # the trap: never read this as "not a holiday"
        chinese_calendar.is_workday(date(2027, 1, 4))
    assert CALENDAR.is_working_day(date(2027, 1, 4))
    assert not CALENDAR.is_working_day(date(2027, 1, 1))


def test_years_before_chinese_calendar_come_from_the_holidays_table_or_are_provisional() -> None:
    assert package_year_calendar(2003).version == "holidays:0.109"
    assert not package_year_calendar(2003).provisional
    assert package_year_calendar(2003).is_working_day(date(2003, 2, 8))  # Saturday make-up day
    assert package_year_calendar(1999).provisional


# --- clock hours (民法典 201②) ----------------------------------------------------------------------------


def test_24_clock_hours_run_through_a_holiday() -> None:
    deadline = CALENDAR.add_hours(at("2026-09-30T15:00+08:00"), 24)
    assert deadline.due_at.isoformat() == "2026-10-01T15:00:00+08:00"  # National Day, not stretched
    assert deadline.rule == "clock_hours" and deadline.counted_days == ()
    assert deadline.calendar_versions == () and not deadline.provisional


def test_clock_hours_from_utc_are_returned_in_beijing_time() -> None:
    deadline = CALENDAR.add_hours(at("2026-11-27T17:00Z"), 24)
    assert deadline.due_at.isoformat() == "2026-11-29T01:00:00+08:00"


# --- refused inputs -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["add_hours", "add_working_days"])
def test_naive_datetimes_are_refused(method: str) -> None:
    with pytest.raises(ValueError, match="no UTC offset"):
        getattr(CALENDAR, method)(datetime(2026, 9, 30, 15, 0), 3)


@pytest.mark.parametrize("amount", [0, -1, 1001])
def test_working_days_out_of_range_are_refused(amount: int) -> None:
    with pytest.raises(ValueError, match="working days must be between 1 and 1000"):
        CALENDAR.add_working_days(at("2026-09-30T15:00+08:00"), amount)


@pytest.mark.parametrize("amount", [True, 1.5, "3"])
def test_non_integer_amounts_are_refused(amount: object) -> None:
    with pytest.raises(TypeError):
        CALENDAR.add_working_days(at("2026-09-30T15:00+08:00"), amount)  # type: ignore[arg-type]


def test_is_working_day_refuses_an_instant() -> None:
    with pytest.raises(TypeError, match="beijing_date"):
        CALENDAR.is_working_day(at("2026-09-30T15:00+08:00"))


def test_deadline_is_immutable() -> None:
    deadline = CALENDAR.add_working_days(at("2026-11-28T09:00+08:00"), 3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        deadline.due_at = at("2026-12-31T00:00+08:00")  # type: ignore[misc]


# --- official data overrides the packages ------------------------------------------------------------------


def test_official_2027_makes_a_deadline_final_and_records_its_version() -> None:
    official = parse_official_calendar(OFFICIAL_2027_YAML)
    deadline = WorkingCalendar([official]).add_working_days(at("2026-12-30T10:00+08:00"), 3)
    assert deadline.due_at.isoformat() == "2027-01-06T00:00:00+08:00"
    assert not deadline.provisional
    assert deadline.calendar_versions == (
        "chinese-calendar:1.11.0",
        f"official:2027:unsaved:{official.content_sha256[:8]}",
    )


def test_official_2026_overrides_chinese_calendar() -> None:
    # A (hypothetical) corrected 2026 notice: 31 Dec becomes a rest day, Sunday 27 Dec a make-up day.
    official = OfficialYearData(
        year=2026,
        rest_days=frozenset(days("2026-10-01", "2026-12-31")),
        working_days=frozenset(days("2026-12-27")),
        doc_no="测试〔2026〕2号",
        revision=2,
    )
    calendar = WorkingCalendar([official])
    deadline = calendar.add_working_days(at("2026-12-25T10:00+08:00"), 2)  # a Friday
    assert deadline.counted_days == days("2026-12-27", "2026-12-28")
    assert deadline.due_at.isoformat() == "2026-12-29T00:00:00+08:00"
    assert deadline.year_sources[0].source is CalendarSource.official
    assert deadline.calendar_versions == (f"official:2026:v2:{official.content_sha256[:8]}",)
    assert not calendar.is_working_day(date(2026, 12, 31))
    assert CALENDAR.is_working_day(date(2026, 12, 31))  # the packages alone


def test_the_highest_official_revision_wins() -> None:
    first = dataclasses.replace(parse_official_calendar(OFFICIAL_2027_YAML), revision=1)
    second = dataclasses.replace(first, rest_days=first.rest_days | {date(2027, 1, 4)}, revision=2)
    for order in ([first, second], [second, first]):
        assert not WorkingCalendar(order).is_working_day(date(2027, 1, 4))


# --- official files -------------------------------------------------------------------------------------


def test_yaml_and_json_files_with_the_same_content_have_the_same_digest() -> None:
    from_yaml = parse_official_calendar(OFFICIAL_2027_YAML)
    as_json = json.dumps(
        {
            "working_days": [],
            "rest_days": ["2027-01-03", "2027-01-02", "2027-01-01"],
            "source": {"url": "https://www.gov.cn/test", "doc_no": "测试〔2026〕1号"},
            "year": 2027,
        },
        ensure_ascii=False,
    )
    from_json = parse_official_calendar(as_json, file_format="json")
    assert from_json == from_yaml
    assert from_json.content_sha256 == from_yaml.content_sha256
    assert from_yaml.doc_no == "测试〔2026〕1号" and from_yaml.url == "https://www.gov.cn/test"


def test_a_file_may_say_provisional_false() -> None:
    assert parse_official_calendar(OFFICIAL_2027_YAML + "provisional: false\n").year == 2027


def official_yaml(**replace: str) -> str:
    fields = {
        "year": "2027",
        "source": '{doc_no: "测试〔2026〕1号", url: "https://www.gov.cn/test"}',
        "rest_days": "[2027-01-01, 2027-02-08]",
        "working_days": "[2027-02-07]",
    }
    fields.update(replace)
    return "".join(f"{key}: {value}\n" for key, value in fields.items() if value != "<omit>")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (official_yaml(rest_days="[2027-01-01, 2028-01-01]"), "rest_days[1]: 2028-01-01 is outside 2027"),
        (official_yaml(working_days="[2026-12-27]"), "working_days[0]: 2026-12-27 is outside 2027"),
        (official_yaml(working_days="[2027-02-09]"), "2027-02-09 is a Tuesday; make-up working days (调休) fall on"),
        (official_yaml(rest_days="[2027-01-01, 2027-02-07]"), "2027-02-07 is in both rest_days and working_days"),
        (official_yaml(rest_days="[2027-01-01, 2027-01-01]"), "rest_days[1]: 2027-01-01 is listed twice"),
        (official_yaml(source='{url: "https://www.gov.cn/x"}'), "source.doc_no: missing"),
        (official_yaml(source='{doc_no: "  "}'), "source.doc_no: missing"),
        (official_yaml(source="<omit>"), "source: expected a mapping"),
        (official_yaml(source='{doc_no: "N", link: "x"}'), "source: unknown key(s): link"),
        (official_yaml(source='{doc_no: "N", url: "ftp://x"}'), "source.url: expected an http(s) URL"),
        (official_yaml(rest_days="[2027-02-30]"), "rest_days[0]: '2027-02-30' is not a valid date"),
        (official_yaml(rest_days="[2027-1-1]"), "rest_days[0]: '2027-1-1' is not a date written YYYY-MM-DD"),
        (official_yaml(rest_days="[20270101]"), "rest_days[0]: 20270101 is not a date written YYYY-MM-DD"),
        (official_yaml(rest_days="2027-01-01"), "rest_days: expected a list of dates"),
        (official_yaml(rest_days="[]"), "rest_days: empty"),
        (official_yaml(working_days="<omit>"), "working_days: expected a list of dates"),
        (official_yaml(year="1999"), "year: expected a year between 2000 and 2100"),
        (official_yaml(year='"2027"'), "year: expected a year between 2000 and 2100, got '2027'"),
        (official_yaml(holidays="[2027-01-01]"), "unknown key(s): holidays"),
        (official_yaml(provisional="true"), "an official notice cannot be provisional"),
        (official_yaml() + "year: 2028\n", "duplicate key(s): year"),
        ("- 2027-01-01\n", "the file must be a mapping"),
        ("year: [2027\n", "not valid YAML"),
    ],
)
def test_official_file_refusals_name_the_problem(text: str, problem: str) -> None:
    with pytest.raises(OfficialCalendarError) as refused:
        parse_official_calendar(text)
    assert problem in str(refused.value)


def test_every_problem_is_reported_at_once() -> None:
    text = official_yaml(source="{}", rest_days="[2027-01-01, 2027-01-01]", working_days="[2027-02-09]")
    with pytest.raises(OfficialCalendarError) as refused:
        parse_official_calendar(text)
    assert len(refused.value.problems) == 3


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{"year": 2027, "year": 2028}', "duplicate key(s): year"),
        ('{"year": 2027,', "not valid JSON"),
    ],
)
def test_json_refusals(text: str, problem: str) -> None:
    with pytest.raises(OfficialCalendarError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        parse_official_calendar(text, file_format="json")


# --- next year's data: the 1 December warning -----------------------------------------------------------


def test_no_warning_before_1_december() -> None:
    status = next_year_status(date(2026, 11, 30))
    assert (status.year, status.provisional, status.warning) == (2027, True, None)


def test_warning_from_1_december_when_next_year_would_be_provisional() -> None:
    status = next_year_status(date(2026, 12, 1))
    assert status.year == 2027 and status.provisional and status.source is CalendarSource.provisional
    assert status.warning is not None and "2027" in status.warning and "sunshine calendar load" in status.warning
    assert next_year_status(date(2026, 12, 31)).warning is not None


def test_no_warning_once_next_year_is_loaded() -> None:
    status = next_year_status(date(2026, 12, 1), [parse_official_calendar(OFFICIAL_2027_YAML)])
    assert status.source is CalendarSource.official and not status.provisional and status.warning is None


def test_no_warning_when_chinese_calendar_covers_next_year() -> None:
    status = next_year_status(date(2025, 12, 1))
    assert (status.year, status.source, status.warning) == (2026, CalendarSource.chinese_calendar, None)


def test_a_provisional_current_year_always_warns() -> None:
    assert year_status(2027).warning is not None
    assert year_status(2026).warning is None


def test_beijing_is_a_fixed_plus_eight_offset() -> None:
    assert BEIJING.utcoffset(None) == timedelta(hours=8)
