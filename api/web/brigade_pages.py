"""The enforcement brigade's inbox of transferred cases (办法 第七条) in the browser: list, read, accept, decide.

The command center reads the same pages without the forms. Changes are updates of the
EnforcementHandoffWorkflow, as in the JSON API (``api/routes/handoffs.py``), whose body models check the forms
here too; the workflow's validators check the hand-off's state and write the feedback into the originating
case's timeline, where the street office reads it.

The case views below (evidence, deadlines, disposition advice, decisions) are shared with the auditor's pages.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Query, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlmodel import Session

from api.deps import SessionDep, case_scope_for
from api.routes.handoffs import MAX_NOTE_LENGTH, YUAN_PATTERN, AcceptBody, DecisionBody
from api.updates import send_update
from api.web.context import CsrfChecked, Page, PageContext, page_roles
from api.web.i18n import N_, Translator
from api.web.templating import render
from domain.audit.models import AuditAction, AuditOutcome
from domain.audit.service import record_audit
from domain.cases.handoffs import HandoffCursor, HandoffListItem, find_handoff, get_handoff_item, list_handoffs
from domain.cases.models import EnforcementHandoff
from domain.cases.service import CaseDetail, CaseScope, get_case_detail
from domain.disposition import FACT_LABELS
from domain.errors import NotFound, ValidationFailed
from domain.users.models import Role
from workflows.enforcement_handoff import (
    UPDATE_ACCEPT,
    UPDATE_RECORD_DECISION,
    AcceptInput,
    DecisionInput,
    DecisionKind,
    HandoffState,
    HandoffStatus,
)

router = APIRouter(include_in_schema=False)

READ_ROLES = (Role.brigade_officer, Role.command_center)
ACT_ROLES = (Role.brigade_officer,)
PAGE_SIZE = 50
DOCUMENT_NO_MAX = 64
# Generous bounds on raw form fields: the real limits are checked below, with a message on the page.
FORM_FIELD_MAX = 20_000

DONE_MESSAGES = {
    "accepted": N_("The transferred case is accepted."),
    "decided": N_("The decision is recorded."),
}

# Which decisions the hand-off takes in each state (the workflow's validators have the last word).
KINDS_BY_STATUS: dict[str, tuple[DecisionKind, ...]] = {
    HandoffStatus.accepted.value: (DecisionKind.case_opened, DecisionKind.not_opened),
    HandoffStatus.case_opened.value: (DecisionKind.penalty_decision,),
}

FIELD_LABELS = {
    "kind": N_("Enforcement decision"),
    "note": N_("Decision note"),
    "amount_yuan": N_("Fine in yuan"),
    "document_no": N_("Decision document number (处罚决定书文号)"),
}


# Views of a case, shared with the auditor's pages


@dataclass(frozen=True)
class EvidenceView:
    """What ``m.evidence`` needs, plus where the item came from."""

    evidence_id: uuid.UUID
    content_type: str
    sha256: str
    sm3: str
    size: int
    kind: str  # "snapshot" | "clip"
    alert_type: str
    captured_at: datetime | None
    collection_method: str


@dataclass(frozen=True)
class DeadlineView:
    name: str
    due_at: datetime | None
    rule: str
    amount: int | None
    calendar_versions: list[str]
    provisional: bool
    provenance: str
    met: bool | None


@dataclass(frozen=True)
class DecisionView:
    kind: str
    by: str
    at: datetime | None
    note: str
    amount_fen: int | None
    document_no: str | None


@dataclass(frozen=True)
class AdviceView:
    """The disposition advice (办法 第十九条) as the officer reads it: a recommendation, never a decision."""

    recommendation: str
    label: str
    rule: str
    table_row: int | None
    legal_basis: str
    articles: list[str]
    conditions: list[str]
    facts: list[tuple[str, str]]
    missing_facts: list[str]
    sanction: str
    fine_range: str | None
    explanation: str
    warnings: list[str] = field(default_factory=list)


ADVICE_WARNINGS = {
    "three_penalties_flag": N_("Already penalised twice or more within 12 months (第一百三十四条)."),
    "licence_floor_warning": N_("Operating without a valid licence: fines start at 50,000 yuan (第一百二十二条)."),
    "interview_suggested": N_("A responsibility interview is suggested (第一百一十四条)."),
    "summary_procedure_possible": N_("A warning may be decided on the spot (summary procedure)."),
}
EXTRA_FACT_LABELS = {
    "repeat_after_rectification": N_("The same problem again after an earlier rectification"),
    "deadline_missed": N_("Rectification deadline missed"),
}
HARM_LABELS = {"none": N_("No harm"), "minor": N_("Minor harm"), "actual": N_("Harm caused")}


def parse_time(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def evidence_views(detail: CaseDetail) -> list[EvidenceView]:
    views = []
    for item in detail.alerts:
        pieces = [("snapshot", item.snapshot)] + ([("clip", item.clip)] if item.clip is not None else [])
        for kind, evidence in pieces:
            views.append(
                EvidenceView(
                    evidence_id=evidence.id, content_type=evidence.content_type, sha256=evidence.sha256,
                    sm3=evidence.sm3, size=evidence.size, kind=kind, alert_type=item.alert.alert_type,
                    captured_at=item.alert.captured_at, collection_method=evidence.collection_method,
                )
            )
    return views


def deadline_views(deadlines: Mapping[str, Any]) -> list[DeadlineView]:
    views = []
    for name, raw in deadlines.items():
        data = raw if isinstance(raw, Mapping) else {}
        amount = data.get("amount")
        views.append(
            DeadlineView(
                name=name,
                due_at=parse_time(data.get("due_at")),
                rule=str(data.get("rule") or ""),
                amount=amount if isinstance(amount, int) else None,
                calendar_versions=[str(v) for v in data.get("calendar_versions") or []],
                provisional=bool(data.get("provisional")),
                provenance=str(data.get("provenance") or ""),
                met=data.get("met") if isinstance(data.get("met"), bool) else None,
            )
        )
    return sorted(views, key=lambda view: (view.due_at is None, view.due_at.timestamp() if view.due_at else 0.0))


def decision_views(handoff: EnforcementHandoff | None) -> list[DecisionView]:
    if handoff is None or not handoff.decision:
        return []
    history = handoff.decision.get("history") or [handoff.decision]
    views = []
    for entry in history:
        if not isinstance(entry, Mapping):
            continue
        amount = entry.get("amount_fen")
        views.append(
            DecisionView(
                kind=str(entry.get("kind") or ""),
                by=str(entry.get("by") or ""),
                at=parse_time(entry.get("at")),
                note=str(entry.get("note") or ""),
                amount_fen=amount if isinstance(amount, int) else None,
                document_no=entry.get("document_no") or None,
            )
        )
    return views


def advice_view(disposition: Mapping[str, Any] | None, tr: Translator) -> AdviceView | None:
    if not disposition:
        return None
    facts_raw = disposition.get("facts") if isinstance(disposition.get("facts"), Mapping) else {}
    assert isinstance(facts_raw, Mapping)
    facts: list[tuple[str, str]] = []
    for name, text in FACT_LABELS.items():
        value = facts_raw.get(name)
        if value is not None:
            facts.append((text, _fact_value(name, value, tr)))
    for name, text in EXTRA_FACT_LABELS.items():
        if facts_raw.get(name) is True:
            facts.append((tr.gettext(text), tr.gettext("Yes")))
    table_row = disposition.get("table_row")
    return AdviceView(
        recommendation=str(disposition.get("recommendation_label") or disposition.get("recommendation") or "—"),
        label=str(disposition.get("label") or ""),
        rule=str(disposition.get("rule") or ""),
        table_row=table_row if isinstance(table_row, int) else None,
        legal_basis=str(facts_raw.get("legal_basis") or ""),
        articles=[str(a) for a in disposition.get("articles") or []],
        conditions=[str(c) for c in disposition.get("conditions") or []],
        facts=facts,
        missing_facts=[FACT_LABELS.get(str(name), str(name)) for name in disposition.get("missing_facts") or []],
        sanction=str(disposition.get("sanction") or ""),
        fine_range=disposition.get("fine_range") or None,
        explanation=str(disposition.get("explanation") or ""),
        warnings=[tr.gettext(text) for flag, text in ADVICE_WARNINGS.items() if disposition.get(flag) is True],
    )


def _fact_value(name: str, value: object, tr: Translator) -> str:
    if isinstance(value, bool):
        return tr.gettext("Yes") if value else tr.gettext("No")
    if name == "harm":
        return tr.gettext(HARM_LABELS.get(str(value), str(value)))
    return str(value)


# The hand-off page's data


@dataclass(frozen=True)
class HandoffView:
    item: HandoffListItem
    case: CaseDetail | None
    evidence: list[EvidenceView]
    advice: AdviceView | None
    decisions: list[DecisionView]
    kinds: tuple[DecisionKind, ...]

    @property
    def handoff(self) -> EnforcementHandoff:
        return self.item.handoff


def handoff_view(session: Session, handoff: EnforcementHandoff, tr: Translator) -> HandoffView:
    item = get_handoff_item(session, handoff_id=handoff.handoff_id)
    assert item is not None  # the caller found the row; the projection only ever upserts
    try:
        case = get_case_detail(session, case_id=handoff.case_id)
    except NotFound:  # the hand-off outlives its case
        case = None
    return HandoffView(
        item=item,
        case=case,
        evidence=[] if case is None else evidence_views(case),
        advice=None if case is None else advice_view(case.case.disposition, tr),
        decisions=decision_views(item.handoff),
        kinds=KINDS_BY_STATUS.get(item.handoff.status, ()),
    )


def reader_scope(context: PageContext) -> CaseScope:
    scope = case_scope_for(context.user)
    assert scope is not None  # page_roles let only the brigade and the command center in
    return scope


def visible_handoff(handoff_id: str, context: Page, session: SessionDep) -> EnforcementHandoff:
    """The hand-off in the path if the reader may see it; 404 otherwise (unknown and out of scope alike)."""
    handoff = find_handoff(session, handoff_id=handoff_id, scope=reader_scope(context))
    if handoff is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=context.tr.gettext("No such transferred case."))
    return handoff


VisibleHandoff = Annotated[EnforcementHandoff, Depends(visible_handoff)]


# Reading


@router.get("/brigade", dependencies=[page_roles(*READ_ROLES)])
def inbox(
    context: Page,
    session: SessionDep,
    handoff_status: Annotated[str, Query(alias="status", max_length=40)] = "",
    overdue: Annotated[str, Query(max_length=5)] = "",
    cursor: Annotated[str, Query(max_length=1000)] = "",
) -> Response:
    tr = context.tr
    statuses = {s.value for s in HandoffStatus}
    if handoff_status and handoff_status not in statuses:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=tr.gettext("Unknown status filter."))
    try:
        after = HandoffCursor.decode(cursor) if cursor else None
    except ValidationFailed:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=tr.gettext("This page link is no longer valid. Start again from the first page."),
        ) from None
    page = list_handoffs(
        session,
        scope=reader_scope(context),
        statuses=(handoff_status,) if handoff_status else (),
        overdue=True if overdue == "1" else None,
        limit=PAGE_SIZE,
        after=after,
    )
    filters = {"status": handoff_status, "overdue": "1" if overdue == "1" else ""}
    kept = {key: value for key, value in filters.items() if value}
    next_link = None
    if page.next_cursor:
        next_link = "/brigade?" + urlencode({**kept, "cursor": page.next_cursor})
    return render(
        context.request, "brigade/inbox.html", tr=tr, page=context,
        items=page.items, filters=filters, statuses=[s.value for s in HandoffStatus],
        next_link=next_link, first_link=("/brigade?" + urlencode(kept)) if cursor else None,
    )


@router.get("/brigade/handoffs/{handoff_id}", dependencies=[page_roles(*READ_ROLES)])
def handoff_page(
    handoff: VisibleHandoff,
    context: Page,
    session: SessionDep,
    done: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    view = handoff_view(session, handoff, context.tr)
    flash = context.tr.gettext(DONE_MESSAGES[done]) if done in DONE_MESSAGES else None
    return _detail(context, view, flash=flash)


# Acting (the brigade only)


@router.post("/brigade/handoffs/{handoff_id}/accept", dependencies=[page_roles(*ACT_ROLES)])
async def accept(
    context: CsrfChecked,
    handoff: VisibleHandoff,
    session: SessionDep,
    note: Annotated[str, Form(max_length=FORM_FIELD_MAX)] = "",
) -> Response:
    form = {"note": note}
    try:
        body = AcceptBody.model_validate({"note": note})
    except ValidationError:
        problems = [_too_long(context.tr, "note")]
        return await _failed(context, session, handoff, 422, context.tr.gettext("Some fields need attention"),
                             problems, accept_form=form)
    payload = AcceptInput(actor=context.actor, note=body.note)
    return await _act(context, session, handoff, UPDATE_ACCEPT, payload, done="accepted",
                      detail={"note": body.note}, accept_form=form)


@router.post("/brigade/handoffs/{handoff_id}/decision", dependencies=[page_roles(*ACT_ROLES)])
async def record_decision(
    context: CsrfChecked,
    handoff: VisibleHandoff,
    session: SessionDep,
    kind: Annotated[str, Form(max_length=FORM_FIELD_MAX)] = "",
    note: Annotated[str, Form(max_length=FORM_FIELD_MAX)] = "",
    amount_yuan: Annotated[str, Form(max_length=FORM_FIELD_MAX)] = "",
    document_no: Annotated[str, Form(max_length=FORM_FIELD_MAX)] = "",
) -> Response:
    form = {"kind": kind, "note": note, "amount_yuan": amount_yuan, "document_no": document_no}
    parsed = parse_decision(context.tr, form)
    if not isinstance(parsed, DecisionBody):
        return await _failed(context, session, handoff, 422, context.tr.gettext("Some fields need attention"),
                             parsed, decision_form=form)
    payload = DecisionInput(
        actor=context.actor, kind=parsed.kind, note=parsed.note, amount_fen=parsed.amount_fen(),
        document_no=parsed.document_no,
    )
    detail = {"kind": parsed.kind.value, "amount_fen": payload.amount_fen, "document_no": parsed.document_no}
    return await _act(context, session, handoff, UPDATE_RECORD_DECISION, payload, done="decided", detail=detail,
                      decision_form=form)


def parse_decision(tr: Translator, form: Mapping[str, str]) -> DecisionBody | list[str]:
    """The decision form as the JSON API's body, or the problems, each naming its field.

    Mirrors ``DecisionBody`` (which has the last word) with messages a person can act on: empty inputs count
    as absent, since a browser sends every field of the form.
    """
    problems: list[str] = []
    kind_text = form.get("kind", "").strip()
    note = form.get("note", "")
    amount = form.get("amount_yuan", "").strip() or None
    document_no = form.get("document_no", "").strip() or None
    try:
        kind: DecisionKind | None = DecisionKind(kind_text)
    except ValueError:
        kind = None
        problems.append(_problem(tr, "kind", N_("choose one of the decisions offered.")))
    if len(note) > MAX_NOTE_LENGTH:
        problems.append(_too_long(tr, "note"))
    if kind is DecisionKind.penalty_decision:
        if amount is None:
            problems.append(_problem(tr, "amount_yuan", N_("required for a penalty decision (0 for a warning only).")))
        elif not re.fullmatch(YUAN_PATTERN, amount):
            problems.append(_problem(tr, "amount_yuan", N_("a number of yuan ≥ 0 with at most two decimals, "
                                                           "such as 1500 or 1500.50.")))
        if document_no is None:
            problems.append(_problem(tr, "document_no", N_("required for a penalty decision.")))
        elif len(document_no) > DOCUMENT_NO_MAX:
            problems.append(_too_long(tr, "document_no"))
    elif kind is not None:
        for name, value in (("amount_yuan", amount), ("document_no", document_no)):
            if value is not None:
                problems.append(_problem(tr, name, N_("belongs to a penalty decision only; leave it empty.")))
    if kind is DecisionKind.not_opened and not note.strip():
        problems.append(_problem(tr, "note", N_("required when no case is opened: give the reason.")))
    if problems:
        return problems
    try:
        return DecisionBody.model_validate(
            {"kind": kind_text, "note": note, "amount_yuan": amount, "document_no": document_no}
        )
    except ValidationError as error:  # a rule of the API model this form does not know yet
        return [f"{'.'.join(str(part) for part in problem['loc']) or 'decision'}: {problem['msg']}"
                for problem in error.errors()]


def _problem(tr: Translator, name: str, message: str) -> str:
    return tr.gettext("%(field)s: %(problem)s") % {"field": tr.gettext(FIELD_LABELS[name]),
                                                     "problem": tr.gettext(message)}


def _too_long(tr: Translator, name: str) -> str:
    limit = DOCUMENT_NO_MAX if name == "document_no" else MAX_NOTE_LENGTH
    return _problem(tr, name, tr.gettext("at most %(n)d characters.") % {"n": limit})


async def _act(
    context: PageContext,
    session: Session,
    handoff: EnforcementHandoff,
    update: str,
    payload: object,
    *,
    done: str,
    detail: dict[str, Any],
    accept_form: dict[str, str] | None = None,
    decision_form: dict[str, str] | None = None,
) -> Response:
    tr = context.tr
    try:
        await send_update(context.request, handoff.handoff_id, update, payload, result_type=HandoffState,
                          subject=f"hand-off {handoff.handoff_id}")
    except HTTPException as error:
        message = str(error.detail)
        if error.status_code == status.HTTP_409_CONFLICT:
            await run_in_threadpool(_audit, context, session, handoff, update, AuditOutcome.failure, detail, message)
            headline = tr.gettext("The action was refused.")
        elif error.status_code == status.HTTP_503_SERVICE_UNAVAILABLE:
            headline = tr.gettext("The case engine is unavailable right now; try again shortly.")
        else:
            headline = tr.gettext("The action could not be completed.")
        return await _failed(context, session, handoff, error.status_code, headline, [message],
                             headers=getattr(error, "headers", None), accept_form=accept_form,
                             decision_form=decision_form)
    await run_in_threadpool(_audit, context, session, handoff, update, AuditOutcome.success, detail, "")
    return RedirectResponse(f"/brigade/handoffs/{handoff.handoff_id}?done={done}", status_code=303)


def _audit(
    context: PageContext, session: Session, handoff: EnforcementHandoff, update: str, outcome: AuditOutcome,
    detail: dict[str, Any], reason: str,
) -> None:
    record_audit(session, context=context.audit_context(), action=AuditAction.handoff_action, outcome=outcome,
                 target=f"handoff:{handoff.handoff_id}", reason=reason, detail={"update": update, **detail})
    session.commit()


async def _failed(
    context: PageContext,
    session: Session,
    handoff: EnforcementHandoff,
    status_code: int,
    error: str,
    problems: list[str],
    *,
    headers: Mapping[str, str] | None = None,
    accept_form: dict[str, str] | None = None,
    decision_form: dict[str, str] | None = None,
) -> Response:
    view = await run_in_threadpool(handoff_view, session, handoff, context.tr)
    return _detail(context, view, status_code=status_code, error=error, problems=problems,
                   headers=dict(headers) if headers else None, accept_form=accept_form, decision_form=decision_form)


def _detail(
    context: PageContext,
    view: HandoffView,
    *,
    status_code: int = 200,
    flash: str | None = None,
    error: str | None = None,
    problems: list[str] | None = None,
    headers: dict[str, str] | None = None,
    accept_form: dict[str, str] | None = None,
    decision_form: dict[str, str] | None = None,
) -> Response:
    return render(
        context.request, "brigade/handoff.html", tr=context.tr, page=context, status_code=status_code,
        headers=headers, view=view, handoff=view.handoff, flash=flash, error=error, problems=problems or [],
        can_act=context.role in ACT_ROLES, accept_form=accept_form or {}, decision_form=decision_form or {},
        field_labels=FIELD_LABELS,
    )
