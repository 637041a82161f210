"""Reading the case projection: the queue (filters, keyset pages) and one case in full.

The workflow is the single writer of these rows (activities project its state); nothing here changes them.
Who may see which rows is a ``CaseScope``, built by the caller from the authenticated user, and applied in
SQL so that a page never holds a row its reader may not see.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ColumnElement, and_, exists, false, or_, true
from sqlmodel import Session, col, select

from domain.cases.models import Alert, AlertCase, CaseEvent, EnforcementHandoff
from domain.errors import NotFound, ValidationFailed
from domain.evidence.models import Evidence
from domain.merchants.models import Merchant, StreetOffice
from domain.merchants.rules import normalise_credit_code

MAX_PAGE_SIZE = 200
MAX_TEXT_QUERY_LENGTH = 100


class ScopeKind(StrEnum):
    everything = "everything"  # command center, auditor
    merchant = "merchant"  # a merchant's own cases
    street_office = "street_office"  # a street office's cases
    transferred = "transferred"  # cases handed to the enforcement brigade
    nothing = "nothing"


@dataclass(frozen=True)
class CaseScope:
    """Which cases (and, derived from that, which merchants) a reader may see."""

    kind: ScopeKind
    merchant_id: int | None = None
    street_office_id: int | None = None

    def __post_init__(self) -> None:
        if (self.kind is ScopeKind.merchant) != (self.merchant_id is not None):
            raise ValueError("a merchant scope needs exactly a merchant id")
        if (self.kind is ScopeKind.street_office) != (self.street_office_id is not None):
            raise ValueError("a street-office scope needs exactly a street office id")

    def case_condition(self) -> ColumnElement[bool]:
        """SQL condition on AlertCase rows."""
        match self.kind:
            case ScopeKind.everything:
                return true()
            case ScopeKind.merchant:
                return col(AlertCase.merchant_id) == self.merchant_id
            case ScopeKind.street_office:
                return col(AlertCase.street_office_id) == self.street_office_id
            case ScopeKind.transferred:
                # The hand-off row is the brigade's own record; the case row's handoff_id may lag it.
                return or_(
                    col(AlertCase.handoff_id).is_not(None),
                    exists().where(col(EnforcementHandoff.case_id) == col(AlertCase.case_id)),
                )
        return false()

    def merchant_condition(self) -> ColumnElement[bool]:
        """SQL condition on Merchant rows: the merchants whose cases (or shops) the reader deals with."""
        match self.kind:
            case ScopeKind.everything:
                return true()
            case ScopeKind.merchant:
                return col(Merchant.id) == self.merchant_id
            case ScopeKind.street_office:
                return col(Merchant.street_office_id) == self.street_office_id
            case ScopeKind.transferred:
                return exists().where(col(EnforcementHandoff.merchant_id) == col(Merchant.id))
        return false()


@dataclass(frozen=True)
class CaseFilters:
    statuses: tuple[str, ...] = ()
    alert_types: tuple[str, ...] = ()
    street_office_code: str | None = None
    merchant_credit_code: str | None = None
    overdue: bool | None = None
    due_before: datetime | None = None
    text: str | None = None

    def __post_init__(self) -> None:
        if self.due_before is not None and self.due_before.utcoffset() is None:
            raise ValidationFailed("due_before must carry a time zone")
        if self.text is not None and len(self.text) > MAX_TEXT_QUERY_LENGTH:
            raise ValidationFailed(f"the search text is longer than {MAX_TEXT_QUERY_LENGTH} characters")


@dataclass(frozen=True)
class CaseCursor:
    """Position after the last row of a page, in the queue order (next_due_at NULLS LAST, case_id)."""

    next_due_at: datetime | None
    case_id: str

    def encode(self) -> str:
        raw = json.dumps(
            {"d": None if self.next_due_at is None else self.next_due_at.isoformat(), "c": self.case_id},
            separators=(",", ":"),
        ).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")

    @classmethod
    def decode(cls, text: str) -> CaseCursor:
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            data = json.loads(raw)
            due = None if data["d"] is None else datetime.fromisoformat(str(data["d"]))
            case_id = data["c"]
        except (binascii.Error, ValueError, KeyError, TypeError):
            raise ValidationFailed("the cursor is not one this API gave out") from None
        if not isinstance(case_id, str) or (due is not None and due.utcoffset() is None):
            raise ValidationFailed("the cursor is not one this API gave out")
        return cls(next_due_at=due, case_id=case_id)


@dataclass(frozen=True)
class CaseListItem:
    case: AlertCase
    merchant_name: str
    merchant_credit_code: str
    street_office_code: str


@dataclass(frozen=True)
class CasePage:
    items: list[CaseListItem]
    next_cursor: str | None


@dataclass(frozen=True)
class AlertWithEvidence:
    alert: Alert
    snapshot: Evidence
    clip: Evidence | None


@dataclass(frozen=True)
class CaseDetail:
    case: AlertCase
    merchant: Merchant
    street_office: StreetOffice
    timeline: list[CaseEvent] = field(default_factory=list)
    alerts: list[AlertWithEvidence] = field(default_factory=list)
    handoff: EnforcementHandoff | None = None


def list_cases(
    session: Session, *, scope: CaseScope, filters: CaseFilters, limit: int = 50, after: CaseCursor | None = None
) -> CasePage:
    """One page of the queue, soonest deadline first (cases without one last), within ``scope``.

    Keyset pagination: a page starts strictly after ``after``, so rows that change elsewhere in the queue
    never make a page repeat or skip the rows around the cursor.
    """
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValidationFailed(f"limit must be between 1 and {MAX_PAGE_SIZE}")
    statement = (
        select(AlertCase, Merchant.name, Merchant.credit_code, StreetOffice.code)
        .join(Merchant, col(Merchant.id) == col(AlertCase.merchant_id))
        .join(StreetOffice, col(StreetOffice.id) == col(AlertCase.street_office_id))
        .where(scope.case_condition(), *_filter_conditions(filters))
    )
    if after is not None:
        statement = statement.where(_after_cursor(after))
    statement = statement.order_by(col(AlertCase.next_due_at).asc().nulls_last(), col(AlertCase.case_id).asc()).limit(
        limit + 1
    )
    rows = session.exec(statement).all()
    items = [
        CaseListItem(case=case, merchant_name=name, merchant_credit_code=credit_code, street_office_code=code)
        for case, name, credit_code, code in rows[:limit]
    ]
    next_cursor = None
    if len(rows) > limit:
        last = items[-1].case
        next_cursor = CaseCursor(next_due_at=last.next_due_at, case_id=last.case_id).encode()
    return CasePage(items=items, next_cursor=next_cursor)


def find_case(session: Session, *, case_id: str, scope: CaseScope) -> AlertCase | None:
    """The case row if it exists and lies within ``scope`` (None either way otherwise, so ids do not leak)."""
    statement = select(AlertCase).where(col(AlertCase.case_id) == case_id, scope.case_condition())
    return session.exec(statement).first()


def get_case_detail(session: Session, *, case_id: str) -> CaseDetail:
    """The case row with its timeline, its alerts and their evidence records, and its hand-off."""
    case = session.get(AlertCase, case_id)
    if case is None:
        raise NotFound(f"no case {case_id!r}")
    merchant = session.get(Merchant, case.merchant_id)
    street_office = session.get(StreetOffice, case.street_office_id)
    assert merchant is not None and street_office is not None  # foreign keys
    timeline = list(
        session.exec(select(CaseEvent).where(col(CaseEvent.case_id) == case_id).order_by(col(CaseEvent.seq))).all()
    )
    alerts = list(
        session.exec(
            select(Alert).where(col(Alert.case_id) == case_id).order_by(col(Alert.captured_at), col(Alert.id))
        ).all()
    )
    evidence = _evidence_by_id(
        session,
        [a.snapshot_evidence_id for a in alerts]
        + [a.clip_evidence_id for a in alerts if a.clip_evidence_id is not None],
    )
    handoff = None
    if case.handoff_id is not None:
        handoff = session.get(EnforcementHandoff, case.handoff_id)
    if handoff is None:
        handoff = session.exec(
            select(EnforcementHandoff)
            .where(col(EnforcementHandoff.case_id) == case_id)
            .order_by(col(EnforcementHandoff.transferred_at).desc())
        ).first()
    return CaseDetail(
        case=case,
        merchant=merchant,
        street_office=street_office,
        timeline=timeline,
        alerts=[
            AlertWithEvidence(
                alert=alert,
                snapshot=evidence[alert.snapshot_evidence_id],
                clip=None if alert.clip_evidence_id is None else evidence[alert.clip_evidence_id],
            )
            for alert in alerts
        ],
        handoff=handoff,
    )


def _evidence_by_id(session: Session, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Evidence]:
    if not ids:
        return {}
    return {e.id: e for e in session.exec(select(Evidence).where(col(Evidence.id).in_(set(ids)))).all()}


def _filter_conditions(filters: CaseFilters) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if filters.statuses:
        conditions.append(col(AlertCase.status).in_(filters.statuses))
    if filters.alert_types:
        conditions.append(col(AlertCase.alert_type).in_(filters.alert_types))
    if filters.street_office_code is not None:
        conditions.append(col(StreetOffice.code) == filters.street_office_code.strip())
    if filters.merchant_credit_code is not None:
        conditions.append(col(Merchant.credit_code) == normalise_credit_code(filters.merchant_credit_code))
    if filters.overdue is not None:
        conditions.append(col(AlertCase.overdue) == filters.overdue)  # "=" can use the index, "IS" cannot
    if filters.due_before is not None:
        conditions.append(col(AlertCase.next_due_at) < filters.due_before)
    text = (filters.text or "").strip()
    if text:
        pattern = f"%{_escape_like(text)}%"
        conditions.append(
            or_(col(AlertCase.summary).ilike(pattern, escape="\\"), col(Merchant.name).ilike(pattern, escape="\\"))
        )
    return conditions


def _after_cursor(cursor: CaseCursor) -> ColumnElement[bool]:
    """Rows after ``cursor`` in the order (next_due_at ASC NULLS LAST, case_id ASC)."""
    due = col(AlertCase.next_due_at)
    case_id = col(AlertCase.case_id)
    if cursor.next_due_at is None:
        return and_(due.is_(None), case_id > cursor.case_id)
    return or_(
        due > cursor.next_due_at,
        and_(due == cursor.next_due_at, case_id > cursor.case_id),
        due.is_(None),
    )


def _escape_like(text: str) -> str:
    """A user's text matched literally: '%' and '_' are not wildcards here."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def evidence_ids_of(detail: CaseDetail) -> set[uuid.UUID]:
    """Every evidence item the case refers to: its alerts' snapshots and clips, and the photos in its timeline."""
    ids = {item.snapshot.id for item in detail.alerts}
    ids |= {item.clip.id for item in detail.alerts if item.clip is not None}
    for event in detail.timeline:
        photo = event.payload.get("photo") if isinstance(event.payload, dict) else None
        if isinstance(photo, dict) and photo.get("evidence_id"):
            try:
                ids.add(uuid.UUID(str(photo["evidence_id"])))
            except ValueError:
                continue
    return ids


def case_refers_to(session: Session, *, case_id: str, evidence_id: uuid.UUID) -> bool:
    """Whether the case refers to this evidence (as ``evidence_ids_of`` would say), in two indexed lookups rather
    than loading the whole case: the viewer asks once per picture on a page."""
    in_alerts = session.exec(
        select(Alert.id).where(
            col(Alert.case_id) == case_id,
            or_(col(Alert.snapshot_evidence_id) == evidence_id, col(Alert.clip_evidence_id) == evidence_id),
        )
    ).first()
    if in_alerts is not None:
        return True
    photo_id = col(CaseEvent.payload)["photo"]["evidence_id"].as_string()
    in_timeline = session.exec(
        select(CaseEvent.seq).where(col(CaseEvent.case_id) == case_id, photo_id == str(evidence_id))
    ).first()
    return in_timeline is not None


def timeline_photos(session: Session, *, detail: CaseDetail) -> list[Evidence]:
    """The photos merchants and officers attached to the case (rectification), oldest first."""
    alert_ids = {item.snapshot.id for item in detail.alerts} | {
        item.clip.id for item in detail.alerts if item.clip is not None
    }
    photo_ids = [i for i in evidence_ids_of(detail) if i not in alert_ids]
    found = _evidence_by_id(session, photo_ids)
    return sorted(found.values(), key=lambda evidence: evidence.stored_at)
