"""Reading the hand-off projection (移交, 办法 第七条): the brigade inbox and one hand-off.

The EnforcementHandoffWorkflow is the single writer of these rows; nothing here changes them. Who sees which
hand-offs follows the reader's ``CaseScope``: the brigade (``transferred``) and the district (``everything``)
see all, a street office sees the hand-offs of its own street (it transferred them and gets the feedback),
a merchant sees none here (their case timeline tells them about the transfer).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, case, false, or_, true
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import Select

from domain.cases.models import AlertCase, EnforcementHandoff
from domain.cases.service import MAX_PAGE_SIZE, CaseScope, ScopeKind
from domain.errors import ValidationFailed
from domain.merchants.models import Merchant, StreetOffice

# HandoffStatus.awaiting_acceptance of the workflow; domain code may not import workflows (temporalio).
AWAITING_ACCEPTANCE = "awaiting_acceptance"

# Inbox order: hand-offs still to accept come first, soonest acceptance deadline first; the rest newest first.
# One ORDER BY serves both groups: the deadline key is NULL outside the first group, so the rest fall through
# to transferred_at DESC, and handoff_id makes the order total (keyset pages need that).


def _group_key() -> ColumnElement[int]:
    return case((col(EnforcementHandoff.status) == AWAITING_ACCEPTANCE, 0), else_=1)


def _due_key() -> ColumnElement[datetime | None]:
    return case(
        (col(EnforcementHandoff.status) == AWAITING_ACCEPTANCE, col(EnforcementHandoff.acceptance_due_at)),
        else_=None,
    )


def handoff_condition(scope: CaseScope) -> ColumnElement[bool]:
    """SQL condition on EnforcementHandoff rows: the hand-offs the reader of ``scope`` may see."""
    match scope.kind:
        case ScopeKind.everything | ScopeKind.transferred:
            return true()
        case ScopeKind.street_office:
            return col(EnforcementHandoff.street_office_id) == scope.street_office_id
    return false()


@dataclass(frozen=True)
class HandoffCursor:
    """Position after the last row of a page, in the inbox order (group, due, transferred_at DESC, id)."""

    group: int
    acceptance_due_at: datetime | None
    transferred_at: datetime
    handoff_id: str

    @classmethod
    def after(cls, handoff: EnforcementHandoff) -> HandoffCursor:
        awaiting = handoff.status == AWAITING_ACCEPTANCE
        return cls(
            group=0 if awaiting else 1,
            acceptance_due_at=handoff.acceptance_due_at if awaiting else None,
            transferred_at=handoff.transferred_at,
            handoff_id=handoff.handoff_id,
        )

    def encode(self) -> str:
        raw = json.dumps(
            {
                "g": self.group,
                "d": None if self.acceptance_due_at is None else self.acceptance_due_at.isoformat(),
                "t": self.transferred_at.isoformat(),
                "h": self.handoff_id,
            },
            separators=(",", ":"),
        ).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")

    @classmethod
    def decode(cls, text: str) -> HandoffCursor:
        try:
            data = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
            group, handoff_id = data["g"], data["h"]
            due = None if data["d"] is None else datetime.fromisoformat(str(data["d"]))
            transferred_at = datetime.fromisoformat(str(data["t"]))
        except (binascii.Error, ValueError, KeyError, TypeError):
            raise ValidationFailed("the cursor is not one this API gave out") from None
        aware = transferred_at.utcoffset() is not None and (due is None or due.utcoffset() is not None)
        if group not in (0, 1) or not isinstance(handoff_id, str) or not aware:
            raise ValidationFailed("the cursor is not one this API gave out")
        return cls(group=group, acceptance_due_at=due, transferred_at=transferred_at, handoff_id=handoff_id)


@dataclass(frozen=True)
class HandoffListItem:
    handoff: EnforcementHandoff
    merchant_name: str
    merchant_credit_code: str
    street_office_code: str
    street_office_name: str
    # From the originating case; None should its projection row be missing (the hand-off outlives the case).
    alert_type: str | None
    case_summary: str | None


@dataclass(frozen=True)
class HandoffPage:
    items: list[HandoffListItem]
    next_cursor: str | None


def list_handoffs(
    session: Session,
    *,
    scope: CaseScope,
    statuses: tuple[str, ...] = (),
    overdue: bool | None = None,
    limit: int,
    after: HandoffCursor | None,
) -> HandoffPage:
    """One page of the hand-offs within ``scope``: awaiting acceptance first (soonest deadline first), then
    the rest newest first. Keyset pages: a page starts strictly after ``after``."""
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValidationFailed(f"limit must be between 1 and {MAX_PAGE_SIZE}")
    statement = _items_statement().where(handoff_condition(scope))
    if statuses:
        statement = statement.where(col(EnforcementHandoff.status).in_(statuses))
    if overdue is not None:
        statement = statement.where(col(EnforcementHandoff.overdue).is_(overdue))
    if after is not None:
        statement = statement.where(_after_cursor(after))
    statement = statement.order_by(
        _group_key().asc(),
        _due_key().asc().nulls_last(),
        col(EnforcementHandoff.transferred_at).desc(),
        col(EnforcementHandoff.handoff_id).asc(),
    ).limit(limit + 1)
    rows = session.exec(statement).all()
    items = [_item(*row) for row in rows[:limit]]
    next_cursor = HandoffCursor.after(items[-1].handoff).encode() if len(rows) > limit else None
    return HandoffPage(items=items, next_cursor=next_cursor)


def find_handoff(session: Session, *, handoff_id: str, scope: CaseScope) -> EnforcementHandoff | None:
    """The hand-off row if it exists and lies within ``scope`` (None either way otherwise, so ids do not leak)."""
    statement = select(EnforcementHandoff).where(
        col(EnforcementHandoff.handoff_id) == handoff_id, handoff_condition(scope)
    )
    return session.exec(statement).first()


def get_handoff_item(session: Session, *, handoff_id: str) -> HandoffListItem | None:
    """The hand-off with its merchant, street office and case summary, as one inbox line (scope unchecked:
    call ``find_handoff`` first)."""
    row = session.exec(_items_statement().where(col(EnforcementHandoff.handoff_id) == handoff_id)).first()
    return None if row is None else _item(*row)


def _items_statement() -> Select[EnforcementHandoff, Merchant, StreetOffice, AlertCase]:
    # The case is outer-joined: the hand-off outlives the case, and its row may be missing.
    return (
        select(EnforcementHandoff, Merchant, StreetOffice, AlertCase)
        .join(Merchant, col(Merchant.id) == col(EnforcementHandoff.merchant_id))
        .join(StreetOffice, col(StreetOffice.id) == col(EnforcementHandoff.street_office_id))
        .outerjoin(AlertCase, col(AlertCase.case_id) == col(EnforcementHandoff.case_id))
    )


def _item(
    handoff: EnforcementHandoff, merchant: Merchant, street_office: StreetOffice, case_row: AlertCase | None
) -> HandoffListItem:
    return HandoffListItem(
        handoff=handoff,
        merchant_name=merchant.name,
        merchant_credit_code=merchant.credit_code,
        street_office_code=street_office.code,
        street_office_name=street_office.name,
        alert_type=None if case_row is None else case_row.alert_type,
        case_summary=None if case_row is None else case_row.summary,
    )


def _after_cursor(cursor: HandoffCursor) -> ColumnElement[bool]:
    """Rows after ``cursor`` in the order (group ASC, due ASC NULLS LAST, transferred_at DESC, handoff_id ASC)."""
    group, due = _group_key(), _due_key()
    transferred_at = col(EnforcementHandoff.transferred_at)
    handoff_id = col(EnforcementHandoff.handoff_id)
    later_in_tie = or_(
        transferred_at < cursor.transferred_at,
        and_(transferred_at == cursor.transferred_at, handoff_id > cursor.handoff_id),
    )
    if cursor.acceptance_due_at is None:
        within_group = and_(due.is_(None), later_in_tie)
    else:
        within_group = or_(
            due > cursor.acceptance_due_at,
            and_(due == cursor.acceptance_due_at, later_in_tie),
            due.is_(None),
        )
    return or_(group > cursor.group, and_(group == cursor.group, within_group))
