"""Merchant records: look-ups and the bulk import (办法 第九条: data not synced by API is imported monthly).

Import rules:

* every row is checked (format, then against the file and the database) and every bad row is reported;
* when any row is bad nothing is written, unless ``skip_invalid``: then the good rows are written;
* a credit code already registered is a bad row ("already registered"), unless ``update``: then that
  merchant's name, address and street office are replaced, and each optional value (licence number, levels,
  hours) is replaced when the cell is filled and kept when it is blank;
* all writes happen in the caller's transaction, so an import is all-or-nothing at the database too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from sqlmodel import Session, col, select

from domain.merchants.importer import MerchantFile, MerchantRecord, RowProblem, check_row, read_merchant_file
from domain.merchants.models import Merchant, RiskLevel, StreetOffice
from domain.merchants.rules import normalise_credit_code


@dataclass
class ImportReport:
    rows_read: int
    created: int = 0
    updated: int = 0
    problems: list[RowProblem] = field(default_factory=list)
    ignored_headers: list[str] = field(default_factory=list)

    @property
    def written(self) -> bool:
        return self.created + self.updated > 0


def find_merchant(session: Session, *, credit_code: str) -> Merchant | None:
    code = normalise_credit_code(credit_code)
    return session.exec(select(Merchant).where(Merchant.credit_code == code)).first()


def find_street_office(session: Session, *, code_or_name: str) -> StreetOffice | None:
    """By code, else by exact name: exports of other systems often carry the office's name, not our code."""
    value = code_or_name.strip()
    office = session.exec(select(StreetOffice).where(StreetOffice.code == value)).first()
    if office is None:
        office = session.exec(select(StreetOffice).where(StreetOffice.name == value)).first()
    return office


def import_merchants_file(
    session: Session, *, path: Path, skip_invalid: bool = False, update: bool = False
) -> ImportReport:
    """Read, check and (when allowed) write the merchants of a CSV or XLSX file. See the module docstring."""
    return import_merchants(session, merchant_file=read_merchant_file(path), skip_invalid=skip_invalid, update=update)


def import_merchants(
    session: Session, *, merchant_file: MerchantFile, skip_invalid: bool = False, update: bool = False
) -> ImportReport:
    """Check and (when allowed) write rows already read from a file. See the module docstring."""
    report = ImportReport(rows_read=len(merchant_file.rows), ignored_headers=merchant_file.ignored_headers)
    checked = [check_row(row) for row in merchant_file.rows]
    records = [item for item in checked if isinstance(item, MerchantRecord)]
    problems = {item.row_number: item.reasons for item in checked if isinstance(item, RowProblem)}

    _check_against_file(records, problems)
    registered = {
        merchant.credit_code: merchant
        for merchant in session.exec(
            select(Merchant).where(col(Merchant.credit_code).in_([record.credit_code for record in records]))
        )
    }
    offices = _check_against_database(session, records, problems, registered=set(registered), update=update)

    report.problems = [RowProblem(number, reasons) for number, reasons in sorted(problems.items())]
    if report.problems and not skip_invalid:
        return report
    for record in records:
        if record.row_number in problems:
            continue
        existing = registered.get(record.credit_code)
        if existing is None:
            session.add(_new_merchant(record, offices[record.row_number]))
            report.created += 1
        else:
            _apply_update(existing, record, offices[record.row_number])
            session.add(existing)
            report.updated += 1
    session.flush()
    return report


def _check_against_file(records: Iterable[MerchantRecord], problems: dict[int, list[str]]) -> None:
    first_row_of_code: dict[str, int] = {}
    first_row_of_licence: dict[str, int] = {}
    for record in records:
        if record.credit_code in first_row_of_code:
            problems.setdefault(record.row_number, []).append(
                f"the credit code {record.credit_code} also appears in row {first_row_of_code[record.credit_code]}"
            )
        else:
            first_row_of_code[record.credit_code] = record.row_number
        if record.food_licence_no is None:
            continue
        if record.food_licence_no in first_row_of_licence:
            problems.setdefault(record.row_number, []).append(
                f"the food licence number {record.food_licence_no} also appears in row "
                f"{first_row_of_licence[record.food_licence_no]}"
            )
        else:
            first_row_of_licence[record.food_licence_no] = record.row_number


def _check_against_database(
    session: Session,
    records: list[MerchantRecord],
    problems: dict[int, list[str]],
    *,
    registered: set[str],
    update: bool,
) -> dict[int, StreetOffice]:
    """Flags rows that clash with stored data; returns the street office of each row that names a known one."""
    licences = [record.food_licence_no for record in records if record.food_licence_no]
    licence_holders = dict(
        session.exec(
            select(Merchant.food_licence_no, Merchant.credit_code).where(col(Merchant.food_licence_no).in_(licences))
        ).all()
    )

    offices: dict[int, StreetOffice] = {}
    office_cache: dict[str, StreetOffice | None] = {}
    for record in records:
        reasons: list[str] = []
        if record.credit_code in registered and not update:
            reasons.append(
                f"a merchant with credit code {record.credit_code} is already registered (use --update to update it)"
            )
        holder = licence_holders.get(record.food_licence_no) if record.food_licence_no else None
        if holder is not None and holder != record.credit_code:
            reasons.append(f"the food licence number {record.food_licence_no} belongs to merchant {holder}")
        if record.street_office not in office_cache:
            office_cache[record.street_office] = find_street_office(session, code_or_name=record.street_office)
        office = office_cache[record.street_office]
        if office is None:
            reasons.append(f"no street office with code or name {record.street_office!r}")
        else:
            offices[record.row_number] = office
        if reasons:
            problems.setdefault(record.row_number, []).extend(reasons)
    return offices


def _new_merchant(record: MerchantRecord, office: StreetOffice) -> Merchant:
    assert office.id is not None
    return Merchant(
        credit_code=record.credit_code,
        food_licence_no=record.food_licence_no,
        name=record.name,
        address=record.address,
        street_office_id=office.id,
        risk_level=record.risk_level or RiskLevel.B.value,
        credit_level=record.credit_level or RiskLevel.A.value,
        business_hours=record.business_hours or [],
    )


def _apply_update(merchant: Merchant, record: MerchantRecord, office: StreetOffice) -> None:
    assert office.id is not None
    merchant.name = record.name
    merchant.address = record.address
    merchant.street_office_id = office.id
    if record.food_licence_no is not None:
        merchant.food_licence_no = record.food_licence_no
    if record.risk_level is not None:
        merchant.risk_level = record.risk_level
    if record.credit_level is not None:
        merchant.credit_level = record.credit_level
    if record.business_hours is not None:
        merchant.business_hours = record.business_hours
