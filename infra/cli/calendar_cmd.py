"""`sunshine calendar load | deadline | status` — official holiday data and deadline arithmetic."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from domain.calendar.rules import (
    BEIJING,
    MAX_WORKING_DAYS,
    Deadline,
    OfficialCalendarError,
    OfficialYearData,
    WorkingCalendar,
    YearStatus,
    next_year_status,
    year_status,
)
from infra.cli import CommandError

if TYPE_CHECKING:
    from sqlmodel import Session

_T = TypeVar("_T")

# An unreachable host must not hang the command: the packages still answer without the database.
_CONNECT_TIMEOUT_S = 5

_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def register(subparsers: argparse._SubParsersAction) -> None:
    calendar = subparsers.add_parser("calendar", help="working-day calendar: official data and deadlines")
    actions = calendar.add_subparsers(dest="calendar_command", metavar="ACTION", required=True)

    load = actions.add_parser("load", help="load a State Council holiday notice (YAML or JSON) as a new version")
    load.add_argument("file", type=Path, metavar="FILE", help="year, source {doc_no, url}, rest_days, working_days")
    load.add_argument("--loaded-by", default=None, metavar="NAME", help="administrator (default: $USER)")
    load.set_defaults(handler=_load)

    deadline = actions.add_parser("deadline", help="compute a deadline (+08:00) and show the calendar used")
    deadline.add_argument(
        "--from", dest="start", required=True, type=_aware_datetime, metavar="ISO8601",
        help="start instant with its UTC offset, e.g. 2026-09-30T15:00+08:00 or 2026-09-30T07:00Z",
    )  # fmt: skip
    amount = deadline.add_mutually_exclusive_group(required=True)
    amount.add_argument("--workdays", type=_whole_number(MAX_WORKING_DAYS), metavar="N", help="N working days")
    amount.add_argument("--hours", type=_whole_number(MAX_WORKING_DAYS * 24), metavar="N", help="N clock hours")
    _add_no_database(deadline)
    deadline.set_defaults(handler=_deadline)

    status = actions.add_parser("status", help="which source covers this year and next; warns from 1 December")
    status.add_argument("--today", type=_iso_date, default=None, metavar="YYYY-MM-DD", help="default: today")
    _add_no_database(status)
    status.set_defaults(handler=_status)


def _add_no_database(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-database", action="store_true", help="use the installed packages only, not official data")


# Argument types: argparse turns ArgumentTypeError into "error: argument --x: <message>" and exit 2.


def _aware_datetime(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 date-time") from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} has no UTC offset; the instant would be ambiguous — write e.g. {text}+08:00"
        )
    return value


def _iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _whole_number(limit: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not 1 <= value <= limit:
            raise argparse.ArgumentTypeError(f"{value} must be between 1 and {limit}")
        return value

    return parse


# Handlers


def _load(args: argparse.Namespace) -> int:
    # Validate before touching the database: a refused file needs no connection.
    data = _read_official_file(args.file)
    loaded_by = (args.loaded_by or _login_name()).strip()
    if not loaded_by:
        raise CommandError("--loaded-by must name the administrator", exit_code=2)
    from sqlalchemy.exc import IntegrityError

    from domain.calendar.service import latest_official_years, load_official_year, official_year_data

    def store(session: Session) -> tuple[bool, str, str, datetime]:
        before = {row.year: row.version for row in latest_official_years(session)}.get(data.year)
        row = load_official_year(session, data=data, loaded_by=loaded_by)
        return row.version != before, official_year_data(row).version, row.loaded_by, row.loaded_at

    try:
        added, version, row_loaded_by, loaded_at = _with_session(store)
    except IntegrityError as exc:
        raise CommandError(f"another load of {data.year} ran at the same time; run the command again") from exc
    except _DatabaseUnavailable as exc:
        raise CommandError(f"cannot load: {exc}") from exc
    outcome = "loaded" if added else "unchanged (identical to the latest version)"
    when = loaded_at.astimezone(BEIJING).isoformat(timespec="seconds")
    print(f"{data.year}: {version} {outcome}; loaded by {row_loaded_by} at {when}")
    return 0


def _deadline(args: argparse.Namespace) -> int:
    calendar = _working_calendar(use_database=not args.no_database)
    try:
        if args.workdays is not None:
            deadline = calendar.add_working_days(args.start, args.workdays)
        else:
            deadline = calendar.add_hours(args.start, args.hours)
    except (ValueError, OverflowError) as exc:  # e.g. a year no calendar rule describes
        raise CommandError(f"cannot compute the deadline: {exc}") from exc
    print("\n".join(_describe(deadline)))
    if deadline.provisional:
        _warn(
            "this deadline uses provisional holiday data; recompute it when the State Council notice is loaded "
            "(extend, never shorten a notified deadline)"
        )
    return 0


def _status(args: argparse.Namespace) -> int:
    today: date = args.today or datetime.now(BEIJING).date()
    official = _official_years(use_database=not args.no_database)
    this_year = year_status(today.year, official)
    next_year = next_year_status(today, official)
    for status in (this_year, next_year):
        print(_status_line(status))
    for warning in dict.fromkeys((this_year.warning, next_year.warning)):
        if warning:
            _warn(warning)
    return 0


# Output


def _describe(deadline: Deadline) -> list[str]:
    lines = [deadline.due_at.isoformat()]
    if deadline.rule == "working_days":
        last_day = deadline.counted_days[-1]
        lines.append(f"ends: 24:00 (+08:00) of {last_day.isoformat()} ({_WEEKDAYS[last_day.weekday()]})")
        lines.append(f"working days counted: {', '.join(day.isoformat() for day in deadline.counted_days)}")
    else:
        lines.append(f"ends: {deadline.amount} clock hours after {deadline.started_at.isoformat()}")
    lines.append(f"calendar: {deadline.provenance()}")
    lines.append(f"provisional: {'yes' if deadline.provisional else 'no'}")
    lines.append(f"basis: {deadline.legal_basis}")
    return lines


def _status_line(status: YearStatus) -> str:
    flag = "PROVISIONAL: no State Council notice" if status.provisional else "final"
    return f"{status.year}: {status.version} ({flag})"


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


# Files and database


def _read_official_file(path: Path) -> OfficialYearData:
    from domain.calendar.rules import parse_official_calendar

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"cannot read {path}: {exc}", exit_code=2) from exc
    try:
        if path.suffix.lower() == ".json":
            return parse_official_calendar(text, file_format="json")
        return parse_official_calendar(text, file_format="yaml")
    except OfficialCalendarError as exc:
        problems = "\n  - ".join(exc.problems)
        raise CommandError(f"{path} refused:\n  - {problems}") from exc


def _login_name() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (OSError, KeyError):
        raise CommandError("cannot tell who is loading; pass --loaded-by NAME", exit_code=2) from None


class _DatabaseUnavailable(Exception):
    """The database could not be configured, reached or read; the message says which and why."""


def _with_session(action: Callable[[Session], _T]) -> _T:
    from sqlalchemy.exc import IntegrityError, SQLAlchemyError

    from infra.db import make_engine, session_scope
    from infra.settings import get_settings

    try:
        url = get_settings().effective_database_url
    except ValueError as exc:  # SettingsError and pydantic's ValidationError
        raise _DatabaseUnavailable(f"invalid database configuration: {exc}") from exc
    engine = make_engine(url, connect_args={"connect_timeout": _CONNECT_TIMEOUT_S})
    try:
        with session_scope(engine) as session:
            return action(session)
    except IntegrityError:
        raise  # a conflict, not an outage: the caller words it
    except SQLAlchemyError as exc:
        reason = " ".join(str(getattr(exc, "orig", None) or exc).split())  # one line on stderr
        raise _DatabaseUnavailable(f"database unavailable ({type(exc).__name__}: {reason})") from exc
    finally:
        engine.dispose()


def _official_years(*, use_database: bool) -> list[OfficialYearData]:
    if not use_database:
        return []
    from domain.calendar.service import official_years

    try:
        return _with_session(official_years)
    except _DatabaseUnavailable as exc:
        _warn(f"official calendar data could not be read, using the packages only: {exc}")
        return []


def _working_calendar(*, use_database: bool) -> WorkingCalendar:
    return WorkingCalendar(_official_years(use_database=use_database))
