"""The administrator's pages: user accounts and device keys.

Separation of duties (三权分立, domain note §9): the administrator manages who may sign in and which machines
may post alerts, and sees no case content. Nothing here reads cases, alerts, evidence or hand-offs; scopes are
shown by the street office's or merchant's name, which is configuration.

A new account's password and a new device's key are shown once, on the answer to the form that made them,
and never stored in the clear.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, HTTPException, Query, status
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session, col, select

from api.deps import SessionDep
from api.web.context import CsrfChecked, Page, PageContext, page_roles
from api.web.i18n import N_
from api.web.templating import render
from domain.audit.models import AuditAction
from domain.audit.service import record_audit
from domain.devices.models import Device, DeviceKind
from domain.devices.service import create_device
from domain.errors import Conflict, DomainError, NotFound, ValidationFailed
from domain.merchants.models import Merchant, StreetOffice
from domain.users.models import Role, User
from domain.users.passwords import generate_password
from domain.users.service import create_user, disable_user, enable_user, find_user, normalise_username
from domain.users.web_sessions import SessionEnd, end_all_sessions

router = APIRouter(include_in_schema=False)

ADMIN = page_roles(Role.admin)
USER_PAGE_SIZE = 100
DEVICE_PAGE_SIZE = 100
FORM_FIELD_MAX = 200

ROLE_NAMES: dict[str, str] = {
    Role.command_center: N_("District command center (区局指挥中心)"),
    Role.street_officer: N_("Street office officer (街市场监管所)"),
    Role.brigade_officer: N_("Enforcement brigade officer (综合行政执法支队)"),
    Role.merchant: N_("Food business (食品经营者)"),
    Role.auditor: N_("Auditor (审计)"),
    Role.admin: N_("Administrator (系统管理员)"),
}
DEVICE_KIND_NAMES: dict[str, str] = {
    DeviceKind.edge_box: N_("Edge AI box"),
    DeviceKind.integration: N_("Vendor platform integration"),
}
DONE_MESSAGES = {
    "disabled": N_("The account is disabled and its open sessions have ended."),
    "enabled": N_("The account is enabled again."),
    "mfa_reset": N_("Two-step verification is reset: the person sets it up again."),
}


@dataclass(frozen=True)
class UserRow:
    username: str
    display_name: str
    role: str
    scope: str
    disabled: bool
    mfa_on: bool
    must_change_password: bool
    is_me: bool


@dataclass(frozen=True)
class DeviceRow:
    """A device as the list shows it: never its key hash."""

    name: str
    kind: str
    key_id: str
    merchant: str
    created_at: datetime
    revoked_at: datetime | None


# Users


@router.get("/admin", dependencies=[ADMIN])
def users(
    context: Page,
    session: SessionDep,
    after: Annotated[str, Query(max_length=64)] = "",
    done: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    flash = context.tr.gettext(DONE_MESSAGES[done]) if done in DONE_MESSAGES else None
    return _users_page(context, session, after=after, flash=flash)


@router.post("/admin/users", dependencies=[ADMIN])
def add_user(
    context: CsrfChecked,
    session: SessionDep,
    username: Annotated[str, Form(max_length=FORM_FIELD_MAX)] = "",
    display_name: Annotated[str, Form(max_length=FORM_FIELD_MAX)] = "",
    role: Annotated[str, Form(max_length=FORM_FIELD_MAX)] = "",
    street_office_code: Annotated[str, Form(max_length=FORM_FIELD_MAX)] = "",
    merchant_credit_code: Annotated[str, Form(max_length=FORM_FIELD_MAX)] = "",
) -> Response:
    tr = context.tr
    form = {"username": username, "display_name": display_name, "role": role,
            "street_office_code": street_office_code, "merchant_credit_code": merchant_credit_code}
    # The form offers both scope fields whatever the role; only the one the role takes counts.
    office = (street_office_code.strip() or None) if role == Role.street_officer else None
    merchant = (merchant_credit_code.strip() or None) if role == Role.merchant else None
    password = generate_password()
    try:
        user = create_user(
            session, username=username, role=role, password=password, street_office_code=office,
            merchant_credit_code=merchant, display_name=display_name, must_change_password=True,
        )
    except DomainError as error:
        session.rollback()
        code = status.HTTP_409_CONFLICT if isinstance(error, Conflict) else status.HTTP_422_UNPROCESSABLE_CONTENT
        return _users_page(context, session, status_code=code, form=form,
                           error=tr.gettext("The account was not created."), problems=[error.message])
    record_audit(session, context=context.audit_context(), action=AuditAction.user_created,
                 target=f"user:{user.username}", detail={"role": user.role, "scope": _scope_text(session, user)})
    session.commit()
    return render(context.request, "admin/user_created.html", tr=tr, page=context, user=user, password=password,
                  role_names=ROLE_NAMES, scope=_scope_text(session, user))


@router.post("/admin/users/{username}/disable", dependencies=[ADMIN])
def disable(username: str, context: CsrfChecked, session: SessionDep) -> Response:
    if normalise_username(username) == context.user.username:
        return _users_page(context, session, status_code=status.HTTP_409_CONFLICT,
                           error=context.tr.gettext("You cannot disable your own account."))
    user = _change(context, lambda: disable_user(session, username=username))
    assert user.id is not None
    end_all_sessions(session, user_id=user.id, now=datetime.now(UTC), reason=SessionEnd.disabled)
    record_audit(session, context=context.audit_context(), action=AuditAction.user_disabled,
                 target=f"user:{user.username}")
    session.commit()
    return RedirectResponse("/admin?done=disabled", status_code=status.HTTP_303_SEE_OTHER)


@router.post("/admin/users/{username}/enable", dependencies=[ADMIN])
def enable(username: str, context: CsrfChecked, session: SessionDep) -> Response:
    user = _change(context, lambda: enable_user(session, username=username))
    record_audit(session, context=context.audit_context(), action=AuditAction.user_enabled,
                 target=f"user:{user.username}")
    session.commit()
    return RedirectResponse("/admin?done=enabled", status_code=status.HTTP_303_SEE_OTHER)


@router.post("/admin/users/{username}/reset-mfa", dependencies=[ADMIN])
def reset_mfa(username: str, context: CsrfChecked, session: SessionDep) -> Response:
    """For a lost phone: the TOTP secret goes, and the person enrols again at their next sign-in."""
    user = find_user(session, username=username)
    if user is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=context.tr.gettext("No such user."))
    user.totp_secret = None
    user.totp_confirmed_at = None
    user.totp_last_step = None
    session.add(user)
    record_audit(session, context=context.audit_context(), action=AuditAction.mfa_reset,
                 target=f"user:{user.username}")
    session.commit()
    return RedirectResponse("/admin?done=mfa_reset", status_code=status.HTTP_303_SEE_OTHER)


def _change(context: PageContext, change: Callable[[], User]) -> User:
    try:
        return change()
    except NotFound:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=context.tr.gettext("No such user.")) from None


def _users_page(
    context: PageContext,
    session: Session,
    *,
    after: str = "",
    status_code: int = 200,
    flash: str | None = None,
    error: str | None = None,
    problems: list[str] | None = None,
    form: dict[str, str] | None = None,
) -> Response:
    statement = select(User).order_by(col(User.username))
    if after:
        statement = statement.where(col(User.username) > after)
    accounts = session.exec(statement.limit(USER_PAGE_SIZE + 1)).all()
    shown = accounts[:USER_PAGE_SIZE]
    offices = session.exec(select(StreetOffice).order_by(col(StreetOffice.code))).all()
    office_names = {office.id: office.name for office in offices}
    merchant_ids = {user.merchant_id for user in shown if user.merchant_id is not None}
    merchant_names = {
        merchant.id: f"{merchant.name} ({merchant.credit_code})"
        for merchant in session.exec(select(Merchant).where(col(Merchant.id).in_(merchant_ids))).all()
    } if merchant_ids else {}
    rows = [
        UserRow(
            username=user.username,
            display_name=user.display_name,
            role=user.role,
            scope=(office_names.get(user.street_office_id, "") if user.street_office_id is not None
                   else merchant_names.get(user.merchant_id, "") if user.merchant_id is not None else ""),
            disabled=user.disabled,
            mfa_on=user.totp_confirmed_at is not None,
            must_change_password=user.must_change_password,
            is_me=user.id == context.user.id,
        )
        for user in shown
    ]
    next_link = "/admin?" + urlencode({"after": shown[-1].username}) if len(accounts) > USER_PAGE_SIZE else None
    return render(
        context.request, "admin/users.html", tr=context.tr, page=context, status_code=status_code,
        rows=rows, role_names=ROLE_NAMES, offices=offices, form=form or {}, flash=flash, error=error,
        problems=problems or [], next_link=next_link, first_link="/admin" if after else None,
    )


def _scope_text(session: Session, user: User) -> str:
    if user.street_office_id is not None:
        office = session.get(StreetOffice, user.street_office_id)
        return office.name if office is not None else ""
    if user.merchant_id is not None:
        merchant = session.get(Merchant, user.merchant_id)
        return f"{merchant.name} ({merchant.credit_code})" if merchant is not None else ""
    return ""


# Devices


@router.get("/admin/devices", dependencies=[ADMIN])
def devices(context: Page, session: SessionDep) -> Response:
    return _devices_page(context, session)


@router.post("/admin/devices", dependencies=[ADMIN])
def add_device(
    context: CsrfChecked,
    session: SessionDep,
    name: Annotated[str, Form(max_length=FORM_FIELD_MAX)] = "",
    kind: Annotated[str, Form(max_length=FORM_FIELD_MAX)] = DeviceKind.edge_box.value,
    merchant_credit_code: Annotated[str, Form(max_length=FORM_FIELD_MAX)] = "",
) -> Response:
    tr = context.tr
    form = {"name": name, "kind": kind, "merchant_credit_code": merchant_credit_code}
    try:
        device, key = create_device(session, name=name, kind=kind,
                                    merchant_credit_code=merchant_credit_code.strip() or None)
    except (ValidationFailed, NotFound) as error:
        session.rollback()
        return _devices_page(context, session, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT, form=form,
                             error=tr.gettext("The device was not created."), problems=[error.message])
    row = _device_rows(session, [device])[0]
    record_audit(session, context=context.audit_context(), action=AuditAction.device_created,
                 target=f"device:{device.key_id}",
                 detail={"name": device.name, "kind": device.kind, "merchant": row.merchant})
    session.commit()
    return render(context.request, "admin/device_created.html", tr=tr, page=context, device=row, key=key,
                  kind_names=DEVICE_KIND_NAMES)


def _devices_page(
    context: PageContext,
    session: Session,
    *,
    status_code: int = 200,
    error: str | None = None,
    problems: list[str] | None = None,
    form: dict[str, str] | None = None,
) -> Response:
    # Newest first; a district has tens of devices, so one page of the latest is the working view.
    found = session.exec(select(Device).order_by(col(Device.id).desc()).limit(DEVICE_PAGE_SIZE)).all()
    return render(
        context.request, "admin/devices.html", tr=context.tr, page=context, status_code=status_code,
        rows=_device_rows(session, found), kind_names=DEVICE_KIND_NAMES, form=form or {}, error=error,
        problems=problems or [], page_size=DEVICE_PAGE_SIZE,
    )


def _device_rows(session: Session, items: Sequence[Device]) -> list[DeviceRow]:
    merchant_ids = {d.merchant_id for d in items if d.merchant_id is not None}
    names = {
        m.id: f"{m.name} ({m.credit_code})"
        for m in session.exec(select(Merchant).where(col(Merchant.id).in_(merchant_ids))).all()
    } if merchant_ids else {}
    return [
        DeviceRow(name=d.name, kind=d.kind, key_id=d.key_id,
                  merchant=names.get(d.merchant_id, "") if d.merchant_id is not None else "",
                  created_at=d.created_at, revoked_at=d.revoked_at)
        for d in items
    ]
