"""`sunshine calendar …` without a database (package data only, or an unreachable server)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.cli import main
from infra.settings import get_settings


def run(*argv: str) -> int:
    """Exit code of the command, whether it returns it or argparse exits."""
    try:
        return main(["calendar", *argv])
    except SystemExit as exc:
        return int(exc.code or 0)


@pytest.fixture
def unreachable_database(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Port 1 on loopback refuses at once: an outage without waiting for a timeout.
    monkeypatch.setenv("SUNSHINE_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/sunshine")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


# --- deadline -------------------------------------------------------------------------------------------


def test_deadline_over_national_day_prints_the_due_instant_first(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("deadline", "--no-database", "--from", "2026-09-30T15:00+08:00", "--workdays", "3") == 0
    lines = capsys.readouterr().out.splitlines()
    # 1–7 Oct off; Thu 8, Fri 9 and the make-up Saturday 10 Oct count: due at 24:00 on 10 Oct.
    assert lines[0] == "2026-10-11T00:00:00+08:00"
    output = "\n".join(lines)
    assert "ends: 24:00 (+08:00) of 2026-10-10 (Sat)" in output
    assert "working days counted: 2026-10-08, 2026-10-09, 2026-10-10" in output
    assert "calendar: 2026: chinese-calendar:1.11.0" in output
    assert "provisional: no" in output
    assert "民法典 第二百零一条" in output


def test_deadline_worked_example_from_utc(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("deadline", "--no-database", "--from", "2026-11-27T17:00Z", "--workdays", "3") == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines()[0] == "2026-12-03T00:00:00+08:00"
    assert "working days counted: 2026-11-30, 2026-12-01, 2026-12-02" in captured.out
    assert captured.err == ""


def test_deadline_in_clock_hours_is_not_stretched(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("deadline", "--no-database", "--from", "2026-09-30T15:00+08:00", "--hours", "24") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "2026-10-01T15:00:00+08:00"
    assert "calendar: calendar not consulted (clock hours)" in lines


def test_provisional_deadline_is_flagged_with_a_warning(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("deadline", "--no-database", "--from", "2026-12-30T10:00+08:00", "--workdays", "3") == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines()[0] == "2027-01-06T00:00:00+08:00"
    assert "provisional: yes" in captured.out
    assert "2027: provisional:holidays-0.109" in captured.out
    assert captured.err.startswith("warning: this deadline uses provisional holiday data")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--from", "2026-09-30T15:00", "--workdays", "3"], "has no UTC offset"),
        (["--from", "30/09/2026", "--workdays", "3"], "is not an ISO 8601 date-time"),
        (["--from", "2026-09-30T15:00+08:00"], "one of the arguments --workdays --hours is required"),
        (["--from", "2026-09-30T15:00+08:00", "--workdays", "3", "--hours", "24"], "not allowed with argument"),
        (["--from", "2026-09-30T15:00+08:00", "--workdays", "-1"], "-1 must be between 1 and 1000"),
        (["--from", "2026-09-30T15:00+08:00", "--workdays", "0"], "0 must be between 1 and 1000"),
        (["--from", "2026-09-30T15:00+08:00", "--hours", "1.5"], "'1.5' is not a whole number"),
        (["--workdays", "3"], "the following arguments are required: --from"),
    ],
)
def test_deadline_misuse_exits_2_with_a_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("deadline", "--no-database", *argv) == 2
    assert message in capsys.readouterr().err


def test_deadline_survives_an_unreachable_database(
    unreachable_database: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("deadline", "--from", "2026-11-28T09:00+08:00", "--workdays", "3") == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines()[0] == "2026-12-03T00:00:00+08:00"
    assert captured.err.startswith("warning: official calendar data could not be read")
    assert "Traceback" not in captured.err


# --- status ---------------------------------------------------------------------------------------------


def test_status_before_1_december_is_quiet(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("status", "--no-database", "--today", "2026-11-30") == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [
        "2026: chinese-calendar:1.11.0 (final)",
        "2027: provisional:holidays-0.109 (PROVISIONAL: no State Council notice)",
    ]
    assert captured.err == ""


def test_status_from_1_december_warns_on_stderr_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("status", "--no-database", "--today", "2026-12-01") == 0
    captured = capsys.readouterr()
    assert captured.err.startswith("warning: holiday data for 2027 is provisional")
    assert captured.err.count("warning:") == 1


def test_status_rejects_a_bad_date(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("status", "--no-database", "--today", "1 Dec") == 2
    assert "'1 Dec' is not a date (YYYY-MM-DD)" in capsys.readouterr().err


# --- load -----------------------------------------------------------------------------------------------


def test_load_refuses_a_bad_file_before_touching_the_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "2027.yaml"
    bad.write_text(
        "year: 2027\nsource: {url: 'https://www.gov.cn/x'}\n"
        "rest_days: [2027-01-01, 2028-01-01]\nworking_days: [2027-02-09]\n",
        encoding="utf-8",
    )
    assert run("load", str(bad), "--loaded-by", "admin") == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {bad} refused:")
    assert "source.doc_no: missing" in err
    assert "2028-01-01 is outside 2027" in err
    assert "2027-02-09 is a Tuesday" in err


def test_load_refuses_a_bad_json_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "2027.json"
    bad.write_text('{"year": 2027, "rest_days": ["2027-01-01"]', encoding="utf-8")
    assert run("load", str(bad), "--loaded-by", "admin") == 1
    assert "not valid JSON" in capsys.readouterr().err


def test_load_of_a_missing_file_is_misuse(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("load", str(tmp_path / "missing.yaml"), "--loaded-by", "admin") == 2
    assert "error: cannot read" in capsys.readouterr().err


def test_load_needs_the_database(
    unreachable_database: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "2027.yaml"
    good.write_text(
        "year: 2027\nsource: {doc_no: '测试〔2026〕1号'}\nrest_days: [2027-01-01]\nworking_days: []\n",
        encoding="utf-8",
    )
    assert run("load", str(good), "--loaded-by", "admin") == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot load: database unavailable")
    assert "Traceback" not in err
