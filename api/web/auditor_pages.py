"""The auditor's pages (审计): every case of the district read-only, and the audit log. No forms but filters, and
one button that changes no case: "Verify now" on a case's exported workflow history.

The auditor verifies rather than watches: evidence is shown by its SM3 and SHA-256 digests and provenance,
never as pictures (access matrix, domain note §9; ``/evidence`` refuses the role). A closed case's Temporal
history, exported to the locked bucket with a signed per-event chain (``infra.history_export``), is shown with
its last verification, can be verified and replayed again against the running code, and downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Annotated
from urllib.parse import quote, urlencode

import urllib3
from fastapi import APIRouter, HTTPException, Query, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response
from minio.error import S3Error
from sqlmodel import Session, col, select

from api.audit import audit_request
from api.deps import SessionDep
from api.web.brigade_pages import advice_view, deadline_views, decision_views, evidence_views
from api.web.context import CsrfChecked, Page, PageContext, page_roles
from api.web.i18n import N_, Translator
from api.web.labels import ALERT_TYPE, CASE_STATUS
from api.web.templating import BEIJING, render
from domain.audit.models import AuditAction, AuditOutcome, WorkflowHistoryExport
from domain.audit.service import AuditFilters, list_audit
from domain.cases.service import (
    MAX_TEXT_QUERY_LENGTH,
    CaseCursor,
    CaseFilters,
    CaseScope,
    ScopeKind,
    find_case,
    get_case_detail,
    list_cases,
)
from domain.errors import ValidationFailed
from domain.merchants.models import StreetOffice
from domain.users.models import Role
from infra.history_export import HistoryArchive, HistoryExportError

router = APIRouter(include_in_schema=False)
HISTORY_PARTS = ("history.json", "manifest.txt")

AUDITOR = page_roles(Role.auditor)
DISTRICT = CaseScope(ScopeKind.everything)
CASE_PAGE_SIZE = 50
LOG_PAGE_SIZE = 50

ACTION_LABELS: dict[str, str] = {
    AuditAction.signed_in: N_("Signed in"),
    AuditAction.sign_in_failed: N_("Sign-in failed"),
    AuditAction.sign_in_locked: N_("Sign-in locked"),
    AuditAction.signed_out: N_("Signed out"),
    AuditAction.session_expired: N_("Session expired"),
    AuditAction.password_changed: N_("Password changed"),
    AuditAction.mfa_enrolled: N_("Two-step verification set up"),
    AuditAction.mfa_failed: N_("Two-step verification failed"),
    AuditAction.mfa_reset: N_("Two-step verification reset"),
    AuditAction.permission_denied: N_("Permission denied"),
    AuditAction.csrf_refused: N_("Forged or expired form refused"),
    AuditAction.evidence_viewed: N_("Evidence viewed"),
    AuditAction.evidence_exported: N_("Evidence bundle exported"),
    AuditAction.history_verified: N_("Workflow history verified"),
    AuditAction.history_downloaded: N_("Workflow history downloaded"),
    AuditAction.case_action: N_("Case action"),
    AuditAction.handoff_action: N_("Transferred-case action"),
    AuditAction.user_created: N_("User created"),
    AuditAction.user_disabled: N_("User disabled"),
    AuditAction.user_enabled: N_("User enabled"),
    AuditAction.device_created: N_("Device created"),
}
VERDICT_LABELS: dict[str, str] = {
    "deterministic": N_("Deterministic: the current code makes the same decisions"),
    "diverged": N_("Diverged: the current code would decide differently"),
    "tampered": N_("Tampered: the stored history is not what was exported"),
}
OUTCOME_LABELS: dict[str, str] = {
    AuditOutcome.success: N_("Success"),
    AuditOutcome.failure: N_("Failure"),
    AuditOutcome.denied: N_("Denied"),
}


def _unprocessable(tr: Translator, message: str) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=tr.gettext(message))


# Cases


@router.get("/audit", dependencies=[AUDITOR])
def cases(
    context: Page,
    session: SessionDep,
    case_status: Annotated[str, Query(alias="status", max_length=40)] = "",
    alert_type: Annotated[str, Query(max_length=40)] = "",
    office: Annotated[str, Query(max_length=64)] = "",
    q: Annotated[str, Query(max_length=MAX_TEXT_QUERY_LENGTH)] = "",
    cursor: Annotated[str, Query(max_length=1000)] = "",
) -> Response:
    tr = context.tr
    if case_status and case_status not in CASE_STATUS:
        raise _unprocessable(tr, N_("Unknown status filter."))
    if alert_type and alert_type not in ALERT_TYPE:
        raise _unprocessable(tr, N_("Unknown alert type filter."))
    try:
        after = CaseCursor.decode(cursor) if cursor else None
    except ValidationFailed:
        raise _unprocessable(tr, N_("This page link is no longer valid. Start again from the first page.")) from None
    filters = CaseFilters(
        statuses=(case_status,) if case_status else (),
        alert_types=(alert_type,) if alert_type else (),
        street_office_code=office or None,
        text=q.strip() or None,
    )
    page = list_cases(session, scope=DISTRICT, filters=filters, limit=CASE_PAGE_SIZE, after=after)
    kept = {k: v for k, v in {"status": case_status, "alert_type": alert_type, "office": office, "q": q}.items() if v}
    offices = session.exec(select(StreetOffice).order_by(col(StreetOffice.code))).all()
    return render(
        context.request, "audit/cases.html", tr=tr, page=context,
        items=page.items, filters={"status": case_status, "alert_type": alert_type, "office": office, "q": q},
        statuses=list(CASE_STATUS), alert_types=list(ALERT_TYPE), offices=offices,
        office_names={o.code: o.name for o in offices},
        next_link=("/audit?" + urlencode({**kept, "cursor": page.next_cursor})) if page.next_cursor else None,
        first_link=("/audit?" + urlencode(kept)) if cursor else None,
    )


@router.get("/audit/cases/{case_id}", dependencies=[AUDITOR])
def case_page(case_id: str, context: Page, session: SessionDep) -> Response:
    if find_case(session, case_id=case_id, scope=DISTRICT) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=context.tr.gettext("No such case."))
    detail = get_case_detail(session, case_id=case_id)
    return render(
        context.request, "audit/case.html", tr=context.tr, page=context,
        detail=detail, case=detail.case,
        deadlines=deadline_views(detail.case.deadlines or {}),
        evidence=evidence_views(detail),
        advice=advice_view(detail.case.disposition, context.tr),
        decisions=decision_views(detail.handoff),
        flags=sorted((detail.case.flags or {}).items()),
        histories=_case_histories(session, case_id),
        verdict_labels=VERDICT_LABELS,
    )


# The case's exported workflow histories


def _case_histories(session: Session, case_id: str) -> list[WorkflowHistoryExport]:
    statement = (
        select(WorkflowHistoryExport)
        .where(col(WorkflowHistoryExport.case_id) == case_id)
        .order_by(col(WorkflowHistoryExport.closed_at), col(WorkflowHistoryExport.workflow_id))
    )
    return list(session.exec(statement).all())


def _case_history(context: PageContext, session: Session, case_id: str, workflow_id: str) -> WorkflowHistoryExport:
    """The export of one of this case's workflows; 404 for anything else."""
    record = session.get(WorkflowHistoryExport, workflow_id)
    if record is None or record.case_id != case_id or find_case(session, case_id=case_id, scope=DISTRICT) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=context.tr.gettext("No such exported history."))
    return record


def _archive(context: PageContext) -> HistoryArchive:
    from infra.transparency_key import SignerKeyMissing

    app_state = context.request.app.state
    try:
        return HistoryArchive.from_settings(context.settings, app_state.engine, minio=app_state.minio)
    except SignerKeyMissing:
        raise _history_store_unavailable(context) from None


def _history_store_unavailable(context: PageContext) -> HTTPException:
    return HTTPException(
        status.HTTP_503_SERVICE_UNAVAILABLE,
        detail=context.tr.gettext("The history archive is unavailable; try again shortly."),
        headers={"Retry-After": "10"},
    )


def _audit_history(context: PageContext, record: WorkflowHistoryExport, what: str, **detail: object) -> None:
    action = AuditAction.history_verified if what == "verified" else AuditAction.history_downloaded
    audit_request(context.request, context=context.audit_context(), action=action,
                  target=f"workflow_history:{record.workflow_id}", reason=f"audit of case {record.case_id}",
                  detail={"history": what, "run_id": record.run_id, "case_id": record.case_id, **detail})


@router.post("/audit/cases/{case_id}/histories/{workflow_id}/verify", dependencies=[AUDITOR])
async def verify_history(case_id: str, workflow_id: str, context: CsrfChecked, session: SessionDep) -> Response:
    """Check the stored copy's chain and signature and replay it against the running code; the row keeps it."""
    record = await run_in_threadpool(_case_history, context, session, case_id, workflow_id)
    archive = await run_in_threadpool(_archive, context)
    try:
        verdict = await archive.verify_and_replay(record.workflow_id)
    except (HistoryExportError, S3Error, urllib3.exceptions.HTTPError, OSError):
        raise _history_store_unavailable(context) from None
    await run_in_threadpool(_audit_history, context, record, "verified", verdict=verdict.verdict.value)
    return RedirectResponse(f"/audit/cases/{quote(case_id)}#workflow-history", status_code=status.HTTP_303_SEE_OTHER)


@router.get("/audit/cases/{case_id}/histories/{workflow_id}/{part}", dependencies=[AUDITOR])
def download_history(case_id: str, workflow_id: str, part: str, context: Page, session: SessionDep) -> Response:
    """The stored history JSON (``history.json``) or its signed manifest (``manifest.txt``), as exported."""
    if part not in HISTORY_PARTS:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=context.tr.gettext("No such exported history."))
    record = _case_history(context, session, case_id, workflow_id)
    try:
        stored = _archive(context).load(record.workflow_id)
    except (HistoryExportError, S3Error, urllib3.exceptions.HTTPError, OSError):
        raise _history_store_unavailable(context) from None
    _audit_history(context, record, f"downloaded {part}")
    body, media_type = (
        (stored.history, "application/json") if part == "history.json"
        else (stored.manifest_note.encode("utf-8"), "text/plain; charset=utf-8")
    )
    filename = f"{record.workflow_id}.{record.run_id}.{'json' if part == 'history.json' else 'manifest.txt'}"
    return Response(body, media_type=media_type,
                    headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}"})


# The audit log


@dataclass(frozen=True)
class LogFilters:
    action: str
    username: str
    outcome: str
    date_from: str
    date_to: str

    def query(self) -> dict[str, str]:
        return {key: value for key, value in vars(self).items() if value}


def _beijing_day_start(text: str, tr: Translator) -> datetime | None:
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise _unprocessable(tr, N_("Dates are written as YYYY-MM-DD.")) from None
    return datetime.combine(day, time(), tzinfo=BEIJING)


@router.get("/audit/log", dependencies=[AUDITOR])
def audit_log(
    context: Page,
    session: SessionDep,
    action: Annotated[str, Query(max_length=48)] = "",
    username: Annotated[str, Query(max_length=64)] = "",
    outcome: Annotated[str, Query(max_length=16)] = "",
    date_from: Annotated[str, Query(max_length=10)] = "",
    date_to: Annotated[str, Query(max_length=10)] = "",
    before_id: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    tr = context.tr
    if action and action not in ACTION_LABELS:
        raise _unprocessable(tr, N_("Unknown action filter."))
    if outcome and outcome not in OUTCOME_LABELS:
        raise _unprocessable(tr, N_("Unknown outcome filter."))
    since = _beijing_day_start(date_from, tr)
    last_day = _beijing_day_start(date_to, tr)
    # "to" is inclusive: the whole last day, Beijing time.
    until = None if last_day is None else last_day + timedelta(days=1)
    shown = LogFilters(action=action, username=username.strip().lower(), outcome=outcome, date_from=date_from,
                       date_to=date_to)
    rows = list_audit(
        session,
        filters=AuditFilters(actions=(action,) if action else (), username=shown.username or None,
                             outcome=outcome or None, since=since, until=until),
        limit=LOG_PAGE_SIZE + 1,
        before_id=before_id,
    )
    events = list(rows[:LOG_PAGE_SIZE])
    next_link = None
    if len(rows) > LOG_PAGE_SIZE and events[-1].id is not None:
        next_link = "/audit/log?" + urlencode({**shown.query(), "before_id": events[-1].id})
    return render(
        context.request, "audit/log.html", tr=tr, page=context,
        events=events, filters=shown, action_labels=ACTION_LABELS, outcome_labels=OUTCOME_LABELS,
        next_link=next_link, first_link=("/audit/log?" + urlencode(shown.query())) if before_id else None,
    )
