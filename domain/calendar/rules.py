"""Working days and deadlines in China — pure rules: no database, no clock, no I/O.

Legal basis of the counting (texts in /work/shared/reference/domain.md, section 2):

* 民法典 第二百零一条 — a period counted in days starts the day *after* its starting day (第一款); a period
  counted in hours starts at the stated instant (第二款).
* 民法典 第二百零二条 — a period in years or months ends on the corresponding day of the final month.
  (Not used here: the platform's clocks are in hours and working days.)
* 民法典 第二百零三条 — if the last day is a statutory holiday the period ends on the day after the holiday
  (第一款); the last day ends at 24:00 (第二款).
* 行政处罚法 第八十五条 — "二日、三日、五日、七日" in that law mean *working days*, statutory holidays
  excluded.

Calendar data are versioned; each year is resolved once, in this order:

1. official data loaded by an administrator (the State Council 国办 notice, highest revision wins);
2. the ``chinese-calendar`` package, for the years its tables cover (decided up front from its data —
   outside them it raises ``NotImplementedError``, which must never be read as "no holiday");
3. the ``holidays`` package's China table, for years whose 调休 swaps it has transcribed
   (``ChinaStaticHolidays.special_public_holidays``);
4. a provisional rule: statutory holidays (《全国年节及纪念日放假办法》) with 第六条 补假 for those falling on
   a weekend, weekends off, and no make-up working days. ``holidays.China`` computes exactly this for
   a year without a transcribed notice, so such a year is *provisional*, never "holidays-sourced":
   the 调休 schedule cannot be derived from weekdays and is only known from the notice.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from enum import StrEnum
from functools import lru_cache
from typing import Any, Literal

import chinese_calendar
import holidays
import yaml
from holidays.countries.china import ChinaStaticHolidays

# China has had one offset and no DST since 1991; a fixed offset keeps this module free of tz databases,
# which matters inside Temporal activities and workflows.
BEIJING = timezone(timedelta(hours=8))

# A guard against runaway loops (e.g. a CLI typo); four years of working days is far beyond any legal clock.
MAX_WORKING_DAYS = 1000

# Calendar years an official notice may describe.
OFFICIAL_YEARS = range(2000, 2101)

_SATURDAY = 5
_WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


class CalendarSource(StrEnum):
    official = "official"
    chinese_calendar = "chinese-calendar"
    holidays_table = "holidays"
    provisional = "provisional"


class CalendarUnavailableError(ValueError):
    """No rule at all can describe the year (e.g. outside the lunar tables of the holidays package)."""


# ---------------------------------------------------------------------------------------------------------
# Per-year calendars


@dataclass(frozen=True)
class YearProvenance:
    """Which source decided one year, and under which version; stored with every computed deadline."""

    year: int
    source: CalendarSource
    version: str
    provisional: bool

    def __str__(self) -> str:
        text = f"{self.year}: {self.version}"
        if self.provisional:
            text += " (PROVISIONAL: no State Council notice loaded; statutory holidays + 补假, no 调休)"
        return text


@dataclass(frozen=True)
class YearCalendar:
    """Rest days and 调休 make-up working days of one calendar year, from one source."""

    year: int
    source: CalendarSource
    version: str
    provisional: bool
    rest_days: frozenset[date]  # holidays, 补假 and 调休 rest days (weekend dates may appear too)
    working_days: frozenset[date]  # 调休 make-up days: weekend dates that are working days

    @property
    def provenance(self) -> YearProvenance:
        return YearProvenance(self.year, self.source, self.version, self.provisional)

    def is_working_day(self, day: date) -> bool:
        if day.year != self.year:
            raise ValueError(f"{day} is not in the calendar of {self.year}")
        if day in self.working_days:
            return True
        return day not in self.rest_days and day.weekday() < _SATURDAY


@dataclass(frozen=True)
class OfficialYearData:
    """One year as published by the 国务院办公厅 and loaded by an administrator.

    ``revision`` is the database version number once loaded (the highest revision of a year wins);
    ``None`` for data parsed from a file but not stored.
    """

    year: int
    rest_days: frozenset[date]
    working_days: frozenset[date]
    doc_no: str
    url: str | None = None
    revision: int | None = None

    @property
    def content_sha256(self) -> str:
        """Digest of the canonical content (not of the file bytes): reformatting a file changes nothing."""
        canonical = {
            "year": self.year,
            "rest_days": sorted(day.isoformat() for day in self.rest_days),
            "working_days": sorted(day.isoformat() for day in self.working_days),
            "doc_no": self.doc_no,
            "url": self.url,
        }
        encoded = json.dumps(canonical, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(encoded.encode("utf-8")).hexdigest()

    @property
    def version(self) -> str:
        revision = "unsaved" if self.revision is None else f"v{self.revision}"
        return f"official:{self.year}:{revision}:{self.content_sha256[:8]}"

    def year_calendar(self) -> YearCalendar:
        return YearCalendar(
            year=self.year,
            source=CalendarSource.official,
            version=self.version,
            provisional=False,
            rest_days=self.rest_days,
            working_days=self.working_days,
        )


# chinese-calendar's own coverage check uses the span of its holiday table; decide with the same data.
_CHINESE_CALENDAR_YEARS = range(min(chinese_calendar.holidays).year, max(chinese_calendar.holidays).year + 1)


def chinese_calendar_covers(year: int) -> bool:
    return year in _CHINESE_CALENDAR_YEARS


@lru_cache(maxsize=64)
def _chinese_calendar_year(year: int) -> YearCalendar:
    assert chinese_calendar_covers(year)
    return YearCalendar(
        year=year,
        source=CalendarSource.chinese_calendar,
        version=f"chinese-calendar:{chinese_calendar.__version__}",
        provisional=False,
        rest_days=frozenset(day for day in chinese_calendar.holidays if day.year == year),
        working_days=frozenset(day for day in chinese_calendar.workdays if day.year == year),
    )


def _holidays_make_up_days() -> Iterator[date]:
    """Every 调休 make-up working day transcribed in the holidays package.

    Entries are ``(off_month, off_day, work_month, work_day[, work_year])`` under the notice's year (the
    work day may fall in the previous year); a year may hold one tuple instead of a tuple of tuples;
    three-item entries are extra days off without a swap.
    """
    for notice_year, entries in ChinaStaticHolidays.special_public_holidays.items():
        normalised: tuple[Any, ...] = (entries,) if isinstance(entries[0], int) else entries
        for entry in normalised:
            if len(entry) >= 4:
                work_year = entry[4] if len(entry) == 5 else notice_year
                yield date(work_year, entry[2], entry[3])


def holidays_has_notice(year: int) -> bool:
    """True when the holidays package transcribed the State Council notice for ``year`` (its 调休 swaps).

    Beyond the last notice the package still answers, from the lunar calendar and 补假 only: that is
    the provisional rule, not notice data.
    """
    return year in ChinaStaticHolidays.special_public_holidays


@lru_cache(maxsize=64)
def _holidays_year(year: int) -> YearCalendar:
    # Only the public category: the half-day holidays (妇女节, 青年节 …) do not stop agency deadlines.
    rest_days = frozenset(day for day in holidays.China(years=year) if day.year == year)
    if not rest_days:
        raise CalendarUnavailableError(f"no holiday rule can be computed for {year}")
    if holidays_has_notice(year):
        return YearCalendar(
            year=year,
            source=CalendarSource.holidays_table,
            version=f"holidays:{holidays.__version__}",
            provisional=False,
            rest_days=rest_days,
            working_days=frozenset(day for day in _holidays_make_up_days() if day.year == year),
        )
    return YearCalendar(
        year=year,
        source=CalendarSource.provisional,
        version=f"provisional:holidays-{holidays.__version__}",
        provisional=True,
        rest_days=rest_days,
        working_days=frozenset(),
    )


def package_year_calendar(year: int) -> YearCalendar:
    """The calendar of ``year`` from the installed packages alone (resolution steps 2–4)."""
    if chinese_calendar_covers(year):
        return _chinese_calendar_year(year)
    return _holidays_year(year)


# ---------------------------------------------------------------------------------------------------------
# Deadlines

DeadlineRule = Literal["clock_hours", "working_days"]

_CLOCK_HOURS_BASIS = "民法典 第二百零一条 第二款: an hour-based period runs from the stated instant"
_WORKING_DAYS_BASIS = (
    "民法典 第二百零一条 第一款 (counting starts the next day), 第二百零三条 (ends 24:00 of the last day), "
    "行政处罚法 第八十五条 (days are working days)"
)


@dataclass(frozen=True)
class Deadline:
    """A computed due instant with everything needed to print, store and later re-check it."""

    due_at: datetime  # aware, +08:00; for working days: 00:00 of the day after the last counted day
    rule: DeadlineRule
    amount: int
    started_at: datetime  # aware, +08:00
    counted_days: tuple[date, ...]  # the working days counted, in order (working-day rule only)
    calendar_versions: tuple[str, ...]  # the version of every year examined
    provisional: bool  # True if any examined year is provisional: recompute when the notice is loaded
    year_sources: tuple[YearProvenance, ...]
    legal_basis: str

    def provenance(self) -> str:
        if not self.year_sources:
            return "calendar not consulted (clock hours)"
        return "; ".join(str(source) for source in self.year_sources)

    def __str__(self) -> str:
        return f"{self.due_at.isoformat()} ({self.rule} {self.amount}; {self.provenance()})"


def to_beijing(instant: datetime) -> datetime:
    """The same instant in +08:00. Naive datetimes are refused: their instant is unknown."""
    if not isinstance(instant, datetime):
        raise TypeError(f"expected a datetime, got {type(instant).__name__}")
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"{instant.isoformat()} has no UTC offset; pass an aware datetime (e.g. +08:00)")
    return instant.astimezone(BEIJING)


def beijing_date(instant: datetime) -> date:
    """The calendar date in Beijing of an aware instant (2026-11-27T17:00Z is Saturday 28 November)."""
    return to_beijing(instant).date()


def _positive_whole_number(value: object, what: str, limit: int) -> int:
    # bool is an int subclass; True must not silently mean "1 day".
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be a whole number, got {value!r}")
    if not 1 <= value <= limit:
        raise ValueError(f"{what} must be between 1 and {limit}, got {value}")
    return value


class WorkingCalendar:
    """Working days of mainland China, with official data taking precedence over the packages."""

    def __init__(self, official_years: Iterable[OfficialYearData] = ()) -> None:
        self._official: dict[int, OfficialYearData] = {}
        for data in official_years:
            current = self._official.get(data.year)
            if current is None or (data.revision or 0) > (current.revision or 0):
                self._official[data.year] = data
        self._years: dict[int, YearCalendar] = {}

    def year_calendar(self, year: int) -> YearCalendar:
        calendar = self._years.get(year)
        if calendar is None:
            official = self._official.get(year)
            calendar = official.year_calendar() if official else package_year_calendar(year)
            self._years[year] = calendar
        return calendar

    def is_working_day(self, day: date) -> bool:
        """A weekday that is not a rest day, or a 调休 make-up working day."""
        if isinstance(day, datetime):
            raise TypeError("pass a date; for an instant use beijing_date(instant) first")
        return self.year_calendar(day.year).is_working_day(day)

    def add_hours(self, start: datetime, hours: int) -> Deadline:
        """Hour-based period (民法典 第二百零一条 第二款): ``start + hours`` exactly.

        Not stretched over weekends or holidays: 第二百零三条 speaks of days, and the Hexi 办法's 24-hour
        windows (第十六、十八条) are clock hours.
        """
        started_at = to_beijing(start)
        amount = _positive_whole_number(hours, "hours", MAX_WORKING_DAYS * 24)
        return Deadline(
            due_at=started_at + timedelta(hours=amount),
            rule="clock_hours",
            amount=amount,
            started_at=started_at,
            counted_days=(),
            calendar_versions=(),
            provisional=False,
            year_sources=(),
            legal_basis=_CLOCK_HOURS_BASIS,
        )

    def add_working_days(self, start: datetime, working_days: int) -> Deadline:
        """Working-day period: 民法典 第二百零一条 第一款, 第二百零三条; 行政处罚法 第八十五条.

        The start's Beijing date is not counted; counting starts the next day. The period ends at 24:00
        (+08:00) of the n-th working day, returned as 00:00+08:00 of the following day. The last day is
        a working day by construction, so 第二百零三条 第一款 (last day a holiday) needs no extra step.
        """
        started_at = to_beijing(start)
        amount = _positive_whole_number(working_days, "working days", MAX_WORKING_DAYS)
        day = started_at.date()
        counted: list[date] = []
        examined_years: dict[int, YearProvenance] = {}
        while len(counted) < amount:
            day += timedelta(days=1)
            calendar = self.year_calendar(day.year)
            examined_years.setdefault(day.year, calendar.provenance)
            if calendar.is_working_day(day):
                counted.append(day)
        end_of_last_day = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=BEIJING)
        sources = tuple(examined_years.values())
        return Deadline(
            due_at=end_of_last_day,
            rule="working_days",
            amount=amount,
            started_at=started_at,
            counted_days=tuple(counted),
            calendar_versions=tuple(source.version for source in sources),
            provisional=any(source.provisional for source in sources),
            year_sources=sources,
            legal_basis=_WORKING_DAYS_BASIS,
        )


# ---------------------------------------------------------------------------------------------------------
# Official files (YAML or JSON)

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TOP_LEVEL_KEYS = frozenset({"year", "source", "rest_days", "working_days", "provisional"})
_SOURCE_KEYS = frozenset({"doc_no", "url"})
_DOC_NO_MAX = 100  # column sizes of OfficialCalendarYear
_URL_MAX = 500


class OfficialCalendarError(ValueError):
    """An official calendar file is refused; ``problems`` lists every reason found."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(self.problems))


class _TextDatesLoader(yaml.SafeLoader):
    """Safe YAML that keeps dates as text (one error path for bad dates) and refuses duplicate keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        keys = [self.construct_object(key_node, deep=deep) for key_node, _ in node.value]
        duplicates = sorted({str(key) for key in keys if keys.count(key) > 1})
        if duplicates:
            raise OfficialCalendarError([f"duplicate key(s): {', '.join(duplicates)}"])
        return super().construct_mapping(node, deep=deep)


_TextDatesLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def parse_official_calendar(text: str, *, file_format: Literal["yaml", "json"] = "yaml") -> OfficialYearData:
    """Parse and validate an official calendar file; raises :class:`OfficialCalendarError`."""
    try:
        if file_format == "json":
            document = json.loads(text, object_pairs_hook=_json_object_refusing_duplicates)
        else:
            document = yaml.load(text, Loader=_TextDatesLoader)  # noqa: S506 (a SafeLoader subclass)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise OfficialCalendarError([f"not valid {file_format.upper()}: {exc}"]) from exc
    return validate_official_calendar(document)


def _json_object_refusing_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    duplicates = sorted({key for key in keys if keys.count(key) > 1})
    if duplicates:
        raise OfficialCalendarError([f"duplicate key(s): {', '.join(duplicates)}"])
    return dict(pairs)


def validate_official_calendar(document: object) -> OfficialYearData:
    """Check the shape ``{year, source: {doc_no, url}, rest_days, working_days}`` and every date in it."""
    if not isinstance(document, Mapping):
        raise OfficialCalendarError(["the file must be a mapping with year, source, rest_days, working_days"])
    problems: list[str] = []
    unknown = sorted(str(key) for key in document if key not in _TOP_LEVEL_KEYS)
    if unknown:
        problems.append(f"unknown key(s): {', '.join(unknown)} (allowed: {', '.join(sorted(_TOP_LEVEL_KEYS))})")
    if document.get("provisional", False) is not False:
        problems.append("provisional: an official notice cannot be provisional (omit the key or write false)")

    year = document.get("year")
    if isinstance(year, bool) or not isinstance(year, int) or year not in OFFICIAL_YEARS:
        problems.append(
            f"year: expected a year between {OFFICIAL_YEARS.start} and {OFFICIAL_YEARS.stop - 1}, got {year!r}"
        )
        year = None

    doc_no, url = _validate_source(document.get("source"), problems)
    rest_days = _validate_dates(document, "rest_days", year, problems)
    working_days = _validate_dates(document, "working_days", year, problems)
    if document.get("rest_days") == []:
        problems.append("rest_days: empty; every notice has rest days (at least 元旦)")
    for day in sorted(working_days):
        if day.weekday() < _SATURDAY:
            problems.append(
                f"working_days: {day} is a {_WEEKDAY_NAMES[day.weekday()]}; make-up working days (调休) "
                "fall on a Saturday or Sunday"
            )
    for day in sorted(rest_days & working_days):
        problems.append(f"{day} is in both rest_days and working_days")

    if problems:
        raise OfficialCalendarError(problems)
    assert year is not None and doc_no is not None
    return OfficialYearData(
        year=year, rest_days=frozenset(rest_days), working_days=frozenset(working_days), doc_no=doc_no, url=url
    )


def _validate_source(source: object, problems: list[str]) -> tuple[str | None, str | None]:
    if not isinstance(source, Mapping):
        problems.append("source: expected a mapping with doc_no (国办发明电〔YYYY〕N号) and url")
        return None, None
    unknown = sorted(str(key) for key in source if key not in _SOURCE_KEYS)
    if unknown:
        problems.append(f"source: unknown key(s): {', '.join(unknown)} (allowed: doc_no, url)")
    doc_no = source.get("doc_no")
    if not isinstance(doc_no, str) or not doc_no.strip():
        problems.append("source.doc_no: missing; give the notice number, e.g. 国办发明电〔2026〕N号")
        doc_no = None
    elif len(doc_no.strip()) > _DOC_NO_MAX:
        problems.append(f"source.doc_no: longer than {_DOC_NO_MAX} characters")
    url = source.get("url")
    if url is not None and (not isinstance(url, str) or not re.match(r"https?://\S+$", url)):
        problems.append(f"source.url: expected an http(s) URL, got {url!r}")
        url = None
    elif isinstance(url, str) and len(url) > _URL_MAX:
        problems.append(f"source.url: longer than {_URL_MAX} characters")
    return (doc_no.strip() if doc_no else None), url


def _validate_dates(document: Mapping[Any, Any], key: str, year: int | None, problems: list[str]) -> set[date]:
    values = document.get(key)
    if not isinstance(values, list):
        problems.append(f"{key}: expected a list of dates (YYYY-MM-DD), got {values!r}")
        return set()
    days: set[date] = set()
    for index, value in enumerate(values):
        where = f"{key}[{index}]"
        if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
            problems.append(f"{where}: {value!r} is not a date written YYYY-MM-DD")
            continue
        try:
            day = date.fromisoformat(value)
        except ValueError:
            problems.append(f"{where}: {value!r} is not a valid date")
            continue
        if day in days:
            problems.append(f"{where}: {day} is listed twice")
        elif year is not None and day.year != year:
            problems.append(f"{where}: {day} is outside {year}; it belongs in the {day.year} file")
        days.add(day)
    return days


# ---------------------------------------------------------------------------------------------------------
# Coverage status (operators must load next year's notice in time)

# The 国办 notice usually appears in October–November; from this day on a missing next year is an alarm.
_WARN_FROM_MONTH_DAY = (12, 1)


@dataclass(frozen=True)
class YearStatus:
    year: int
    source: CalendarSource
    version: str
    provisional: bool
    warning: str | None


def year_status(year: int, official_years: Iterable[OfficialYearData] = ()) -> YearStatus:
    """Which source covers ``year``; warns whenever that year is provisional."""
    calendar = WorkingCalendar(official_years).year_calendar(year)
    warning = (
        f"holiday data for {year} is provisional ({calendar.version}): load the State Council notice with "
        "`sunshine calendar load FILE`"
        if calendar.provisional
        else None
    )
    return YearStatus(year, calendar.source, calendar.version, calendar.provisional, warning)


def next_year_status(today: date, official_years: Iterable[OfficialYearData] = ()) -> YearStatus:
    """Coverage of the year after ``today``'s; from 1 December a provisional next year is a warning."""
    status = year_status(today.year + 1, official_years)
    if (today.month, today.day) < _WARN_FROM_MONTH_DAY:
        return YearStatus(status.year, status.source, status.version, status.provisional, None)
    return status
