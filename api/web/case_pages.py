"""One case for the street office (and the command center acting for a street): evidence, timeline, deadlines
with their provenance, the disposition advice, and the officer's actions as plain forms."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlmodel import Session

from api.deps import SessionDep
from api.routes.bundles import bundle_download
from api.routes.cases import CommentBody, ReviewBody, SetDeadlineBody, TransferBody
from api.updates import send_update
from api.web.context import CsrfChecked, Page, PageContext, PageForbidden, page_roles
from api.web.i18n import N_
from api.web.templating import render
from domain.audit.models import AuditAction
from domain.audit.service import record_audit
from domain.calendar.service import working_calendar
from domain.cases.models import AlertCase
from domain.cases.service import CaseScope, ScopeKind, find_case, get_case_detail, timeline_photos
from domain.users.models import Role
from infra.evidence_bundles import Exporter
from workflows.alert_case import (
    UPDATE_ADD_COMMENT,
    UPDATE_REMIND,
    UPDATE_REVIEW,
    UPDATE_SET_DEADLINE,
    UPDATE_TRANSFER,
    CaseState,
    CommentInput,
    RemindInput,
    ReviewInput,
    SetDeadlineInput,
    TransferInput,
)

router = APIRouter(include_in_schema=False)

CASE_ROLES = (Role.street_officer, Role.command_center)
DONE_MESSAGES = {
    "set_deadline": N_("The rectification deadline was set."),
    "review": N_("The review was recorded."),
    "transfer": N_("The case was transferred to the enforcement brigade."),
    "comment": N_("The comment was added."),
    "remind": N_("The merchant was reminded."),
}


def officer_case(case_id: str, context: PageContext, session: Session) -> AlertCase:
    """The case, if the officer's street (or the command center) may see it: 403 page for another street's case
    (and an audit entry), 404 for a case that does not exist."""
    case = session.get(AlertCase, case_id)
    if case is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=context.tr.gettext("No such case."))
    scope = (
        CaseScope(ScopeKind.street_office, street_office_id=context.user.street_office_id)
        if context.role is Role.street_officer
        else CaseScope(ScopeKind.everything)
    )
    if find_case(session, case_id=case_id, scope=scope) is None:
        raise PageForbidden(context.tr.gettext("This case belongs to another street office."), context,
                            target=f"case:{case_id}")
    return case


def _deadline_choices(session: Session) -> list[tuple[int, datetime, bool]]:
    """1–3 working days from now, computed with the official calendar, so the officer sees the date before
    submitting (办法 第十八条)."""
    calendar = working_calendar(session)
    now = datetime.now(UTC)
    choices = []
    for days in (1, 2, 3):
        deadline = calendar.add_working_days(now, days)
        choices.append((days, deadline.due_at, deadline.provisional))
    return choices


def _case_page(
    context: PageContext, session: Session, case: AlertCase, *, done: str | None = None,
    error: str | None = None, status_code: int = 200,
) -> Response:
    detail = get_case_detail(session, case_id=case.case_id)
    flash = context.tr.gettext(DONE_MESSAGES[done]) if done in DONE_MESSAGES else None
    return render(
        context.request, "case.html", tr=context.tr, page=context, status_code=status_code, detail=detail,
        case=detail.case, photos=timeline_photos(session, detail=detail), deadline_choices=_deadline_choices(session),
        flash=flash, error=error,
    )


@router.get("/cases/{case_id}", dependencies=[page_roles(*CASE_ROLES)])
def case_detail(case_id: str, context: Page, session: SessionDep, done: str | None = None) -> Response:
    return _case_page(context, session, officer_case(case_id, context, session), done=done)


async def _act(
    context: PageContext, session: Session, case: AlertCase, *, name: str, update: str, payload: object
) -> Response:
    try:
        await send_update(context.request, case.case_id, update, payload, result_type=CaseState)
    except HTTPException as refusal:
        session.expire_all()
        return await run_in_threadpool(
            _case_page, context, session, case, error=str(refusal.detail), status_code=refusal.status_code
        )
    record_audit(session, context=context.audit_context(), action=AuditAction.case_action,
                 target=f"case:{case.case_id}", reason=name)
    session.commit()
    return RedirectResponse(f"/cases/{case.case_id}?done={name}", status_code=status.HTTP_303_SEE_OTHER)


def _body(model: type[Any], context: PageContext, **values: Any) -> Any:
    """The JSON API's body model, so that the pages and the API accept exactly the same input."""
    try:
        return model(**values)
    except ValidationError as invalid:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in problem['loc'])}: {problem['msg']}" if problem["loc"] else problem["msg"]
            for problem in invalid.errors()
        )
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=problems) from None


@router.post("/cases/{case_id}/set_deadline", dependencies=[page_roles(*CASE_ROLES)])
async def set_deadline(
    case_id: str, context: CsrfChecked, session: SessionDep,
    working_days: Annotated[int, Form()] = 0, note: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    case = officer_case(case_id, context, session)
    body = _body(SetDeadlineBody, context, working_days=working_days, note=note)
    payload = SetDeadlineInput(actor=context.actor, working_days=body.working_days, note=body.note)
    return await _act(context, session, case, name="set_deadline", update=UPDATE_SET_DEADLINE, payload=payload)


@router.post("/cases/{case_id}/review", dependencies=[page_roles(*CASE_ROLES)])
async def review(
    case_id: str, context: CsrfChecked, session: SessionDep,
    decision: Annotated[str, Form(max_length=40)] = "", note: Annotated[str, Form(max_length=4000)] = "",
    outcome: Annotated[str, Form(max_length=40)] = "", working_days: Annotated[str, Form(max_length=2)] = "",
    harm: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    case = officer_case(case_id, context, session)
    body = _body(ReviewBody, context, decision=decision, note=note, outcome=outcome or None,
                 working_days=working_days or None, harm=harm or None)
    payload = ReviewInput(actor=context.actor, decision=body.decision, note=body.note, outcome=body.outcome,
                          working_days=body.working_days, harm=body.harm)
    return await _act(context, session, case, name="review", update=UPDATE_REVIEW, payload=payload)


@router.post("/cases/{case_id}/transfer", dependencies=[page_roles(*CASE_ROLES)])
async def transfer(
    case_id: str, context: CsrfChecked, session: SessionDep, reason: Annotated[str, Form(max_length=4000)] = ""
) -> Response:
    case = officer_case(case_id, context, session)
    body = _body(TransferBody, context, reason=reason.strip())
    payload = TransferInput(actor=context.actor, reason=body.reason)
    return await _act(context, session, case, name="transfer", update=UPDATE_TRANSFER, payload=payload)


@router.post("/cases/{case_id}/comment", dependencies=[page_roles(*CASE_ROLES)])
async def comment(
    case_id: str, context: CsrfChecked, session: SessionDep, text: Annotated[str, Form(max_length=4000)] = ""
) -> Response:
    case = officer_case(case_id, context, session)
    body = _body(CommentBody, context, text=text.strip())
    payload = CommentInput(actor=context.actor, text=body.text)
    return await _act(context, session, case, name="comment", update=UPDATE_ADD_COMMENT, payload=payload)


@router.post("/cases/{case_id}/remind", dependencies=[page_roles(*CASE_ROLES)])
async def remind(
    case_id: str, context: CsrfChecked, session: SessionDep, note: Annotated[str, Form(max_length=1000)] = ""
) -> Response:
    case = officer_case(case_id, context, session)
    payload = RemindInput(actor=context.actor, note=note.strip())
    return await _act(context, session, case, name="remind", update=UPDATE_REMIND, payload=payload)


@router.post("/cases/{case_id}/evidence-bundle", dependencies=[page_roles(*CASE_ROLES)])
async def evidence_bundle(
    case_id: str, context: CsrfChecked, session: SessionDep, reason: Annotated[str, Form(max_length=500)] = ""
) -> Response:
    """The case's evidence bundle as a download; without a 事由 the page comes back saying so."""
    case = officer_case(case_id, context, session)
    if not reason.strip():
        return await run_in_threadpool(
            _case_page, context, session, case, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
            error=context.tr.gettext("State the reason (事由) for exporting the evidence."))
    actor = context.actor
    return await bundle_download(context.request, case_id=case.case_id, reason=reason.strip(),
                                 exporter=Exporter(username=actor.username, role=actor.role, unit=actor.unit),
                                 audit_context=context.audit_context())
