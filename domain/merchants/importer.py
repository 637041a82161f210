"""Reading merchant rows from CSV or XLSX files and checking each row on its own.

Checks that need the database (street offices, credit codes already registered) live in
``domain.merchants.service``. Row numbers are the spreadsheet's: the header is row 1.

Columns (English header, or any of the Chinese ones; case and surrounding spaces are ignored):

* ``credit_code`` (统一社会信用代码), required: 18 characters with a valid check character;
* ``food_licence_no`` (食品经营许可证号, 食品经营许可证编号, 许可证编号): JY + 14 digits; blank for 摊贩;
* ``name`` (名称, 商户名称, 经营者名称), required;
* ``address`` (地址, 经营地址, 经营场所), required;
* ``street_office`` (街道所代码, 所属监管所, 街道所, 监管所), required: the office's code or its full name;
* ``risk_level`` (风险等级): A–D, blank means B for a new merchant;
* ``credit_level`` (信用等级, 信用风险等级): A–D, blank means A for a new merchant;
* ``business_hours`` (营业时间): ``10:00-14:00,17:00-22:00``, blank means not stated.

Columns not listed are ignored (and named in the report), so exports of other systems can be imported as-is.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from domain.errors import ValidationFailed
from domain.merchants.rules import (
    credit_code_problem,
    food_licence_problem,
    normalise_credit_code,
    normalise_food_licence_no,
    parse_business_hours,
    parse_level,
)

COLUMN_HEADERS: dict[str, tuple[str, ...]] = {
    "credit_code": ("credit_code", "统一社会信用代码"),
    "food_licence_no": ("food_licence_no", "食品经营许可证号", "食品经营许可证编号", "许可证编号"),
    "name": ("name", "名称", "商户名称", "经营者名称"),
    "address": ("address", "地址", "经营地址", "经营场所"),
    "street_office": ("street_office", "街道所代码", "所属监管所", "街道所", "监管所"),
    "risk_level": ("risk_level", "风险等级"),
    "credit_level": ("credit_level", "信用等级", "信用风险等级"),
    "business_hours": ("business_hours", "营业时间"),
}
REQUIRED_COLUMNS = ("credit_code", "name", "address", "street_office")
SUPPORTED_EXTENSIONS = (".csv", ".xlsx")

_HEADER_TO_COLUMN = {header.casefold(): column for column, headers in COLUMN_HEADERS.items() for header in headers}
_MAX_LENGTHS = {"name": 200, "address": 300}


class ImportFileError(ValidationFailed):
    """The file as a whole cannot be read: wrong type, not UTF-8, header missing a required column…"""


@dataclass(frozen=True)
class SourceRow:
    row_number: int
    values: dict[str, str]  # column name → trimmed text; absent columns are absent keys


@dataclass(frozen=True)
class MerchantFile:
    rows: list[SourceRow]
    ignored_headers: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class MerchantRecord:
    """One row, checked and normalised; None for an optional value left blank."""

    row_number: int
    credit_code: str
    food_licence_no: str | None
    name: str
    address: str
    street_office: str
    risk_level: str | None
    credit_level: str | None
    business_hours: list[list[str]] | None


@dataclass(frozen=True)
class RowProblem:
    row_number: int
    reasons: list[str]

    def __str__(self) -> str:
        return f"row {self.row_number}: {'; '.join(self.reasons)}"


def read_merchant_file(path: Path) -> MerchantFile:
    """The data rows of a CSV (UTF-8, BOM optional) or XLSX (first sheet) file; blank rows are skipped."""
    if not path.is_file():
        raise ImportFileError(f"{path}: no such file")
    extension = path.suffix.lower()
    if extension not in SUPPORTED_EXTENSIONS:
        raise ImportFileError(
            f"{path.name}: unsupported file type {path.suffix or '(none)'!r}; use .csv (UTF-8) or .xlsx"
        )
    table = _read_csv(path) if extension == ".csv" else _read_xlsx(path)
    return _rows_from_table(path.name, table)


def check_row(row: SourceRow) -> MerchantRecord | RowProblem:
    """Every problem of one row that can be seen without the database, or the normalised record."""
    values = row.values
    reasons: list[str] = []

    credit_code = normalise_credit_code(values.get("credit_code", ""))
    problem = credit_code_problem(credit_code)
    if problem:
        reasons.append(problem)

    food_licence_no = normalise_food_licence_no(values.get("food_licence_no", "")) or None
    if food_licence_no is not None:
        problem = food_licence_problem(food_licence_no)
        if problem:
            reasons.append(problem)

    for column, label in (("name", "name (名称)"), ("address", "address (地址)")):
        if not values.get(column):
            reasons.append(f"the {label} is missing")
        elif len(values[column]) > _MAX_LENGTHS[column]:
            reasons.append(f"the {label} is longer than {_MAX_LENGTHS[column]} characters")
    if not values.get("street_office"):
        reasons.append("the street office (街道所) is missing")

    levels: dict[str, str | None] = {}
    for column, label in (("risk_level", "risk level (风险等级)"), ("credit_level", "credit level (信用等级)")):
        levels[column] = None
        if values.get(column):
            try:
                levels[column] = parse_level(values[column], what=label)
            except ValidationFailed as exc:
                reasons.append(exc.message)

    business_hours = None
    if values.get("business_hours"):
        try:
            business_hours = parse_business_hours(values["business_hours"])
        except ValidationFailed as exc:
            reasons.append(exc.message)

    if reasons:
        return RowProblem(row.row_number, reasons)
    return MerchantRecord(
        row_number=row.row_number,
        credit_code=credit_code,
        food_licence_no=food_licence_no,
        name=values["name"],
        address=values["address"],
        street_office=values["street_office"],
        risk_level=levels["risk_level"],
        credit_level=levels["credit_level"],
        business_hours=business_hours,
    )


def _read_csv(path: Path) -> list[list[str]]:
    try:
        # utf-8-sig drops the BOM that Excel's "CSV UTF-8" writes, and reads plain UTF-8 unchanged.
        with path.open(encoding="utf-8-sig", newline="") as handle:
            return list(csv.reader(handle))
    except UnicodeDecodeError:
        raise ImportFileError(
            f"{path.name}: not UTF-8 text (Excel: save as 'CSV UTF-8', or import the .xlsx directly)"
        ) from None
    except csv.Error as exc:
        raise ImportFileError(f"{path.name}: not a readable CSV file ({exc})") from None


def _read_xlsx(path: Path) -> list[list[str]]:
    from openpyxl import load_workbook  # imported here: only this reader needs it

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises zipfile, KeyError and its own errors for damaged files
        raise ImportFileError(f"{path.name}: not a readable XLSX workbook ({type(exc).__name__})") from None
    try:
        if not workbook.worksheets:
            raise ImportFileError(f"{path.name}: the workbook has no sheet")
        sheet = workbook.worksheets[0]
        return [[_cell_text(value) for value in row] for row in sheet.iter_rows(values_only=True)]
    finally:
        workbook.close()


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a numeric cell holding a code: 9.0 must not become "9.0"
    if isinstance(value, dt.time):
        return value.strftime("%H:%M")
    return str(value)


def _rows_from_table(file_name: str, table: Iterable[list[str]]) -> MerchantFile:
    lines = iter(table)
    header = _first_non_blank(lines)
    if header is None:
        raise ImportFileError(f"{file_name}: the file is empty (expected a header row, then one merchant per row)")
    header_row_number, header_cells = header

    positions: dict[str, int] = {}
    ignored: list[str] = []
    for index, cell in enumerate(header_cells):
        title = cell.strip().lstrip("\ufeff")
        if not title:
            continue
        column = _HEADER_TO_COLUMN.get(title.casefold())
        if column is None:
            ignored.append(title)
        elif column in positions:
            raise ImportFileError(f"{file_name}: two header cells name the column {column!r}")
        else:
            positions[column] = index
    missing = [column for column in REQUIRED_COLUMNS if column not in positions]
    if missing:
        expected = "; ".join(f"{column} ({' / '.join(COLUMN_HEADERS[column][1:])})" for column in missing)
        raise ImportFileError(f"{file_name}: the header row lacks required columns: {expected}")

    rows = []
    for row_number, cells in enumerate(lines, start=header_row_number + 1):
        if not any(cell.strip() for cell in cells):
            continue
        values = {column: cells[i].strip() if i < len(cells) else "" for column, i in positions.items()}
        rows.append(SourceRow(row_number, values))
    if not rows:
        raise ImportFileError(f"{file_name}: the file has a header but no merchant rows")
    return MerchantFile(rows=rows, ignored_headers=ignored)


def _first_non_blank(lines: Iterator[list[str]]) -> tuple[int, list[str]] | None:
    for row_number, cells in enumerate(lines, start=1):
        if any(cell.strip() for cell in cells):
            return row_number, cells
    return None
