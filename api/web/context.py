"""Who is looking at a page, and the dependencies every page route declares.

A page route takes ``Page`` (signed in, password current, second factor passed) and declares its roles with
``dependencies=[page_roles(...)]``; a form handler also takes ``CsrfChecked``. Refusals raise the exceptions
below, which ``api.web.errors`` turns into a redirect to the sign-in page or a readable error page, and which
are written to the audit log.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.params import Depends as DependsParam
from sqlmodel import Session

from api.audit import audit_request
from api.deps import SessionDep, SettingsDep, actor_for
from api.web.i18n import LANG_COOKIE, Translator, negotiate_locale, translator
from domain.audit.models import AuditAction, AuditOutcome
from domain.audit.service import AuditContext, record_audit
from domain.users.models import Role, User
from domain.users.web_sessions import SessionEnd, SessionLimits, WebSession, resolve_session
from infra.settings import Settings
from workflows.alert_case import Actor

SESSION_COOKIE = "sunshine_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
MFA_ROLES = frozenset({Role.command_center, Role.admin, Role.auditor})

HOME_BY_ROLE: dict[Role, str] = {
    Role.street_officer: "/queue",
    Role.command_center: "/overview",
    Role.brigade_officer: "/brigade",
    Role.merchant: "/m",
    Role.auditor: "/audit",
    Role.admin: "/admin",
}


class SignInRequired(Exception):
    def __init__(self, next_path: str, ended: SessionEnd | None = None) -> None:
        self.next_path = next_path
        self.ended = ended


class RedirectTo(Exception):
    def __init__(self, location: str) -> None:
        self.location = location


class PageForbidden(Exception):
    """A refusal shown as a 403 page and written to the audit log."""

    def __init__(
        self,
        message: str,
        context: PageContext | None = None,
        *,
        action: AuditAction = AuditAction.permission_denied,
        target: str = "",
    ) -> None:
        self.message = message
        self.context = context
        self.action = action
        self.target = target


def session_limits(settings: Settings) -> SessionLimits:
    return SessionLimits(
        idle=timedelta(minutes=settings.session_idle_minutes), max_age=timedelta(hours=settings.session_max_hours)
    )


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def request_translator(request: Request) -> Translator:
    return translator(negotiate_locale(request.cookies.get(LANG_COOKIE)))


def anonymous_audit_context(request: Request, username: str = "") -> AuditContext:
    return AuditContext(
        username=username, ip=client_ip(request), user_agent=request.headers.get("user-agent", "")[:300]
    )


def needs_second_factor(user: User, settings: Settings) -> bool:
    return user.totp_confirmed_at is not None or (settings.require_mfa and Role(user.role) in MFA_ROLES)


@dataclass
class PageContext:
    request: Request
    settings: Settings
    user: User
    web_session: WebSession
    actor: Actor
    tr: Translator

    @property
    def role(self) -> Role:
        return Role(self.user.role)

    @property
    def csrf_token(self) -> str:
        return self.web_session.csrf_token

    @property
    def home(self) -> str:
        return HOME_BY_ROLE[self.role]

    def audit_context(self) -> AuditContext:
        return AuditContext(
            user_id=self.user.id,
            username=self.user.username,
            role=self.user.role,
            unit=self.actor.unit,
            ip=client_ip(self.request),
            user_agent=self.request.headers.get("user-agent", "")[:300],
        )


def _path_with_query(request: Request) -> str:
    path = request.url.path
    return f"{path}?{request.url.query}" if request.url.query else path


def _signed_in(request: Request, session: Session, settings: Settings) -> tuple[User, WebSession]:
    token = request.cookies.get(SESSION_COOKIE)
    next_path = _path_with_query(request) if request.method == "GET" else "/"
    if not token:
        raise SignInRequired(next_path)
    now = datetime.now(UTC)
    resolved = resolve_session(session, token=token, now=now, limits=session_limits(settings))
    if resolved.user is None or resolved.record is None:
        # Logged once, by the request that found the session expired and ended it.
        record = resolved.record
        if record is not None and record.ended_at == now and resolved.ended in (SessionEnd.idle, SessionEnd.max_age):
            ended_user = session.get(User, record.user_id)
            record_audit(
                session,
                context=AuditContext(
                    user_id=record.user_id,
                    username=ended_user.username if ended_user else "",
                    role=ended_user.role if ended_user else None,
                    ip=client_ip(request),
                    user_agent=request.headers.get("user-agent", "")[:300],
                ),
                action=AuditAction.session_expired,
                reason=resolved.ended.value,
            )
        session.commit()
        raise SignInRequired(next_path, resolved.ended)
    session.commit()
    return resolved.user, resolved.record


def signed_in_page(request: Request, session: SessionDep, settings: SettingsDep) -> PageContext:
    """Signed in, whatever is still pending (for the password-change and second-factor pages themselves)."""
    user, record = _signed_in(request, session, settings)
    return PageContext(
        request=request,
        settings=settings,
        user=user,
        web_session=record,
        actor=actor_for(session, user),
        tr=request_translator(request),
    )


SignedInPage = Annotated[PageContext, Depends(signed_in_page)]


async def cleared_page(context: SignedInPage) -> PageContext:  # async: no I/O, no thread-pool hop
    """Signed in with nothing pending: password changed if it had to be, second factor passed if needed."""
    user = context.user
    if user.must_change_password:
        raise RedirectTo("/password")
    if needs_second_factor(user, context.settings) and not context.web_session.mfa_verified:
        raise RedirectTo("/mfa" if user.totp_confirmed_at is not None else "/mfa/setup")
    return context


Page = Annotated[PageContext, Depends(cleared_page)]


def page_roles(*roles: Role) -> DependsParam:
    """403 page (and an audit entry) unless the signed-in person has one of ``roles``."""
    allowed = frozenset(roles)

    async def check(context: Page) -> PageContext:
        if context.role not in allowed:
            raise PageForbidden(context.tr.gettext("This page is not for your role."), context)
        return context

    return Depends(check)


async def csrf_checked(context: SignedInPage) -> PageContext:
    """The form (or htmx request) carries this session's CSRF token; 403 otherwise."""
    request = context.request
    presented = request.headers.get(CSRF_HEADER)
    if presented is None:
        form = await request.form()
        value = form.get(CSRF_FIELD)
        presented = value if isinstance(value, str) else None
    if not presented or not hmac.compare_digest(presented, context.web_session.csrf_token):
        raise PageForbidden(
            context.tr.gettext("The form has expired or did not come from this site. Reload the page and try again."),
            context,
            action=AuditAction.csrf_refused,
        )
    return context


CsrfChecked = Annotated[PageContext, Depends(csrf_checked)]


def login_redirect(next_path: str, *, expired: bool = False) -> str:
    location = f"/login?next={quote(next_path, safe='/')}"
    return location + "&expired=1" if expired else location


def audit_refusal(context: PageContext, *, action: AuditAction, target: str, reason: str) -> None:
    audit_request(context.request, context=context.audit_context(), action=action, outcome=AuditOutcome.denied,
                  target=target, reason=reason)
