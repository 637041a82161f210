"""The case queue and case actions, and evidence uploads that actions refer to.

Reads come from the Postgres projection (plus the workflow's live state when Temporal answers). Every
change is a workflow update: the API checks who may act (the validator checks only the case's state),
builds the payload with the actor taken from the token, and returns the state the update produced.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any, Literal

import urllib3.exceptions
from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder
from pydantic import AwareDatetime, BaseModel, Field, model_validator
from sqlmodel import Session
from starlette.datastructures import UploadFile as StarletteUploadFile
from temporalio.client import Client

from api.deps import (
    CurrentActor,
    CurrentCase,
    CurrentUser,
    OptionalTemporalDep,
    Scope,
    SessionDep,
    require_roles,
)
from api.updates import live_query, send_update
from api.uploads import store_upload
from domain.alerts.taxonomy import AlertType, alert_type_label
from domain.cases.models import AlertCase
from domain.cases.service import (
    MAX_PAGE_SIZE,
    CaseCursor,
    CaseDetail,
    CaseFilters,
    CaseListItem,
    get_case_detail,
    list_cases,
)
from domain.errors import ValidationFailed
from domain.evidence.content import (
    ContentTypeMismatch,
    EvidenceTooLarge,
    UnsupportedContent,
)
from domain.evidence.models import CustodyAction, Evidence
from domain.evidence.refs import EvidenceRef
from domain.evidence.service import custody_log
from domain.users.models import Role, User
from infra.evidence_store import EvidenceStore, EvidenceStoreError
from workflows.alert_case import (
    CASE_STATUS_LABELS,
    QUERY_GET_STATE,
    UPDATE_ADD_COMMENT,
    UPDATE_REVIEW,
    UPDATE_SET_DEADLINE,
    UPDATE_SUBMIT_RECTIFICATION,
    UPDATE_TRANSFER,
    UPDATE_VERIFY,
    CaseOutcome,
    CaseState,
    CaseStatus,
    CommentInput,
    ReviewDecision,
    ReviewInput,
    SetDeadlineInput,
    SubmitRectificationInput,
    TransferInput,
    VerifyChoice,
    VerifyInput,
)

log = logging.getLogger("sunshine.api.cases")

router = APIRouter(tags=["cases"])

# Who may do what (domain note §9, DESIGN "Who uses it"). The auditor acts on nothing; the administrator
# never reaches case content at all. Scope (own shop, own street, transferred cases) is CurrentCase's job.
VERIFY_ROLES = (Role.merchant,)
RECTIFY_ROLES = (Role.merchant,)
OFFICER_ROLES = (Role.street_officer, Role.command_center)
COMMENT_ROLES = (Role.merchant, Role.street_officer, Role.brigade_officer, Role.command_center)
UPLOAD_ROLES = (Role.merchant, Role.street_officer, Role.brigade_officer, Role.command_center)

MAX_NOTE_LENGTH = 2000
# Multipart boundaries and part headers around the file, on top of the evidence size limit.
UPLOAD_FRAMING_BYTES = 64 * 1024
EVIDENCE_UPLOAD_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            }
        },
    }
}


# Response bodies


class EvidenceOut(BaseModel):
    evidence_id: uuid.UUID
    content_type: str
    size: int
    sha256: str
    sm3: str
    bucket: str
    key: str
    version_id: str | None
    stored_at: datetime
    collection_method: str
    captured_at: datetime | None

    @classmethod
    def of(cls, evidence: Evidence) -> EvidenceOut:
        return cls(
            evidence_id=evidence.id,
            content_type=evidence.content_type,
            size=evidence.size,
            sha256=evidence.sha256,
            sm3=evidence.sm3,
            bucket=evidence.bucket,
            key=evidence.key,
            version_id=evidence.version_id,
            stored_at=evidence.stored_at,
            collection_method=evidence.collection_method,
            captured_at=evidence.captured_at,
        )


class CaseSummaryOut(BaseModel):
    case_id: str
    status: str
    status_label: str
    alert_type: str
    alert_type_label: str
    category: str
    outcome: str | None
    merchant_id: int
    merchant_name: str
    merchant_credit_code: str
    street_office_id: int
    street_office_code: str
    camera_id: int
    opened_at: datetime
    closed_at: datetime | None
    last_alert_at: datetime
    alert_count: int
    next_due_at: datetime | None
    overdue: bool
    handoff_id: str | None
    summary: str

    @classmethod
    def of(
        cls, case: AlertCase, *, merchant_name: str, merchant_credit_code: str, street_office_code: str
    ) -> CaseSummaryOut:
        return cls(
            case_id=case.case_id,
            status=case.status,
            status_label=_status_label(case.status),
            alert_type=case.alert_type,
            alert_type_label=alert_type_label(case.alert_type),
            category=case.category,
            outcome=case.outcome,
            merchant_id=case.merchant_id,
            merchant_name=merchant_name,
            merchant_credit_code=merchant_credit_code,
            street_office_id=case.street_office_id,
            street_office_code=street_office_code,
            camera_id=case.camera_id,
            opened_at=case.opened_at,
            closed_at=case.closed_at,
            last_alert_at=case.last_alert_at,
            alert_count=case.alert_count,
            next_due_at=case.next_due_at,
            overdue=case.overdue,
            handoff_id=case.handoff_id,
            summary=case.summary,
        )

    @classmethod
    def of_item(cls, item: CaseListItem) -> CaseSummaryOut:
        return cls.of(
            item.case,
            merchant_name=item.merchant_name,
            merchant_credit_code=item.merchant_credit_code,
            street_office_code=item.street_office_code,
        )


class CaseListOut(BaseModel):
    items: list[CaseSummaryOut]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last page")


class TimelineEntryOut(BaseModel):
    seq: int
    at: datetime
    kind: str
    actor: str
    summary: str
    payload: dict[str, Any]


class AlertOut(BaseModel):
    alert_id: uuid.UUID
    event_id: str
    alert_type: str
    captured_at: datetime
    received_at: datetime
    score: float
    boxes: list[dict[str, Any]]
    model: dict[str, Any] | None
    snapshot: EvidenceOut
    clip: EvidenceOut | None


class HandoffOut(BaseModel):
    handoff_id: str
    status: str
    reason: str
    transferred_by: str
    transferred_at: datetime
    accepted_by: str | None
    accepted_at: datetime | None
    decision: dict[str, Any] | None


class CaseStateOut(BaseModel):
    """The case's lifecycle state: live from the workflow when it answers, else as last projected."""

    source: str = Field(description="'workflow' (live query) or 'projection' (the read model)")
    status: str
    status_label: str
    outcome: str | None
    deadlines: dict[str, Any] = Field(description="name → due_at, rule, amount, calendar versions, provenance, met")
    overdue: list[str] | bool
    disposition: dict[str, Any] | None = Field(description="处置建议 (Art. 19): a recommendation, an officer decides")
    handoff_id: str | None
    version: int


class CaseDetailOut(BaseModel):
    case: CaseSummaryOut
    state: CaseStateOut
    flags: dict[str, Any]
    timeline: list[TimelineEntryOut]
    alerts: list[AlertOut]
    handoff: HandoffOut | None
    live: dict[str, Any] | None = Field(description="the workflow's full state (get_state), when it answered")


class EvidenceUploaded(BaseModel):
    evidence_id: uuid.UUID
    sha256: str
    sm3: str
    size: int
    content_type: str


# Request bodies. Unknown fields (an "actor", say) are ignored: who acts comes from the token alone.


class VerifyBody(BaseModel):
    choice: VerifyChoice
    note: str = Field(default="", max_length=MAX_NOTE_LENGTH)
    rectification_photo_evidence_id: uuid.UUID | None = None
    proposed_deadline: AwareDatetime | None = None
    reason_code: str | None = Field(default=None, min_length=1, max_length=64)

    @model_validator(mode="after")
    def _choice_needs_its_fields(self) -> VerifyBody:
        missing = {
            VerifyChoice.rectified_now: []
            if self.rectification_photo_evidence_id
            else ["rectification_photo_evidence_id"],
            VerifyChoice.needs_time: [] if self.proposed_deadline else ["proposed_deadline"],
            # 办法 第十六条: calling an alert false needs a reason.
            VerifyChoice.unsubstantiated: [
                name for name, value in (("reason_code", self.reason_code), ("note", self.note.strip())) if not value
            ],
        }[self.choice]
        if missing:
            raise ValueError(f"choice {self.choice.value!r} needs {' and '.join(missing)}")
        return self


class SubmitRectificationBody(BaseModel):
    photo_evidence_id: uuid.UUID
    note: str = Field(default="", max_length=MAX_NOTE_LENGTH)


class SetDeadlineBody(BaseModel):
    working_days: int = Field(ge=1, le=3, description="办法 第十八条: at most 3 working days")
    note: str = Field(default="", max_length=MAX_NOTE_LENGTH)


class ReviewBody(BaseModel):
    decision: ReviewDecision
    note: str = Field(default="", max_length=MAX_NOTE_LENGTH, description="required when rejecting")
    outcome: CaseOutcome | None = Field(default=None, description="approve_rectification: the outcome recorded")
    working_days: int | None = Field(
        default=None, ge=1, le=3, description="reject_*: the new rectification deadline in working days"
    )
    harm: Literal["none", "minor", "actual"] | None = Field(
        default=None, description="危害后果 as the officer found it; without it the advice cannot recommend leniency"
    )


class TransferBody(BaseModel):
    reason: str = Field(min_length=1, max_length=1000)


class CommentBody(BaseModel):
    text: str = Field(min_length=1, max_length=MAX_NOTE_LENGTH)


# Reading


@router.get("/cases", response_model=CaseListOut)
def list_case_queue(
    session: SessionDep,
    scope: Scope,
    case_status: Annotated[list[CaseStatus] | None, Query(alias="status")] = None,
    alert_type: Annotated[list[AlertType] | None, Query()] = None,
    street_office: Annotated[str | None, Query(max_length=32, description="street office code")] = None,
    merchant: Annotated[str | None, Query(max_length=32, description="merchant credit code")] = None,
    overdue: bool | None = None,
    due_before: AwareDatetime | None = None,
    text: Annotated[str | None, Query(max_length=100, description="in the summary or merchant name")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 50,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> CaseListOut:
    """The cases the caller may see, soonest deadline first; pages follow ``next_cursor``."""
    try:
        filters = CaseFilters(
            statuses=tuple(s.value for s in case_status or ()),
            alert_types=tuple(t.value for t in alert_type or ()),
            street_office_code=street_office,
            merchant_credit_code=merchant,
            overdue=overdue,
            due_before=due_before,
            text=text,
        )
        after = CaseCursor.decode(cursor) if cursor else None
        page = list_cases(session, scope=scope, filters=filters, limit=limit, after=after)
    except ValidationFailed as error:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=error.message) from None
    return CaseListOut(items=[CaseSummaryOut.of_item(item) for item in page.items], next_cursor=page.next_cursor)


@router.get("/cases/{case_id}", response_model=CaseDetailOut)
async def read_case(case: CurrentCase, session: SessionDep, temporal: OptionalTemporalDep) -> CaseDetailOut:
    """One case in full: state, deadlines with provenance, timeline, evidence with both digests, advice."""
    detail, live = await asyncio.gather(
        run_in_threadpool(lambda: get_case_detail(session, case_id=case.case_id)),
        _live_state(temporal, case.case_id),
    )
    return _detail_out(detail, live)


# Acting


@router.post("/cases/{case_id}/verify", dependencies=[require_roles(*VERIFY_ROLES)])
async def verify(
    body: VerifyBody,
    case: CurrentCase,
    actor: CurrentActor,
    user: CurrentUser,
    session: SessionDep,
    request: Request,
) -> dict[str, Any]:
    """核实: the merchant answers the alert (true and fixed now with a photo, true and needs time, or false)."""
    photo = None
    if body.rectification_photo_evidence_id is not None:
        photo = await run_in_threadpool(_own_photo, session, user, body.rectification_photo_evidence_id)
    payload = VerifyInput(
        actor=actor,
        choice=body.choice,
        note=body.note,
        rectification_photo=photo,
        proposed_deadline=body.proposed_deadline,
        reason_code=body.reason_code,
    )
    return await _send_update(request, case.case_id, UPDATE_VERIFY, payload)


@router.post("/cases/{case_id}/submit_rectification", dependencies=[require_roles(*RECTIFY_ROLES)])
async def submit_rectification(
    body: SubmitRectificationBody,
    case: CurrentCase,
    actor: CurrentActor,
    user: CurrentUser,
    session: SessionDep,
    request: Request,
) -> dict[str, Any]:
    """整改: the merchant shows the problem put right (a photo they uploaded)."""
    photo = await run_in_threadpool(_own_photo, session, user, body.photo_evidence_id)
    payload = SubmitRectificationInput(actor=actor, photo=photo, note=body.note)
    return await _send_update(request, case.case_id, UPDATE_SUBMIT_RECTIFICATION, payload)


@router.post("/cases/{case_id}/set_deadline", dependencies=[require_roles(*OFFICER_ROLES)])
async def set_deadline(
    body: SetDeadlineBody, case: CurrentCase, actor: CurrentActor, request: Request
) -> dict[str, Any]:
    """整改期限: the officer sets a deferred rectification deadline (at most 3 working days)."""
    payload = SetDeadlineInput(actor=actor, working_days=body.working_days, note=body.note)
    return await _send_update(request, case.case_id, UPDATE_SET_DEADLINE, payload)


@router.post("/cases/{case_id}/review", dependencies=[require_roles(*OFFICER_ROLES)])
async def review(body: ReviewBody, case: CurrentCase, actor: CurrentActor, request: Request) -> dict[str, Any]:
    """录入审核: the officer approves or rejects a rectification, or accepts or rejects a dispute."""
    payload = ReviewInput(
        actor=actor, decision=body.decision, note=body.note, outcome=body.outcome, working_days=body.working_days,
        harm=body.harm,
    )
    return await _send_update(request, case.case_id, UPDATE_REVIEW, payload)


@router.post("/cases/{case_id}/transfer", dependencies=[require_roles(*OFFICER_ROLES)])
async def transfer(body: TransferBody, case: CurrentCase, actor: CurrentActor, request: Request) -> dict[str, Any]:
    """移交: the officer hands the case to the enforcement brigade, with the reason."""
    payload = TransferInput(actor=actor, reason=body.reason)
    return await _send_update(request, case.case_id, UPDATE_TRANSFER, payload)


@router.post("/cases/{case_id}/comment", dependencies=[require_roles(*COMMENT_ROLES)])
async def comment(body: CommentBody, case: CurrentCase, actor: CurrentActor, request: Request) -> dict[str, Any]:
    """A remark in the case timeline, by anyone who deals with the case."""
    payload = CommentInput(actor=actor, text=body.text)
    return await _send_update(request, case.case_id, UPDATE_ADD_COMMENT, payload)


@router.post(
    "/evidence",
    status_code=status.HTTP_201_CREATED,
    response_model=EvidenceUploaded,
    dependencies=[require_roles(*UPLOAD_ROLES)],
    tags=["evidence"],
    openapi_extra=EVIDENCE_UPLOAD_OPENAPI,
)
async def upload_evidence(request: Request, user: CurrentUser, actor: CurrentActor) -> EvidenceUploaded:
    """Store a photo or video (multipart part ``file``) as evidence; actions then refer to its id."""
    store: EvidenceStore = request.app.state.evidence_store
    upload = await _single_file_part(request, max_bytes=store.max_bytes)
    try:
        ref = await store_upload(store, upload, user=user, unit=actor.unit, via="api")
    except EvidenceTooLarge as error:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, detail=error.message) from None
    except (UnsupportedContent, ContentTypeMismatch) as error:
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, detail=error.message) from None
    except ValidationFailed as error:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=error.message) from None
    except (EvidenceStoreError, urllib3.exceptions.HTTPError, OSError) as error:
        log.warning("evidence upload failed: %s", type(error).__name__)
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail="the evidence store is unavailable; nothing was stored, try again shortly",
            headers={"Retry-After": "10"},
        ) from None
    finally:
        await upload.close()
    return EvidenceUploaded(
        evidence_id=ref.evidence_id, sha256=ref.sha256, sm3=ref.sm3, size=ref.size, content_type=ref.content_type
    )


# Helpers


async def _single_file_part(request: Request, *, max_bytes: int) -> StarletteUploadFile:
    """The multipart part ``file``; a body announced larger than the limit is refused before it is read.

    Parsed here rather than declared as a parameter: FastAPI reads a declared body before it runs the
    dependencies, so anyone, signed in or not, could make the server spool any amount of data first.
    """
    announced = request.headers.get("content-length")
    if announced is None:
        raise HTTPException(status.HTTP_411_LENGTH_REQUIRED, detail="send the upload with a Content-Length")
    if not announced.isdigit():
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail="the Content-Length header is not a number")
    if int(announced) > max_bytes + UPLOAD_FRAMING_BYTES:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE, detail=f"evidence exceeds the limit of {max_bytes} bytes"
        )
    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            detail="send multipart/form-data with the file in a part named 'file'",
        )
    form = await request.form(max_files=1, max_fields=8)
    part = form.get("file")
    if not isinstance(part, StarletteUploadFile):
        await form.close()
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail="the multipart part 'file' is missing")
    return part


def _own_photo(session: Session, user: User, evidence_id: uuid.UUID) -> dict[str, Any]:
    """The reference of an image this user uploaded; 422 for any other id, so ids of others' evidence
    cannot be attached (or probed)."""
    evidence = session.get(Evidence, evidence_id)
    uploaded_by_user = evidence is not None and any(
        event.action == CustodyAction.collected.value and event.actor == f"user:{user.username}"
        for event in custody_log(session, evidence_id)
    )
    if evidence is None or not uploaded_by_user:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=f"evidence {evidence_id} is not an upload of yours; upload the photo at POST /api/v1/evidence first",
        )
    if not evidence.content_type.startswith("image/"):
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=f"evidence {evidence_id} is {evidence.content_type}, not a photo",
        )
    return EvidenceRef.from_record(evidence).to_payload()


async def _send_update(request: Request, case_id: str, update: str, payload: object) -> dict[str, Any]:
    """Run the update (see ``api.updates.send_update`` for how refusals and outages answer)."""
    state = await send_update(request, case_id, update, payload, result_type=CaseState, subject=f"case {case_id}")
    return _state_json(state)


def _state_json(state: CaseState) -> dict[str, Any]:
    body: dict[str, Any] = jsonable_encoder(asdict(state))
    body["status_label"] = _status_label(str(state.status))
    return body


async def _live_state(client: Client | None, case_id: str) -> CaseState | None:
    return await live_query(client, case_id, QUERY_GET_STATE, result_type=CaseState)


def _detail_out(detail: CaseDetail, live: CaseState | None) -> CaseDetailOut:
    case = detail.case
    if live is not None:
        live_json = _state_json(live)
        state = CaseStateOut(
            source="workflow",
            status=str(live.status),
            status_label=_status_label(str(live.status)),
            outcome=None if live.outcome is None else str(live.outcome),
            deadlines=live_json["deadlines"],
            overdue=list(live.overdue),
            disposition=live.disposition,
            handoff_id=live.handoff_id,
            version=live.version,
        )
    else:
        live_json = None
        state = CaseStateOut(
            source="projection",
            status=case.status,
            status_label=_status_label(case.status),
            outcome=case.outcome,
            deadlines=case.deadlines,
            overdue=case.overdue,
            disposition=case.disposition,
            handoff_id=case.handoff_id,
            version=case.version,
        )
    handoff = detail.handoff
    return CaseDetailOut(
        case=CaseSummaryOut.of(
            case,
            merchant_name=detail.merchant.name,
            merchant_credit_code=detail.merchant.credit_code,
            street_office_code=detail.street_office.code,
        ),
        state=state,
        flags=case.flags,
        timeline=[
            TimelineEntryOut(seq=e.seq, at=e.at, kind=e.kind, actor=e.actor, summary=e.summary, payload=e.payload)
            for e in detail.timeline
        ],
        alerts=[
            AlertOut(
                alert_id=a.alert.id,
                event_id=a.alert.event_id,
                alert_type=a.alert.alert_type,
                captured_at=a.alert.captured_at,
                received_at=a.alert.received_at,
                score=a.alert.score,
                boxes=a.alert.boxes,
                model=a.alert.model,
                snapshot=EvidenceOut.of(a.snapshot),
                clip=None if a.clip is None else EvidenceOut.of(a.clip),
            )
            for a in detail.alerts
        ],
        handoff=None
        if handoff is None
        else HandoffOut(
            handoff_id=handoff.handoff_id,
            status=handoff.status,
            reason=handoff.reason,
            transferred_by=handoff.transferred_by,
            transferred_at=handoff.transferred_at,
            accepted_by=handoff.accepted_by,
            accepted_at=handoff.accepted_at,
            decision=handoff.decision,
        ),
        live=live_json,
    )


def _status_label(value: str) -> str:
    try:
        return CASE_STATUS_LABELS[CaseStatus(value)]
    except ValueError:
        return value

