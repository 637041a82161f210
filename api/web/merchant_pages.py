"""The merchant's pages, made for a phone first: the inbox of open alerts with the time left, one case with its
evidence and the answer it asks for (核实; 整改 with a photo taken there and then), the shop's closed cases, its
profile and certificates, and the 办法 第十六条 notice that alerts serve enforcement.

Every page is scoped to the signed-in merchant's own shop (``case_scope_for``); another shop's case is a 404, as
in the JSON API. Answers go to the case workflow as updates. A photo is stored as evidence first, exactly as
``POST /api/v1/evidence`` stores it; when the update is then refused no case changes (the stored photo is
content-addressed, so sending it again stores nothing new).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any
from urllib.parse import quote

import urllib3.exceptions
from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request, status
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session, col, select
from starlette.datastructures import FormData, UploadFile

from api.deps import SessionDep, case_scope_for
from api.routes.cases import MAX_NOTE_LENGTH, UPLOAD_FRAMING_BYTES
from api.updates import send_update
from api.uploads import store_upload
from api.web.auth_pages import safe_next
from api.web.context import CsrfChecked, PageContext, page_roles
from api.web.i18n import N_
from api.web.labels import DISPUTE_REASONS
from api.web.templating import BEIJING, render
from domain.alerts.taxonomy import alert_type_info
from domain.audit.models import AuditAction
from domain.audit.service import record_audit
from domain.calendar.service import working_calendar
from domain.cases.models import AlertCase, EnforcementHandoff
from domain.cases.service import CaseCursor, CaseFilters, CaseScope, find_case, get_case_detail, list_cases
from domain.certificates.expiry import REMINDER_DAYS
from domain.errors import ValidationFailed
from domain.evidence.content import ContentTypeMismatch, EvidenceTooLarge, UnsupportedContent
from domain.evidence.models import Evidence
from domain.merchants.models import Camera, Certificate, Merchant, StreetOffice
from domain.users.models import Role, User
from infra.evidence_store import EvidenceStore, EvidenceStoreError
from workflows.alert_case import (
    UPDATE_SUBMIT_RECTIFICATION,
    UPDATE_VERIFY,
    CaseState,
    SubmitRectificationInput,
    VerifyChoice,
    VerifyInput,
)

log = logging.getLogger("sunshine.web.merchant")

router = APIRouter(include_in_schema=False)

# One dependency object: declared on a route and inside PhotoForm, FastAPI runs the role check once.
MERCHANT_ONLY = page_roles(Role.merchant)
MerchantPage = Annotated[PageContext, MERCHANT_ONLY]

OPEN_STATUSES = ("awaiting_verification", "awaiting_dispute_review", "rectifying", "awaiting_review")
VERIFY_STATUSES = ("awaiting_verification",)
RECTIFY_STATUSES = ("rectifying",)
PAGE_SIZE = 50
HISTORY_PAGE_SIZE = 30
MAX_HISTORY_PAGE = 1000
MAX_RECTIFICATION_WORKING_DAYS = 3  # 办法 第十八条: a deferred rectification takes at most 3 working days
IMMEDIATE_RECTIFICATION_HOURS = 24  # 办法 第十八条: what can be put right at once, within 24 hours
PHOTO_FIELD = "photo"
MAX_FORM_FIELDS = 10
RETRY_AFTER_SECONDS = "10"

# What the case asks of the merchant now, by status.
ASKED: dict[str, str] = {
    "awaiting_verification": N_("Verify this alert: is it true? Answer before the deadline."),
    "rectifying": N_("Put the problem right and upload a photo of the result before the deadline."),
    "awaiting_review": N_("Nothing for now: the street office is reviewing your rectification."),
    "awaiting_dispute_review": N_("Nothing for now: the street office is reviewing your dispute."),
    "closed": N_("Nothing: this case is closed."),
}

# What the countdown of an open case counts down to, by status.
DUE_LABELS: dict[str, str] = {
    "awaiting_verification": N_("Verify within"),
    "rectifying": N_("Put right within"),
    "awaiting_review": N_("Street office reviews within"),
    "awaiting_dispute_review": N_("Street office reviews within"),
}

DONE: dict[str, str] = {
    "notice": N_("Thank you. The notice is acknowledged."),
    "verified": N_("Your answer was recorded."),
    "rectified": N_("Your rectification photo was sent for review."),
}

CERTIFICATE_KINDS: dict[str, str] = {
    "business_licence": N_("Business licence"),
    "food_business_licence": N_("Food business licence"),
    "vendor_registration": N_("Food vendor registration"),
    "health_certificate": N_("Health certificate"),
}

CAMERA_AREAS: dict[str, str] = {
    "rough_processing": N_("Rough processing"),
    "cooking": N_("Cooking"),
    "special_room": N_("Special room"),
    "washing": N_("Washing and disinfection"),
    "storage": N_("Storage"),
    "serving_prep": N_("Serving preparation"),
}


class ActionRefused(Exception):
    """An answer that cannot be taken: the case page is shown again with the reason, under this status."""

    def __init__(
        self, status_code: int, message: str, *, problems: list[str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.status_code = status_code
        self.message = message
        self.problems = problems or []
        self.headers = headers


@dataclass(frozen=True)
class EvidenceView:
    """What ``m.evidence`` shows of a stored photo or video."""

    evidence_id: str
    content_type: str
    sha256: str
    sm3: str
    size: int

    @classmethod
    def of(cls, evidence: Evidence) -> EvidenceView:
        return cls(str(evidence.id), evidence.content_type, evidence.sha256, evidence.sm3, evidence.size)

    @classmethod
    def of_payload(cls, payload: object) -> EvidenceView | None:
        if not isinstance(payload, dict):
            return None
        try:
            return cls(str(uuid.UUID(str(payload["evidence_id"]))), str(payload["content_type"]),
                       str(payload["sha256"]), str(payload["sm3"]), int(payload["size"]))
        except (KeyError, TypeError, ValueError):
            return None


@dataclass(frozen=True)
class DeadlineView:
    name: str
    due_at: datetime | None
    met: bool | None


@dataclass(frozen=True)
class ProposalBounds:
    """The dates a merchant may propose for a deferred rectification (the workflow caps the proposal too)."""

    earliest: date
    latest: date | None  # None: the working-day calendar could not say; the workflow's cap still applies
    immediate: bool  # a problem that can be put right at once: 24 hours, not 3 working days


@dataclass(frozen=True)
class CertificateView:
    certificate: Certificate
    kind_label: str
    days_left: int | None  # None: 长期, no expiry
    expired: bool
    expiring: bool


@dataclass(frozen=True)
class Answer:
    """A checked answer, before any photo is stored."""

    choice: VerifyChoice | None
    note: str
    photo: UploadFile | None
    proposed_deadline: datetime | None = None
    reason_code: str | None = None


# Dependencies


def scope_of(context: PageContext) -> CaseScope:
    scope = case_scope_for(context.user)
    assert scope is not None  # a merchant account always names its shop (app_user_merchant_scope)
    return scope


def own_case(session: Session, context: PageContext, case_id: str) -> AlertCase:
    """The case if it is the merchant's own; 404 otherwise, so that other shops' case ids cannot be probed."""
    case = find_case(session, case_id=case_id, scope=scope_of(context))
    if case is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=context.tr.gettext("Your shop has no such case."))
    return case


async def photo_form(request: Request, context: MerchantPage) -> AsyncIterator[FormData]:
    """The posted answer, which may carry a photo, refused unread when its announced size is over the evidence
    limit. Parsed here, after the role check and before the CSRF check reads it (the parse is cached on the
    request), so that nobody can make the server spool a body it would refuse anyway."""
    tr = context.tr
    store: EvidenceStore = request.app.state.evidence_store
    announced = request.headers.get("content-length")
    if announced is None or not announced.isdigit():
        raise HTTPException(status.HTTP_411_LENGTH_REQUIRED,
                            detail=tr.gettext("The upload did not say how large it is. Please try again."))
    if int(announced) > store.max_bytes + UPLOAD_FRAMING_BYTES:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            detail=tr.gettext("The photo is larger than %(mb)s MB. Take it again at a lower resolution.")
            % {"mb": megabytes(store.max_bytes)},
        )
    form = await request.form(max_files=1, max_fields=MAX_FORM_FIELDS)
    try:
        yield form
    finally:
        await form.close()  # the spooled photo, whatever became of the answer


PhotoForm = Annotated[FormData, Depends(photo_form)]


# Pages


@router.get("/m", dependencies=[MERCHANT_ONLY])
def inbox(
    context: MerchantPage,
    session: SessionDep,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
    done: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    """Open cases of the shop, soonest deadline first."""
    try:
        after = CaseCursor.decode(cursor) if cursor else None
        result = list_cases(session, scope=scope_of(context), filters=CaseFilters(statuses=OPEN_STATUSES),
                            limit=PAGE_SIZE, after=after)
    except ValidationFailed as failure:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=failure.message) from None
    return render(
        context.request, "merchant/inbox.html", tr=context.tr, page=context,
        items=[item.case for item in result.items], next_cursor=result.next_cursor,
        cameras=camera_names(session, context), due_labels=DUE_LABELS, flash=flash_for(context, done),
        acknowledged=context.user.enforcement_notice_acknowledged_at is not None,
    )


@router.get("/m/notice", dependencies=[MERCHANT_ONLY])
def notice(
    context: MerchantPage, next: Annotated[str | None, Query(max_length=1000)] = None
) -> Response:
    return render(context.request, "merchant/notice.html", tr=context.tr, page=context,
                  acknowledged_at=context.user.enforcement_notice_acknowledged_at, next_path=safe_next(next) or "")


@router.post("/m/notice", dependencies=[MERCHANT_ONLY])
def acknowledge_notice(
    context: CsrfChecked, session: SessionDep, next: Annotated[str, Form(max_length=1000)] = ""
) -> Response:
    """Acknowledged once: the first time is kept, a second post changes nothing."""
    record_acknowledgement(session, context.user)
    target = safe_next(next)
    if target is not None and target.startswith("/m/"):
        return RedirectResponse(target, status_code=303)
    return RedirectResponse("/m?done=notice", status_code=303)


@router.get("/m/cases/{case_id}", dependencies=[MERCHANT_ONLY])
def case_page(
    case_id: str,
    context: MerchantPage,
    session: SessionDep,
    done: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    case = own_case(session, context, case_id)
    return render_case(context, session, case, flash=flash_for(context, done))


@router.post("/m/cases/{case_id}/verify", dependencies=[MERCHANT_ONLY])
async def verify(case_id: str, form: PhotoForm, context: CsrfChecked, session: SessionDep) -> Response:
    """核实: true and put right now (photo), true and needs time (a proposed date), or not true (reason + text)."""
    case = own_case(session, context, case_id)
    try:
        check_may_answer(context, case, VERIFY_STATUSES)
        answer = verify_answer(context, session, case, form)
        assert answer.choice is not None
        photo = None if answer.photo is None else await store_photo(context, answer.photo)
        payload = VerifyInput(
            actor=context.actor, choice=answer.choice, note=answer.note, rectification_photo=photo,
            proposed_deadline=answer.proposed_deadline, reason_code=answer.reason_code,
        )
        await send(context, case, UPDATE_VERIFY, payload)
        audit_action(session, context, case, "verify",
                     {"choice": answer.choice.value, "photo": photo_id(photo), "reason_code": answer.reason_code})
    except ActionRefused as refusal:
        return render_case(context, session, case, refusal=refusal, values=form_values(form))
    return RedirectResponse(f"/m/cases/{quote(case.case_id, safe='')}?done=verified", status_code=303)


@router.post("/m/cases/{case_id}/rectify", dependencies=[MERCHANT_ONLY])
async def submit_rectification(case_id: str, form: PhotoForm, context: CsrfChecked, session: SessionDep) -> Response:
    """整改: the photo of the problem put right, within the rectification deadline."""
    case = own_case(session, context, case_id)
    try:
        check_may_answer(context, case, RECTIFY_STATUSES)
        answer = rectification_answer(context, form)
        assert answer.photo is not None
        photo = await store_photo(context, answer.photo)
        payload = SubmitRectificationInput(actor=context.actor, photo=photo, note=answer.note)
        await send(context, case, UPDATE_SUBMIT_RECTIFICATION, payload)
        audit_action(session, context, case, "submit_rectification", {"photo": photo_id(photo)})
    except ActionRefused as refusal:
        return render_case(context, session, case, refusal=refusal, values=form_values(form))
    return RedirectResponse(f"/m/cases/{quote(case.case_id, safe='')}?done=rectified", status_code=303)


@router.get("/m/history", dependencies=[MERCHANT_ONLY])
def history(
    context: MerchantPage,
    session: SessionDep,
    page: Annotated[int, Query(ge=1, le=MAX_HISTORY_PAGE)] = 1,
) -> Response:
    """Closed cases of the shop, the most recently closed first, with their outcome."""
    statement = (
        select(AlertCase)
        .where(scope_of(context).case_condition(), col(AlertCase.status) == "closed")
        .order_by(col(AlertCase.closed_at).desc().nulls_last(), col(AlertCase.case_id).desc())
        .offset((page - 1) * HISTORY_PAGE_SIZE)
        .limit(HISTORY_PAGE_SIZE + 1)
    )
    rows = list(session.exec(statement).all())
    cases = rows[:HISTORY_PAGE_SIZE]
    return render(
        context.request, "merchant/history.html", tr=context.tr, page=context, cases=cases,
        handoffs=handoffs_of(session, cases), cameras=camera_names(session, context), page_number=page,
        has_next=len(rows) > HISTORY_PAGE_SIZE,
    )


@router.get("/m/profile", dependencies=[MERCHANT_ONLY])
def profile(context: MerchantPage, session: SessionDep) -> Response:
    """The shop as the platform knows it, and its certificates with the days they have left."""
    merchant = session.get(Merchant, context.user.merchant_id)
    if merchant is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=context.tr.gettext("Your shop was not found."))
    office = session.get(StreetOffice, merchant.street_office_id)
    certificates = session.exec(
        select(Certificate)
        .where(col(Certificate.merchant_id) == merchant.id)
        .order_by(col(Certificate.kind), col(Certificate.valid_until).asc().nulls_last(), col(Certificate.id))
    ).all()
    cameras = session.exec(select(Camera).where(col(Camera.merchant_id) == merchant.id).order_by(col(Camera.id))).all()
    today = beijing_today()
    return render(
        context.request, "merchant/profile.html", tr=context.tr, page=context, merchant=merchant, office=office,
        certificates=[certificate_view(certificate, today) for certificate in certificates], cameras=cameras,
        camera_areas=CAMERA_AREAS, today=today, reminder_days=REMINDER_DAYS,
        acknowledged_at=context.user.enforcement_notice_acknowledged_at,
    )


# Answers


def check_may_answer(context: PageContext, case: AlertCase, statuses: tuple[str, ...]) -> None:
    """The notice comes first; then the case must be waiting for this answer (the workflow checks again)."""
    tr = context.tr
    if context.user.enforcement_notice_acknowledged_at is None:
        raise ActionRefused(
            status.HTTP_409_CONFLICT,
            tr.gettext("Please read and acknowledge the notice on alerts first, then answer."),
        )
    if case.status not in statuses:
        raise ActionRefused(
            status.HTTP_409_CONFLICT,
            tr.gettext("This case is not waiting for that answer any more. Reload the page to see where it stands."),
        )


def verify_answer(context: PageContext, session: Session, case: AlertCase, form: FormData) -> Answer:
    """The answer as posted, checked field by field, with every problem named at once (422)."""
    tr = context.tr
    problems: list[str] = []
    choice_text = form_text(form, "choice")
    try:
        choice: VerifyChoice | None = VerifyChoice(choice_text)
    except ValueError:
        choice = None
        problems.append(tr.gettext("Choose one of the three answers."))
    note = checked_note(context, form, problems)
    photo = form_photo(form)
    proposed = None
    reason_code = None
    if choice is VerifyChoice.rectified_now and photo is None:
        problems.append(tr.gettext("Take or choose a photo that shows the problem put right."))
    elif choice is VerifyChoice.needs_time:
        proposed = proposed_deadline(context, session, case, form_text(form, "proposed_date"), problems)
    elif choice is VerifyChoice.unsubstantiated:
        reason_code = form_text(form, "reason_code") or None
        if reason_code not in DISPUTE_REASONS:
            reason_code = None
            problems.append(tr.gettext("Choose why the alert is not true."))
        if not note:
            problems.append(tr.gettext("Explain in a few words why the alert is not true."))
    if problems:
        raise ActionRefused(status.HTTP_422_UNPROCESSABLE_CONTENT, tr.gettext("Please check your answer."),
                            problems=problems)
    # A photo goes with "put right now" only: the other answers have nowhere to keep it.
    return Answer(choice=choice, note=note, photo=photo if choice is VerifyChoice.rectified_now else None,
                  proposed_deadline=proposed, reason_code=reason_code)


def rectification_answer(context: PageContext, form: FormData) -> Answer:
    tr = context.tr
    problems: list[str] = []
    note = checked_note(context, form, problems)
    photo = form_photo(form)
    if photo is None:
        problems.append(tr.gettext("Take or choose a photo that shows the problem put right."))
    if problems:
        raise ActionRefused(status.HTTP_422_UNPROCESSABLE_CONTENT, tr.gettext("Please check your answer."),
                            problems=problems)
    return Answer(choice=None, note=note, photo=photo)


def checked_note(context: PageContext, form: FormData, problems: list[str]) -> str:
    note = form_text(form, "note")
    if len(note) > MAX_NOTE_LENGTH:
        problems.append(context.tr.gettext("The explanation is longer than %(n)d characters.") % {"n": MAX_NOTE_LENGTH})
    return note


def proposed_deadline(
    context: PageContext, session: Session, case: AlertCase, text: str, problems: list[str]
) -> datetime | None:
    """The proposed date as the end of that day in Beijing (24:00, as working-day deadlines end)."""
    tr = context.tr
    try:
        day = date.fromisoformat(text)
    except ValueError:
        problems.append(tr.gettext("Choose the date by which the problem will be put right."))
        return None
    bounds = proposal_bounds(session, case)
    if day < bounds.earliest:
        problems.append(tr.gettext("The date cannot be in the past."))
        return None
    if bounds.latest is not None and day > bounds.latest:
        latest = bounds.latest.isoformat()
        problems.append(tr.gettext("The latest date you may propose is %(date)s.") % {"date": latest})
        return None
    return datetime.combine(day + timedelta(days=1), time(), tzinfo=BEIJING)


def proposal_bounds(session: Session, case: AlertCase) -> ProposalBounds:
    now = datetime.now(UTC)
    today = now.astimezone(BEIJING).date()
    try:
        immediate = alert_type_info(case.alert_type).immediate_rectification
    except ValueError:
        immediate = False
    if immediate:
        latest: date | None = (now + timedelta(hours=IMMEDIATE_RECTIFICATION_HOURS)).astimezone(BEIJING).date()
    else:
        try:
            counted = working_calendar(session).add_working_days(now, MAX_RECTIFICATION_WORKING_DAYS).counted_days
            latest = counted[-1] if counted else None
        except ValueError as error:  # a year the calendar cannot answer for: the workflow's own cap still holds
            log.warning("no working-day calendar for the proposal bound: %s", error)
            latest = None
    return ProposalBounds(earliest=today, latest=latest, immediate=immediate)


async def store_photo(context: PageContext, upload: UploadFile) -> dict[str, Any]:
    """Store the photo as evidence (as POST /api/v1/evidence does) and return its reference payload."""
    tr = context.tr
    user = context.user
    store: EvidenceStore = context.request.app.state.evidence_store
    try:
        ref = await store_upload(store, upload, user=user, unit=context.actor.unit, via="web")
    except EvidenceTooLarge:
        raise ActionRefused(
            status.HTTP_413_CONTENT_TOO_LARGE,
            tr.gettext("The photo is larger than %(mb)s MB. Take it again at a lower resolution.")
            % {"mb": megabytes(store.max_bytes)},
        ) from None
    except (UnsupportedContent, ContentTypeMismatch):
        raise ActionRefused(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, not_a_photo(context)) from None
    except ValidationFailed as error:
        raise ActionRefused(status.HTTP_422_UNPROCESSABLE_CONTENT, error.message) from None
    except (EvidenceStoreError, urllib3.exceptions.HTTPError, OSError) as error:
        log.warning("photo upload failed: %s", type(error).__name__)
        raise ActionRefused(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            tr.gettext("The photo could not be stored just now. Nothing was changed; please try again shortly."),
            headers={"Retry-After": RETRY_AFTER_SECONDS},
        ) from None
    if not ref.content_type.startswith("image/"):
        raise ActionRefused(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, not_a_photo(context))
    return ref.to_payload()


async def send(context: PageContext, case: AlertCase, update: str, payload: object) -> None:
    """The update, with the engine's refusal or absence turned into a message the merchant can act on."""
    tr = context.tr
    try:
        await send_update(context.request, case.case_id, update, payload, result_type=CaseState,
                          subject=case.case_id)
    except HTTPException as error:
        detail = str(error.detail)
        if error.status_code == status.HTTP_503_SERVICE_UNAVAILABLE:
            raise ActionRefused(
                error.status_code,
                tr.gettext("The case system did not confirm your answer. Reload the case in a minute: if your "
                           "answer is not shown there, send it again."),
                problems=[detail], headers=dict(error.headers or {}) or {"Retry-After": RETRY_AFTER_SECONDS},
            ) from None
        raise ActionRefused(error.status_code, tr.gettext("The answer was refused: %(reason)s") % {"reason": detail},
                            headers=dict(error.headers or {}) or None) from None


def audit_action(
    session: Session, context: PageContext, case: AlertCase, action: str, detail: dict[str, Any]
) -> None:
    record_audit(session, context=context.audit_context(), action=AuditAction.case_action,
                 target=f"case:{case.case_id}", reason=action, detail={"via": "merchant_page", **detail})
    session.commit()


def record_acknowledgement(session: Session, user: User) -> None:
    account = session.merge(user)
    now = datetime.now(UTC)
    if account.enforcement_notice_acknowledged_at is not None:
        return
    account.enforcement_notice_acknowledged_at = now
    session.add(account)
    # The shop has now been told (办法 第十六条); the first account to acknowledge dates it.
    merchant = session.get(Merchant, account.merchant_id) if account.merchant_id is not None else None
    if merchant is not None and merchant.notice_acknowledged_at is None:
        merchant.notice_acknowledged_at = now
        session.add(merchant)
    session.commit()


# Rendering


def render_case(
    context: PageContext,
    session: Session,
    case: AlertCase,
    *,
    flash: str | None = None,
    refusal: ActionRefused | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    detail = get_case_detail(session, case_id=case.case_id)
    camera = session.get(Camera, case.camera_id)
    alerts = [
        {"alert": item.alert, "snapshot": EvidenceView.of(item.snapshot),
         "clip": None if item.clip is None else EvidenceView.of(item.clip)}
        for item in detail.alerts
    ]
    photos = [view for event in detail.timeline
              if (view := EvidenceView.of_payload(event.payload.get("photo"))) is not None]
    store: EvidenceStore = context.request.app.state.evidence_store
    return render(
        context.request, "merchant/case.html", tr=context.tr, page=context,
        status_code=refusal.status_code if refusal else 200, headers=refusal.headers if refusal else None,
        case=case, camera=camera, alerts=alerts, photos=photos, timeline=detail.timeline, handoff=detail.handoff,
        deadlines=deadline_views(case), asked=ASKED.get(case.status, ""),
        acknowledged=context.user.enforcement_notice_acknowledged_at is not None,
        can_verify=case.status in VERIFY_STATUSES, can_rectify=case.status in RECTIFY_STATUSES,
        bounds=proposal_bounds(session, case) if case.status in VERIFY_STATUSES else None,
        dispute_reasons=DISPUTE_REASONS, max_photo_mb=megabytes(store.max_bytes), max_note=MAX_NOTE_LENGTH,
        values=values or {}, flash=flash, error=refusal.message if refusal else None,
        problems=refusal.problems if refusal else [],
    )


def deadline_views(case: AlertCase) -> list[DeadlineView]:
    views = []
    for name, entry in (case.deadlines or {}).items():
        if not isinstance(entry, dict):
            continue
        views.append(DeadlineView(name=name, due_at=parse_instant(entry.get("due_at")), met=entry.get("met")))
    return sorted(views, key=lambda view: view.due_at or datetime.max.replace(tzinfo=UTC))


def certificate_view(certificate: Certificate, today: date) -> CertificateView:
    days_left = None if certificate.valid_until is None else (certificate.valid_until - today).days
    return CertificateView(
        certificate=certificate,
        kind_label=CERTIFICATE_KINDS.get(certificate.kind, certificate.kind),
        days_left=days_left,
        expired=days_left is not None and days_left < 0,
        expiring=days_left is not None and 0 <= days_left <= REMINDER_DAYS,
    )


def camera_names(session: Session, context: PageContext) -> dict[int | None, str]:
    merchant_id = context.user.merchant_id
    return {camera.id: camera.name for camera in session.exec(
        select(Camera).where(col(Camera.merchant_id) == merchant_id)).all()}


def handoffs_of(session: Session, cases: list[AlertCase]) -> dict[str, EnforcementHandoff]:
    ids = [case.handoff_id for case in cases if case.handoff_id]
    if not ids:
        return {}
    rows = session.exec(select(EnforcementHandoff).where(col(EnforcementHandoff.handoff_id).in_(ids))).all()
    return {row.handoff_id: row for row in rows}


def flash_for(context: PageContext, done: str | None) -> str | None:
    message = DONE.get(done or "")
    return context.tr.gettext(message) if message else None


def form_values(form: FormData) -> dict[str, str]:
    """What was typed, to fill the form in again (never the photo, never the CSRF token)."""
    return {key: value for key, value in form.items()
            if isinstance(value, str) and key in ("choice", "note", "proposed_date", "reason_code")}


def form_text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def form_photo(form: FormData) -> UploadFile | None:
    """The photo part, if one was chosen: a file input left empty still sends an empty part."""
    part = form.get(PHOTO_FIELD)
    if isinstance(part, UploadFile) and (part.size or part.filename):
        return part
    return None


def not_a_photo(context: PageContext) -> str:
    return context.tr.gettext("That file is not a photo. Take a photo with the camera or choose a JPEG or PNG image.")


def parse_instant(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def beijing_today() -> date:
    return datetime.now(UTC).astimezone(BEIJING).date()


def megabytes(size: int) -> str:
    return f"{size / (1 << 20):.0f}"


def photo_id(photo: dict[str, Any] | None) -> str | None:
    return None if photo is None else str(photo.get("evidence_id"))
