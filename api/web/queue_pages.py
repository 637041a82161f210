"""The street office's case queue: its own street, soonest deadline first, with quick and saved filters and
bulk actions (催办, 移交) that answer case by case. The command center sees the district and may act for a street."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Query
from fastapi.responses import RedirectResponse, Response
from sqlmodel import col, select

from api.deps import SessionDep, case_scope_for
from api.updates import send_update
from api.web.context import CsrfChecked, Page, PageContext, page_roles
from api.web.i18n import N_
from api.web.labels import ALERT_TYPE
from api.web.templating import BEIJING, render
from domain.audit.models import AuditAction
from domain.audit.service import record_audit
from domain.cases.service import MAX_PAGE_SIZE, CaseCursor, CaseFilters, find_case, list_cases
from domain.errors import ValidationFailed
from domain.merchants.models import Merchant
from domain.users.models import Role
from domain.users.saved_filters import delete_filter, list_saved_filters, save_filter
from workflows.alert_case import UPDATE_REMIND, UPDATE_TRANSFER, CaseState, RemindInput, TransferInput

router = APIRouter(include_in_schema=False)

QUEUE_ROLES = (Role.street_officer, Role.command_center)
OPEN_STATUSES = ("awaiting_verification", "awaiting_dispute_review", "rectifying", "awaiting_review")
PAGE_SIZE = 50
MAX_BULK = 100

# Quick filters every officer has (the 待核实, 已超期, 今日到期); their own saved ones come after.
QUICK_FILTERS: list[tuple[str, str]] = [
    (N_("Open"), ""),
    (N_("Awaiting verification"), "status=awaiting_verification"),
    (N_("Overdue"), "overdue=1"),
    (N_("Due today"), "due=today"),
    (N_("Awaiting review"), "status=awaiting_review"),
    (N_("Closed"), "status=closed"),
]


@dataclass(frozen=True)
class QueueQuery:
    status: str | None
    alert_type: str | None
    merchant: str | None
    overdue: bool
    due: str | None
    text: str | None

    def as_query_string(self) -> str:
        values = {
            "status": self.status, "alert_type": self.alert_type, "merchant": self.merchant,
            "overdue": "1" if self.overdue else None, "due": self.due, "text": self.text,
        }
        return urlencode({key: value for key, value in values.items() if value})

    def filters(self, now: datetime) -> CaseFilters:
        statuses = (self.status,) if self.status else OPEN_STATUSES
        due_before = None
        if self.due == "today":
            tomorrow = now.astimezone(BEIJING).date() + timedelta(days=1)
            due_before = datetime.combine(tomorrow, time(), tzinfo=BEIJING).astimezone(UTC)
        return CaseFilters(
            statuses=statuses,
            alert_types=(self.alert_type,) if self.alert_type else (),
            merchant_credit_code=self.merchant,
            overdue=True if self.overdue else None,
            due_before=due_before,
            text=self.text,
        )


def queue_query(
    status: Annotated[str | None, Query(max_length=40)] = None,
    alert_type: Annotated[str | None, Query(max_length=40)] = None,
    merchant: Annotated[str | None, Query(max_length=32)] = None,
    overdue: Annotated[str | None, Query(max_length=5)] = None,
    due: Annotated[str | None, Query(max_length=10)] = None,
    text: Annotated[str | None, Query(max_length=100)] = None,
) -> QueueQuery:
    if status and status not in (*OPEN_STATUSES, "closed"):
        raise HTTPException(422, detail=f"unknown status {status!r}")
    if alert_type and alert_type not in ALERT_TYPE:
        raise HTTPException(422, detail=f"unknown alert type {alert_type!r}")
    if due and due != "today":
        raise HTTPException(422, detail="due may only be 'today'")
    return QueueQuery(status or None, alert_type or None, merchant or None, overdue in ("1", "true"), due or None,
                      (text or "").strip() or None)




@router.get("/queue", dependencies=[page_roles(*QUEUE_ROLES)])
def queue(
    context: Page,
    session: SessionDep,
    query: Annotated[QueueQuery, Depends(queue_query)],
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
    done: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    return _queue_page(context, session, query, cursor=cursor, done=done)


def _queue_page(
    context: PageContext, session: SessionDep, query: QueueQuery, *, cursor: str | None = None,
    done: str | None = None, error: str | None = None, status_code: int = 200,
    bulk_results: list[tuple[str, bool, str]] | None = None,
) -> Response:
    scope = case_scope_for(context.user)
    assert scope is not None  # officers and the command center have a case scope
    now = datetime.now(UTC)
    try:
        after = CaseCursor.decode(cursor) if cursor else None
        result = list_cases(session, scope=scope, filters=query.filters(now), limit=PAGE_SIZE, after=after)
    except ValidationFailed as failure:
        raise HTTPException(422, detail=failure.message) from None
    merchants = session.exec(
        select(Merchant.credit_code, Merchant.name).where(scope.merchant_condition()).order_by(col(Merchant.name))
    ).all()
    assert context.user.id is not None
    flash = {
        "saved": context.tr.gettext("The filter was saved."),
        "deleted": context.tr.gettext("The filter was deleted."),
    }.get(done or "")
    return render(
        context.request, "queue.html", tr=context.tr, page=context, status_code=status_code,
        items=result.items, next_cursor=result.next_cursor, query=query, query_string=query.as_query_string(),
        quick_filters=QUICK_FILTERS, saved_filters=list_saved_filters(session, user_id=context.user.id),
        merchants=merchants, alert_types=ALERT_TYPE, statuses=(*OPEN_STATUSES, "closed"), flash=flash,
        error=error, bulk_results=bulk_results or [], max_page=MAX_PAGE_SIZE,
    )


@router.post("/queue/filters", dependencies=[page_roles(*QUEUE_ROLES)])
def save_queue_filter(
    context: CsrfChecked,
    session: SessionDep,
    name: Annotated[str, Form(max_length=200)] = "",
    query: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    assert context.user.id is not None
    try:
        save_filter(session, user_id=context.user.id, name=name, query=query)
    except ValidationFailed as failure:
        raise HTTPException(422, detail=failure.message) from None
    session.commit()
    return RedirectResponse(f"/queue?{query}&done=saved" if query else "/queue?done=saved", status_code=303)


@router.post("/queue/filters/{filter_id}/delete", dependencies=[page_roles(*QUEUE_ROLES)])
def delete_queue_filter(filter_id: int, context: CsrfChecked, session: SessionDep) -> Response:
    assert context.user.id is not None
    if not delete_filter(session, user_id=context.user.id, filter_id=filter_id):
        raise HTTPException(404, detail=context.tr.gettext("No such saved filter."))
    session.commit()
    return RedirectResponse("/queue?done=deleted", status_code=303)


@router.post("/queue/bulk", dependencies=[page_roles(*QUEUE_ROLES)])
async def bulk_action(
    context: CsrfChecked,
    session: SessionDep,
    action: Annotated[str, Form(max_length=20)] = "",
    case_ids: Annotated[list[str] | None, Form(max_length=128)] = None,
    reason: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    """催办 or 移交 for many cases: each case answers for itself; one refusal does not stop the rest."""
    tr = context.tr
    chosen = list(dict.fromkeys(case_ids or []))
    problems = []
    if action not in ("remind", "transfer"):
        problems.append(tr.gettext("Choose an action."))
    if not chosen:
        problems.append(tr.gettext("Select at least one case."))
    if len(chosen) > MAX_BULK:
        problems.append(tr.gettext("At most %(n)d cases at a time.") % {"n": MAX_BULK})
    if action == "transfer" and not reason.strip():
        problems.append(tr.gettext("A transfer needs a reason."))
    if problems:
        raise HTTPException(422, detail=" ".join(problems))
    scope = case_scope_for(context.user)
    assert scope is not None
    results: list[tuple[str, bool, str]] = []
    for case_id in chosen:
        if find_case(session, case_id=case_id, scope=scope) is None:
            results.append((case_id, False, tr.gettext("Not a case of yours.")))
            continue
        payload: object
        if action == "remind":
            update, payload = UPDATE_REMIND, RemindInput(actor=context.actor, note=reason.strip())
        else:
            update, payload = UPDATE_TRANSFER, TransferInput(actor=context.actor, reason=reason.strip())
        try:
            await send_update(context.request, case_id, update, payload, result_type=CaseState)
        except HTTPException as refusal:
            results.append((case_id, False, str(refusal.detail)))
            continue
        results.append((case_id, True, tr.gettext("Done.")))
    record_audit(session, context=context.audit_context(), action=AuditAction.case_action,
                 target=f"bulk:{action}", reason=reason.strip()[:500],
                 detail={"results": [{"case_id": c, "ok": ok} for c, ok, _ in results]})
    session.commit()
    return render(context.request, "queue_bulk.html", tr=tr, page=context, action=action, results=results)
