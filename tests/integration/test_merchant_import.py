"""`sunshine merchant import` (CSV and XLSX) against a real PostgreSQL."""

import csv
import io
import random
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlmodel import Session, select

from domain.merchants.importer import ImportFileError
from domain.merchants.models import Merchant, StreetOffice
from domain.merchants.rules import generate_credit_code, generate_food_licence_no
from domain.merchants.service import import_merchants_file
from infra.cli import main
from infra.settings import get_settings

pytestmark = pytest.mark.integration

ENGLISH_HEADER = [
    "credit_code", "food_licence_no", "name", "address", "street_office", "risk_level", "credit_level",
    "business_hours",
]  # fmt: skip
CHINESE_HEADER = [
    "统一社会信用代码",
    "食品经营许可证号",
    "名称",
    "地址",
    "街道所代码",
    "风险等级",
    "信用等级",
    "营业时间",
]

_rng = random.Random(42)
CODES = [generate_credit_code(_rng) for _ in range(6)]
LICENCES = [generate_food_licence_no(_rng) for _ in range(6)]

Cli = Callable[..., int]


def good_row(index: int, **changes: str) -> list[str]:
    row = {
        "credit_code": CODES[index],
        "food_licence_no": LICENCES[index],
        "name": f"测试饭店{index}",
        "address": f"天津市河西区友谊路{index + 1}号",
        "street_office": "youyilu",
        "risk_level": "C",
        "credit_level": "B",
        "business_hours": "10:00-14:00,17:00-22:00",
    }
    row.update(changes)
    return [row[column] for column in ENGLISH_HEADER]


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[str]], *, bom: bool = False) -> Path:
    buffer = io.StringIO()
    csv.writer(buffer).writerows([header, *rows])
    path.write_text(buffer.getvalue(), encoding="utf-8-sig" if bom else "utf-8")
    return path


def write_xlsx(path: Path, header: Sequence[str], rows: Sequence[Sequence[object]]) -> Path:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "商户"
    for row in [header, *rows]:
        sheet.append(list(row))
    workbook.create_sheet("其他").append(["ignored", "sheet"])
    workbook.save(path)
    return path


@pytest.fixture
def offices(db_session: Session) -> None:
    db_session.add_all(
        [StreetOffice(code="youyilu", name="友谊路街市场监管所"), StreetOffice(code="machang", name="马场街市场监管所")]
    )
    db_session.commit()


@pytest.fixture
def cli(database_url: str, db_session: Session, offices: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cli]:
    monkeypatch.setenv("SUNSHINE_DATABASE_URL", database_url)
    get_settings.cache_clear()
    yield lambda *argv: main(list(argv))
    get_settings.cache_clear()


def merchants(session: Session) -> dict[str, Merchant]:
    session.expire_all()
    return {merchant.credit_code: merchant for merchant in session.exec(select(Merchant))}


def test_csv_with_english_header(
    cli: Cli, db_session: Session, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_csv(tmp_path / "merchants.csv", ENGLISH_HEADER, [good_row(0), good_row(1, street_office="machang")])
    assert cli("merchant", "import", str(path)) == 0
    assert "2 created, 0 updated, 0 skipped, of 2 rows" in capsys.readouterr().out

    stored = merchants(db_session)
    assert set(stored) == {CODES[0], CODES[1]}
    first = stored[CODES[0]]
    assert first.name == "测试饭店0"
    assert first.food_licence_no == LICENCES[0]
    assert (first.risk_level, first.credit_level) == ("C", "B")
    assert first.business_hours == [["10:00", "14:00"], ["17:00", "22:00"]]
    offices = {office.id: office.code for office in db_session.exec(select(StreetOffice))}
    assert offices[stored[CODES[1]].street_office_id] == "machang"


def test_csv_with_bom_chinese_header_and_optional_columns_left_out(
    cli: Cli, db_session: Session, tmp_path: Path
) -> None:
    header = ["统一社会信用代码", "名称", "地址", "所属监管所", "法定代表人"]
    rows = [[CODES[0].lower(), "津味小馆", "天津市河西区宾水道8号", "友谊路街市场监管所", "张三"]]
    path = write_csv(tmp_path / "商户.CSV", header, rows, bom=True)
    assert cli("merchant", "import", str(path)) == 0

    merchant = merchants(db_session)[CODES[0]]
    assert merchant.name == "津味小馆"
    assert merchant.food_licence_no is None
    assert (merchant.risk_level, merchant.credit_level) == ("B", "A")  # the documented defaults
    assert merchant.business_hours == []


def test_ignored_columns_are_named(cli: Cli, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_csv(tmp_path / "m.csv", [*ENGLISH_HEADER, "legal_rep"], [[*good_row(0), "张三"]])
    assert cli("merchant", "import", str(path)) == 0
    assert "ignored columns: legal_rep" in capsys.readouterr().out


def test_xlsx_first_sheet_with_chinese_header_and_numeric_cells(cli: Cli, db_session: Session, tmp_path: Path) -> None:
    db_session.add(StreetOffice(code="120103005", name="马场街道"))
    db_session.commit()
    rows: list[Sequence[object]] = [
        good_row(0),
        # A code typed into a spreadsheet becomes a number; the reader must give the digits back, not "120103005.0".
        [CODES[1], None, "麦香园面包房", "天津市河西区马场道3号", 120103005, "a", "d级", "07:00-20:00"],
    ]
    path = write_xlsx(tmp_path / "merchants.xlsx", CHINESE_HEADER, rows)
    assert cli("merchant", "import", str(path)) == 0

    stored = merchants(db_session)
    assert set(stored) == {CODES[0], CODES[1]}
    bakery = stored[CODES[1]]
    assert (bakery.risk_level, bakery.credit_level) == ("A", "D")
    assert bakery.business_hours == [["07:00", "20:00"]]
    assert bakery.food_licence_no is None


def test_every_bad_row_is_reported_and_nothing_is_imported(
    cli: Cli, db_session: Session, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad_check_digit = CODES[1][:17] + ("0" if CODES[1][17] != "0" else "1")
    rows = [
        good_row(0),  # row 2
        good_row(1, credit_code=bad_check_digit),  # row 3
        good_row(2, name=""),  # row 4
        good_row(3, street_office="nowhere"),  # row 5
        good_row(4, risk_level="E"),  # row 6
        good_row(5, business_hours="10点到14点"),  # row 7
        good_row(0, food_licence_no=""),  # row 8: the credit code of row 2 again
        good_row(1, food_licence_no=LICENCES[0]),  # row 9: the licence of row 2 again
        good_row(2, food_licence_no="JY123"),  # row 10
        good_row(3, credit_code="", address="", credit_level="X"),  # row 11: three problems at once
    ]
    path = write_csv(tmp_path / "merchants.csv", ENGLISH_HEADER, rows)
    assert cli("merchant", "import", str(path)) == 1

    err = capsys.readouterr().err
    lines = {line.split(":", 1)[0]: line for line in err.strip().splitlines()}
    assert "row 2" not in lines
    assert "fails its check digit" in lines["row 3"]
    assert "name (名称) is missing" in lines["row 4"]
    assert "no street office with code or name 'nowhere'" in lines["row 5"]
    assert "risk level (风险等级) 'E' is not one of A, B, C, D" in lines["row 6"]
    assert "not written like 10:00-14:00" in lines["row 7"]
    assert "also appears in row 2" in lines["row 8"] and "credit code" in lines["row 8"]
    assert "food licence number" in lines["row 9"] and "also appears in row 2" in lines["row 9"]
    assert "is not 'JY' followed by 14 digits" in lines["row 10"]
    assert all(part in lines["row 11"] for part in ("credit code", "address (地址) is missing", "credit level"))
    assert lines["error"].startswith("error: 9 of 10 rows are invalid; nothing was imported")
    assert merchants(db_session) == {}


def test_skip_invalid_imports_the_good_rows_and_reports_the_bad(
    cli: Cli, db_session: Session, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [good_row(0), good_row(1, name=""), good_row(2), good_row(2, food_licence_no="")]
    path = write_csv(tmp_path / "merchants.csv", ENGLISH_HEADER, rows)
    assert cli("merchant", "import", str(path), "--skip-invalid") == 0

    out, err = capsys.readouterr()
    assert "2 created, 0 updated, 2 skipped, of 4 rows" in out
    assert "skipped row 3: the name (名称) is missing" in err
    assert "skipped row 5: the credit code" in err and "also appears in row 4" in err
    assert set(merchants(db_session)) == {CODES[0], CODES[2]}


def test_reimport_reports_registered_merchants_unless_update(
    cli: Cli, db_session: Session, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_csv(tmp_path / "merchants.csv", ENGLISH_HEADER, [good_row(0), good_row(1)])
    assert cli("merchant", "import", str(path)) == 0
    capsys.readouterr()

    assert cli("merchant", "import", str(path)) == 1
    err = capsys.readouterr().err
    assert f"row 2: a merchant with credit code {CODES[0]} is already registered (use --update" in err
    assert "row 3:" in err

    changed = [
        good_row(0, name="新名字饭店", risk_level="D", street_office="machang"),
        # Blank optional cells keep what is stored.
        good_row(1, food_licence_no="", risk_level="", credit_level="", business_hours=""),
        good_row(2),
    ]
    write_csv(path, ENGLISH_HEADER, changed)
    assert cli("merchant", "import", str(path), "--update") == 0
    assert "1 created, 2 updated, 0 skipped" in capsys.readouterr().out

    stored = merchants(db_session)
    assert len(stored) == 3
    assert stored[CODES[0]].name == "新名字饭店" and stored[CODES[0]].risk_level == "D"
    kept = stored[CODES[1]]
    assert kept.food_licence_no == LICENCES[1]
    assert (kept.risk_level, kept.credit_level) == ("C", "B")
    assert kept.business_hours == [["10:00", "14:00"], ["17:00", "22:00"]]


def test_licence_number_held_by_another_registered_merchant(
    cli: Cli, db_session: Session, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_csv(tmp_path / "first.csv", ENGLISH_HEADER, [good_row(0)])
    assert cli("merchant", "import", str(tmp_path / "first.csv")) == 0
    write_csv(tmp_path / "second.csv", ENGLISH_HEADER, [good_row(1, food_licence_no=LICENCES[0])])
    assert cli("merchant", "import", str(tmp_path / "second.csv"), "--update") == 1
    assert f"row 2: the food licence number {LICENCES[0]} belongs to merchant {CODES[0]}" in capsys.readouterr().err


def test_blank_rows_are_skipped_and_numbering_follows_the_sheet(
    cli: Cli, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_csv(tmp_path / "m.csv", ENGLISH_HEADER, [good_row(0), [""] * 8, good_row(1, risk_level="Z")])
    assert cli("merchant", "import", str(path)) == 1
    assert "row 4: the risk level" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"", "the file is empty"),
        (b",,,\n", "the file is empty"),
        (b"credit_code,name,address,street_office\n", "no merchant rows"),
        (b"credit_code,name\n", "lacks required columns: address (地址"),
        ("name,名称,address,street_office,credit_code\n".encode(), "two header cells name the column 'name'"),
        ("统一社会信用代码,名称,地址,街道所代码\n".encode("gbk"), "not UTF-8"),
    ],
)
def test_unreadable_files(
    cli: Cli, tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, fragment: str
) -> None:
    path = tmp_path / "m.csv"
    path.write_bytes(content)
    assert cli("merchant", "import", str(path)) == 1
    err = capsys.readouterr().err
    assert fragment in err
    assert "Traceback" not in err


def test_damaged_xlsx(cli: Cli, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "m.xlsx"
    path.write_bytes(b"PK\x03\x04 not really a workbook")
    assert cli("merchant", "import", str(path)) == 1
    assert "not a readable XLSX workbook" in capsys.readouterr().err


@pytest.mark.usefixtures("offices")
def test_service_writes_in_the_callers_transaction(db_session: Session, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "m.csv", ENGLISH_HEADER, [good_row(0), good_row(1)])
    report = import_merchants_file(db_session, path=path)
    assert (report.created, report.updated, report.problems) == (2, 0, [])
    db_session.rollback()
    assert merchants(db_session) == {}

    with pytest.raises(ImportFileError, match="unsupported file type"):
        import_merchants_file(db_session, path=write_csv(tmp_path / "m.txt", ENGLISH_HEADER, []))
