"""Signing in and out in the browser, the password change, the TOTP second factor and the language switch."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import replace
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup

from api.auth import (
    AuthPolicy,
    InvalidCredentials,
    SignInLocked,
    WrongCurrentPassword,
    authenticate,
    change_password,
)
from api.deps import AuthPolicyDep, SessionDep, SettingsDep
from api.web.context import (
    SESSION_COOKIE,
    CsrfChecked,
    Page,
    PageContext,
    SignedInPage,
    anonymous_audit_context,
    client_ip,
    needs_second_factor,
    request_translator,
)
from api.web.i18n import LANG_COOKIE, LOCALES
from api.web.templating import render
from domain.audit.models import AuditAction, AuditOutcome
from domain.audit.service import record_audit
from domain.errors import ValidationFailed
from domain.users import lockout, totp
from domain.users.secret_box import SecretUnreadable, derive_key, seal, unseal
from domain.users.service import normalise_username
from domain.users.web_sessions import SessionEnd, end_all_sessions, end_session, mark_mfa_verified, start_session
from infra.settings import Settings

router = APIRouter(include_in_schema=False)

LOGIN_CSRF_COOKIE = "sunshine_login_csrf"
LANG_COOKIE_MAX_AGE = 365 * 24 * 3600


def secure_cookies(request: Request, settings: Settings) -> bool:
    return settings.cookie_secure or request.url.scheme == "https"


def safe_next(value: str | None) -> str | None:
    """Only paths on this site: an open redirect would make the sign-in page a phishing tool."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return None
    return value


# Home and language


@router.get("/")
def home(context: Page) -> Response:
    return RedirectResponse(context.home, status_code=303)


@router.get("/lang/{locale}")
def switch_language(locale: str, request: Request, settings: SettingsDep, next: str | None = None) -> Response:
    target = safe_next(next) or "/"
    response = RedirectResponse(target, status_code=303)
    if locale in LOCALES:
        response.set_cookie(LANG_COOKIE, locale, max_age=LANG_COOKIE_MAX_AGE, path="/", httponly=True,
                            samesite="lax", secure=secure_cookies(request, settings))
    return response


# Signing in


def _login_page(
    request: Request, settings: Settings, *, next_path: str | None, error: str | None = None,
    status_code: int = 200, username: str = "", expired: bool = False,
) -> Response:
    token = secrets.token_urlsafe(24)
    response = render(
        request, "login.html", tr=request_translator(request), status_code=status_code,
        login_csrf=token, next_path=next_path or "", error=error, username=username, expired=expired,
    )
    response.set_cookie(LOGIN_CSRF_COOKIE, token, path="/login", httponly=True, samesite="strict",
                        secure=secure_cookies(request, settings))
    return response


@router.get("/login")
def login_form(
    request: Request, settings: SettingsDep, next: str | None = None, expired: str | None = None
) -> Response:
    return _login_page(request, settings, next_path=safe_next(next), expired=bool(expired))


@router.post("/login")
def login(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    policy: AuthPolicyDep,
    username: Annotated[str, Form(max_length=200)] = "",
    password: Annotated[str, Form(max_length=4096)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    tr = request_translator(request)
    next_path = safe_next(next)
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie or not csrf_token or not hmac.compare_digest(cookie, csrf_token):
        record_audit(session, context=anonymous_audit_context(request, normalise_username(username)[:64]),
                     action=AuditAction.csrf_refused, outcome=AuditOutcome.denied, target="/login")
        session.commit()
        return _login_page(request, settings, next_path=next_path, status_code=403, username=username,
                           error=tr.gettext("The sign-in form had expired. Please try again."))
    typed = normalise_username(username)[:64]
    try:
        user = authenticate(session, username=username, password=password, policy=policy)
    except SignInLocked as error:
        record_audit(session, context=anonymous_audit_context(request, typed), action=AuditAction.sign_in_failed,
                     outcome=AuditOutcome.denied, reason="locked")
        session.commit()
        minutes = (error.retry_after_seconds + 59) // 60
        return _login_page(
            request, settings, next_path=next_path, status_code=429, username=username,
            error=tr.gettext("Too many failed sign-ins. Try again in %(minutes)d minute(s).") % {"minutes": minutes},
        )
    except InvalidCredentials:
        now = datetime.now(UTC)
        context = anonymous_audit_context(request, typed)
        record_audit(session, context=context, action=AuditAction.sign_in_failed, outcome=AuditOutcome.failure)
        if lockout.locked_until(session, username=typed, now=now) is not None:
            record_audit(session, context=context, action=AuditAction.sign_in_locked, outcome=AuditOutcome.denied,
                         reason=f"{policy.lockout.max_failures} failures")
        session.commit()
        return _login_page(request, settings, next_path=next_path, status_code=401, username=username,
                           error=tr.gettext("Incorrect username or password."))
    now = datetime.now(UTC)
    started = start_session(
        session, user=user, now=now, ip=client_ip(request), user_agent=request.headers.get("user-agent", ""),
        mfa_verified=not needs_second_factor(user, settings),
    )
    record_audit(session, context=replace(anonymous_audit_context(request, user.username), user_id=user.id,
                                          role=user.role), action=AuditAction.signed_in)
    session.commit()
    response = RedirectResponse(next_path or "/", status_code=303)
    response.set_cookie(SESSION_COOKIE, started.token, path="/", httponly=True, samesite="lax",
                        secure=secure_cookies(request, settings))
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout(context: CsrfChecked, session: SessionDep) -> Response:
    record = session.merge(context.web_session)
    end_session(session, record=record, now=datetime.now(UTC), reason=SessionEnd.signed_out)
    record_audit(session, context=context.audit_context(), action=AuditAction.signed_out)
    session.commit()
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# Password


@router.get("/password")
def password_form(context: SignedInPage) -> Response:
    return render(context.request, "password.html", tr=context.tr, page=context, problems=[], error=None)


@router.post("/password")
def password_change(
    context: CsrfChecked,
    session: SessionDep,
    policy: AuthPolicyDep,
    current_password: Annotated[str, Form(max_length=4096)] = "",
    new_password: Annotated[str, Form(max_length=4096)] = "",
    confirm_password: Annotated[str, Form(max_length=4096)] = "",
) -> Response:
    tr = context.tr
    user = session.merge(context.user)
    if new_password != confirm_password:
        return _password_page(context, status_code=422, error=tr.gettext("The two new passwords differ."))
    try:
        change_password(session, user=user, current_password=current_password, new_password=new_password,
                        policy=policy)
    except WrongCurrentPassword:
        return _password_page(context, status_code=422, error=tr.gettext("The current password is not correct."))
    except SignInLocked:
        return _password_page(context, status_code=429,
                              error=tr.gettext("Too many failed attempts. Try again later."))
    except ValidationFailed as error:
        return _password_page(context, status_code=422,
                              error=tr.gettext("The new password is not acceptable."), problems=error.problems)
    now = datetime.now(UTC)
    user.password_changed_at = now
    session.add(user)
    assert user.id is not None
    end_all_sessions(session, user_id=user.id, now=now, reason=SessionEnd.password_changed,
                     keep=context.web_session.token_hash)
    record_audit(session, context=context.audit_context(), action=AuditAction.password_changed)
    session.commit()
    return RedirectResponse("/", status_code=303)


def _password_page(
    context: PageContext, *, status_code: int, error: str, problems: list[str] | None = None
) -> Response:
    return render(context.request, "password.html", tr=context.tr, page=context, status_code=status_code,
                  error=error, problems=problems or [])


# Second factor (TOTP)


@router.get("/mfa")
def mfa_form(context: SignedInPage) -> Response:
    if context.user.totp_confirmed_at is None:
        return RedirectResponse("/mfa/setup", status_code=303)
    if context.web_session.mfa_verified:
        return RedirectResponse("/", status_code=303)
    return render(context.request, "mfa.html", tr=context.tr, page=context, error=None)


@router.post("/mfa")
def mfa_verify(
    context: CsrfChecked, session: SessionDep, policy: AuthPolicyDep, code: Annotated[str, Form(max_length=20)] = ""
) -> Response:
    user = session.merge(context.user)
    if user.totp_secret is None or user.totp_confirmed_at is None:
        return RedirectResponse("/mfa/setup", status_code=303)
    if _accept_code(session, context, user_code=code, policy=policy):
        mark_mfa_verified(session, record=session.merge(context.web_session))
        session.commit()
        return RedirectResponse("/", status_code=303)
    return render(context.request, "mfa.html", tr=context.tr, page=context, status_code=401,
                  error=context.tr.gettext("The code is not correct. Use the current code from your app."))


@router.get("/mfa/setup")
def mfa_setup_form(context: SignedInPage, session: SessionDep) -> Response:
    user = session.merge(context.user)
    if user.totp_confirmed_at is not None:
        return RedirectResponse("/mfa", status_code=303)
    secret = _totp_secret(context, user.totp_secret)
    if secret is None:  # none yet, or sealed under a key that has since changed: start afresh
        secret = totp.new_secret()
        user.totp_secret = seal(_totp_key(context.settings), secret)
        session.add(user)
        session.commit()
    return _setup_page(context, secret, error=None)


@router.post("/mfa/setup")
def mfa_setup(
    context: CsrfChecked, session: SessionDep, policy: AuthPolicyDep, code: Annotated[str, Form(max_length=20)] = ""
) -> Response:
    user = session.merge(context.user)
    if user.totp_confirmed_at is not None:
        return RedirectResponse("/mfa", status_code=303)
    secret = _totp_secret(context, user.totp_secret)
    if secret is None:
        return RedirectResponse("/mfa/setup", status_code=303)
    if not _accept_code(session, context, user_code=code, policy=policy):
        return _setup_page(context, secret, status_code=401,
                           error=context.tr.gettext("The code is not correct. Use the current code from your app."))
    user.totp_confirmed_at = datetime.now(UTC)
    session.add(user)
    mark_mfa_verified(session, record=session.merge(context.web_session))
    record_audit(session, context=context.audit_context(), action=AuditAction.mfa_enrolled)
    session.commit()
    return RedirectResponse("/", status_code=303)


def _totp_key(settings: Settings) -> bytes:
    return derive_key(settings.secret_key.get_secret_value(), "totp")


def _totp_secret(context: PageContext, sealed: str | None) -> str | None:
    """The user's TOTP seed, kept sealed at rest; None when there is none or it no longer opens."""
    if sealed is None:
        return None
    try:
        return unseal(_totp_key(context.settings), sealed)
    except SecretUnreadable:
        return None


def _setup_page(context: PageContext, secret: str, *, error: str | None, status_code: int = 200) -> Response:
    uri = totp.provisioning_uri(secret, account=context.user.username)
    return render(context.request, "mfa_setup.html", tr=context.tr, page=context, status_code=status_code,
                  secret=secret, qr=Markup(totp.qr_svg(uri)), error=error)  # noqa: S704 - SVG made here


def _accept_code(session: SessionDep, context: PageContext, *, user_code: str, policy: AuthPolicy) -> bool:
    """Check a TOTP code; a wrong one counts towards the sign-in lockout, a locked account ends the session."""
    user = session.merge(context.user)
    now = datetime.now(UTC)
    secret = _totp_secret(context, user.totp_secret)
    locked = lockout.locked_until(session, username=user.username, now=now)
    step = None if locked is not None or secret is None else totp.verify_totp(secret, user_code)
    if step is not None and (user.totp_last_step is None or step > user.totp_last_step):
        user.totp_last_step = step
        session.add(user)
        lockout.clear_failed_logins(session, username=user.username)
        return True
    lockout.record_failed_login(session, username=user.username, now=now, policy=policy.lockout)
    record_audit(session, context=context.audit_context(), action=AuditAction.mfa_failed,
                 outcome=AuditOutcome.failure)
    if lockout.locked_until(session, username=user.username, now=now) is not None:
        end_session(session, record=session.merge(context.web_session), now=now, reason=SessionEnd.signed_out)
    session.commit()
    return False


