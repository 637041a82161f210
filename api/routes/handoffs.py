"""Transferred cases for the enforcement brigade (办法 第七条): list, read, accept, record the decision.

Reads come from the ``enforcement_handoff`` projection (plus the workflow's live state when Temporal answers).
Changes are updates of the EnforcementHandoffWorkflow: only the brigade acts; the API checks the role and the
body, the workflow's validators check the hand-off's state, and the actor comes from the token alone.

Who reads: the brigade, the command center and the auditor see every hand-off, a street officer those of
their own street (they transferred them and follow the feedback). Merchants and administrators get 403:
the inbox is the authorities' working list; a merchant learns of the transfer from their case.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder
from pydantic import BaseModel, Field, StringConstraints, model_validator

from api.deps import CurrentActor, OptionalTemporalDep, Scope, SessionDep, require_roles
from api.updates import live_query, send_update
from domain.alerts.taxonomy import alert_type_label
from domain.cases.handoffs import (
    HandoffCursor,
    HandoffListItem,
    find_handoff,
    get_handoff_item,
    list_handoffs,
)
from domain.cases.models import EnforcementHandoff
from domain.cases.service import MAX_PAGE_SIZE
from domain.errors import ValidationFailed
from domain.users.models import Role
from workflows.enforcement_handoff import (
    DECISION_LABELS,
    HANDOFF_STATUS_LABELS,
    QUERY_GET_STATE,
    UPDATE_ACCEPT,
    UPDATE_RECORD_DECISION,
    AcceptInput,
    DecisionInput,
    DecisionKind,
    HandoffState,
    HandoffStatus,
)

router = APIRouter(tags=["handoffs"])

READ_ROLES = (Role.brigade_officer, Role.command_center, Role.auditor, Role.street_officer)
ACT_ROLES = (Role.brigade_officer,)

MAX_NOTE_LENGTH = 2000
# 元 with at most two decimals (分): exact, never a float. Nine integer digits bound it far above any fine.
YUAN_PATTERN = r"^[0-9]{1,9}(\.[0-9]{1,2})?$"


# Response bodies


class HandoffSummaryOut(BaseModel):
    handoff_id: str
    case_id: str
    status: str
    status_label: str
    reason: str
    transferred_by: str
    transferred_at: datetime
    acceptance_due_at: datetime | None = Field(description="受理时限: 3 working days from the transfer")
    overdue: bool = Field(description="not accepted by the acceptance deadline")
    accepted_by: str | None
    accepted_at: datetime | None
    decision: dict[str, Any] | None = Field(description="the latest decision, with the whole history under 'history'")
    merchant_id: int
    merchant_name: str
    merchant_credit_code: str
    street_office_id: int
    street_office_code: str
    street_office_name: str
    alert_type: str | None = Field(description="of the originating case; null when its record is missing")
    alert_type_label: str | None
    case_summary: str | None

    @classmethod
    def of(cls, item: HandoffListItem) -> HandoffSummaryOut:
        handoff = item.handoff
        return cls(
            handoff_id=handoff.handoff_id,
            case_id=handoff.case_id,
            status=handoff.status,
            status_label=_status_label(handoff.status),
            reason=handoff.reason,
            transferred_by=handoff.transferred_by,
            transferred_at=handoff.transferred_at,
            acceptance_due_at=handoff.acceptance_due_at,
            overdue=handoff.overdue,
            accepted_by=handoff.accepted_by,
            accepted_at=handoff.accepted_at,
            decision=handoff.decision,
            merchant_id=handoff.merchant_id,
            merchant_name=item.merchant_name,
            merchant_credit_code=item.merchant_credit_code,
            street_office_id=handoff.street_office_id,
            street_office_code=item.street_office_code,
            street_office_name=item.street_office_name,
            alert_type=item.alert_type,
            alert_type_label=None if item.alert_type is None else alert_type_label(item.alert_type),
            case_summary=item.case_summary,
        )


class HandoffListOut(BaseModel):
    items: list[HandoffSummaryOut]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last page")


class HandoffStateOut(BaseModel):
    """The hand-off's state: live from the workflow when it answers, else as last projected."""

    source: str = Field(description="'workflow' (live query) or 'projection' (the read model)")
    status: str
    status_label: str
    acceptance_due_at: datetime | None
    overdue: bool
    accepted_by: str | None
    accepted_at: datetime | None
    decisions: list[dict[str, Any]] = Field(description="oldest first: kind, by, at, note, amount_fen, document_no")
    version: int


class HandoffDetailOut(BaseModel):
    handoff: HandoffSummaryOut
    state: HandoffStateOut
    live: dict[str, Any] | None = Field(description="the workflow's full state (get_state), when it answered")


# Request bodies. Unknown fields (an "actor", say) are ignored: who acts comes from the token alone.


class AcceptBody(BaseModel):
    note: str = Field(default="", max_length=MAX_NOTE_LENGTH)


class DecisionBody(BaseModel):
    kind: DecisionKind = Field(description="case_opened 立案 | not_opened 不予立案 | penalty_decision 处罚决定")
    note: str = Field(default="", max_length=MAX_NOTE_LENGTH, description="required for not_opened: the reason")
    amount_yuan: str | None = Field(
        default=None,
        pattern=YUAN_PATTERN,
        description="penalty_decision: the fine in 元 as a decimal string, e.g. \"1500.00\"; \"0\" for 警告 only",
    )
    document_no: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)] | None = Field(
        default=None, description="penalty_decision: 行政处罚决定书文号"
    )

    @model_validator(mode="after")
    def _kind_needs_its_fields(self) -> DecisionBody:
        if self.kind is DecisionKind.penalty_decision:
            missing = [name for name in ("amount_yuan", "document_no") if getattr(self, name) is None]
            if missing:
                raise ValueError(f"kind 'penalty_decision' needs {' and '.join(missing)}")
        else:
            # A fine or a decision number on anything but a penalty decision is a mistake the workflow would keep.
            stray = [name for name in ("amount_yuan", "document_no") if getattr(self, name) is not None]
            if stray:
                raise ValueError(f"{' and '.join(stray)} belong(s) to kind 'penalty_decision' only")
        if self.kind is DecisionKind.not_opened and not self.note.strip():
            raise ValueError("kind 'not_opened' needs a note: the reason for not opening a case")
        return self

    def amount_fen(self) -> int | None:
        return None if self.amount_yuan is None else int(Decimal(self.amount_yuan) * 100)


# Dependencies


def current_handoff(handoff_id: str, session: SessionDep, scope: Scope) -> EnforcementHandoff:
    """The hand-off named in the path, if the caller may see it; 404 otherwise, so that ids outside one's
    scope cannot be told from ids that do not exist."""
    handoff = find_handoff(session, handoff_id=handoff_id, scope=scope)
    if handoff is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no hand-off {handoff_id!r}")
    return handoff


CurrentHandoff = Annotated[EnforcementHandoff, Depends(current_handoff)]


# Reading


@router.get("/handoffs", response_model=HandoffListOut, dependencies=[require_roles(*READ_ROLES)])
def list_handoff_inbox(
    session: SessionDep,
    scope: Scope,
    handoff_status: Annotated[list[HandoffStatus] | None, Query(alias="status")] = None,
    overdue: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 50,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> HandoffListOut:
    """The hand-offs the caller may see: awaiting acceptance first (soonest deadline first), then newest."""
    try:
        after = HandoffCursor.decode(cursor) if cursor else None
        page = list_handoffs(
            session,
            scope=scope,
            statuses=tuple(s.value for s in handoff_status or ()),
            overdue=overdue,
            limit=limit,
            after=after,
        )
    except ValidationFailed as error:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=error.message) from None
    return HandoffListOut(items=[HandoffSummaryOut.of(item) for item in page.items], next_cursor=page.next_cursor)


@router.get("/handoffs/{handoff_id}", response_model=HandoffDetailOut, dependencies=[require_roles(*READ_ROLES)])
async def read_handoff(
    handoff: CurrentHandoff, session: SessionDep, temporal: OptionalTemporalDep
) -> HandoffDetailOut:
    """One hand-off: the projection with merchant and case, and the workflow's live state when it answers."""
    item, live = await asyncio.gather(
        run_in_threadpool(lambda: get_handoff_item(session, handoff_id=handoff.handoff_id)),
        live_query(temporal, handoff.handoff_id, QUERY_GET_STATE, result_type=HandoffState),
    )
    assert item is not None  # current_handoff found the row; the projection only ever upserts
    return _detail_out(item, live)


# Acting


@router.post("/handoffs/{handoff_id}/accept", dependencies=[require_roles(*ACT_ROLES)])
async def accept(body: AcceptBody, handoff: CurrentHandoff, actor: CurrentActor, request: Request) -> dict[str, Any]:
    """受理: the brigade takes the transferred case on (within 3 working days of the transfer)."""
    payload = AcceptInput(actor=actor, note=body.note)
    return await _act(request, handoff, UPDATE_ACCEPT, payload)


@router.post("/handoffs/{handoff_id}/decision", dependencies=[require_roles(*ACT_ROLES)])
async def record_decision(
    body: DecisionBody, handoff: CurrentHandoff, actor: CurrentActor, request: Request
) -> dict[str, Any]:
    """执法决定: 立案 or 不予立案 once accepted; then 处罚决定 (fine in 元 and the decision's document number)."""
    payload = DecisionInput(
        actor=actor, kind=body.kind, note=body.note, amount_fen=body.amount_fen(), document_no=body.document_no
    )
    return await _act(request, handoff, UPDATE_RECORD_DECISION, payload)


# Helpers


async def _act(request: Request, handoff: EnforcementHandoff, update: str, payload: object) -> dict[str, Any]:
    state = await send_update(
        request, handoff.handoff_id, update, payload, result_type=HandoffState,
        subject=f"hand-off {handoff.handoff_id}",
    )
    return _state_json(state)


def _state_json(state: HandoffState) -> dict[str, Any]:
    body: dict[str, Any] = jsonable_encoder(asdict(state))
    body["status_label"] = _status_label(str(state.status))
    for decision in body["decisions"]:
        decision["label"] = _decision_label(decision["kind"])
    return body


def _detail_out(item: HandoffListItem, live: HandoffState | None) -> HandoffDetailOut:
    handoff = item.handoff
    if live is not None:
        live_json = _state_json(live)
        state = HandoffStateOut(
            source="workflow",
            status=str(live.status),
            status_label=_status_label(str(live.status)),
            acceptance_due_at=None if live.acceptance_deadline is None else live.acceptance_deadline.due_at,
            overdue=live.overdue,
            accepted_by=live.accepted_by,
            accepted_at=live.accepted_at,
            decisions=live_json["decisions"],
            version=live.version,
        )
    else:
        live_json = None
        history = (handoff.decision or {}).get("history") or []
        state = HandoffStateOut(
            source="projection",
            status=handoff.status,
            status_label=_status_label(handoff.status),
            acceptance_due_at=handoff.acceptance_due_at,
            overdue=handoff.overdue,
            accepted_by=handoff.accepted_by,
            accepted_at=handoff.accepted_at,
            decisions=[{**d, "label": _decision_label(str(d.get("kind")))} for d in history],
            version=handoff.version,
        )
    return HandoffDetailOut(handoff=HandoffSummaryOut.of(item), state=state, live=live_json)


def _status_label(value: str) -> str:
    try:
        return HANDOFF_STATUS_LABELS[HandoffStatus(value)]
    except ValueError:
        return value


def _decision_label(value: str) -> str:
    try:
        return DECISION_LABELS[DecisionKind(value)]
    except ValueError:
        return value

