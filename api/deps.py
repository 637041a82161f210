"""Dependencies every route declares: the database session, who is calling, what they may see and do.

Authorisation is decided here, from the authenticated session, never from request bodies (domain note §9).
Routes declare it in their signature (``CurrentUser``, ``CurrentCase``, ``Scope``) or on the decorator
(``dependencies=[require_roles(...)]``), so a route's permissions can be read off its definition.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.params import Depends as DependsParam
from fastapi.security import OAuth2PasswordBearer
from sqlmodel import Session
from temporalio.client import Client

from api.audit import audit_request, request_context
from api.auth import AuthPolicy, InvalidToken, signing_key, user_for_token
from domain.audit.models import AuditAction, AuditOutcome
from domain.cases.models import AlertCase
from domain.cases.service import CaseScope, ScopeKind, find_case
from domain.devices.service import KEY_PREFIX as DEVICE_KEY_PREFIX
from domain.devices.service import authenticate_device
from domain.merchants.models import Merchant, StreetOffice
from domain.users.models import ROLE_LABELS, Role, User
from infra.settings import Settings
from workflows.alert_case import Actor

TEMPORAL_CONNECT_TIMEOUT_SECONDS = 5.0
RETRY_AFTER_SECONDS = 10
BRIGADE_UNIT = "brigade"

# Shown in the OpenAPI page as the sign-in form; errors are raised below, with the header RFC 6750 asks for.
bearer_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)
BearerToken = Annotated[str | None, Depends(bearer_scheme)]


# Infrastructure


async def get_settings(request: Request) -> Settings:  # async: no I/O, so no thread-pool hop
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


async def get_auth_policy(settings: SettingsDep) -> AuthPolicy:
    return AuthPolicy.from_settings(settings)


AuthPolicyDep = Annotated[AuthPolicy, Depends(get_auth_policy)]


def get_session(request: Request) -> Iterator[Session]:
    with Session(request.app.state.engine, expire_on_commit=False) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def temporal_unavailable(detail: str) -> HTTPException:
    return HTTPException(
        status.HTTP_503_SERVICE_UNAVAILABLE, detail=detail, headers={"Retry-After": str(RETRY_AFTER_SECONDS)}
    )


async def temporal_client(request: Request) -> Client:
    """The connected Temporal client; 503 with Retry-After while Temporal cannot be reached."""
    try:
        client: Client = await asyncio.wait_for(request.app.state.temporal(), TEMPORAL_CONNECT_TIMEOUT_SECONDS)
    except Exception as error:
        raise temporal_unavailable("the case engine (Temporal) is unreachable; try again shortly") from error
    return client


async def optional_temporal_client(request: Request) -> Client | None:
    """The Temporal client, or None while it cannot be reached (for reads that can do without it)."""
    try:
        return await temporal_client(request)
    except HTTPException:
        return None


TemporalDep = Annotated[Client, Depends(temporal_client)]
OptionalTemporalDep = Annotated[Client | None, Depends(optional_temporal_client)]


# Who is calling


def unauthorized(detail: str, *, invalid_token: bool = False) -> HTTPException:
    challenge = 'Bearer error="invalid_token"' if invalid_token else "Bearer"
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": challenge})


def forbidden(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_403_FORBIDDEN, detail=detail)


def _user_from_token(session: Session, settings: Settings, token: str | None) -> User:
    if not token:
        raise unauthorized("sign in first: this request needs a bearer token")
    if token.startswith(DEVICE_KEY_PREFIX):
        raise unauthorized("a device key cannot be used here; people sign in at /api/v1/auth/token", invalid_token=True)
    try:
        return user_for_token(session, signing_key(settings), token)
    except InvalidToken as error:
        raise unauthorized(error.message, invalid_token=True) from None


def signed_in_user(session: SessionDep, settings: SettingsDep, token: BearerToken) -> User:
    """The person behind the bearer token, even one who must still change their password."""
    return _user_from_token(session, settings, token)


SignedInUser = Annotated[User, Depends(signed_in_user)]


def _refuse_pending_password_change(user: User) -> None:
    if user.must_change_password:
        raise forbidden("password change required: set a new password at POST /api/v1/auth/password")


def current_user(user: SignedInUser) -> User:
    """The person behind the bearer token, cleared to use the platform (no password change pending)."""
    _refuse_pending_password_change(user)
    return user


CurrentUser = Annotated[User, Depends(current_user)]


def require_roles(*roles: Role) -> DependsParam:
    """A dependency that answers 403 unless the caller has one of ``roles``.

    Use on the decorator, ``dependencies=[require_roles(Role.merchant)]``, or as a parameter's Depends.
    """
    allowed = frozenset(roles)
    names = ", ".join(role.value for role in roles)

    def check_role(user: CurrentUser, request: Request) -> User:
        if Role(user.role) not in allowed:
            message = f"this is for {names}; you are signed in as {user.role} ({ROLE_LABELS[Role(user.role)]})"
            audit_request(request, context=request_context(request, user=user), action=AuditAction.permission_denied,
                          outcome=AuditOutcome.denied, target=f"{request.method} {request.url.path}", reason=message)
            raise forbidden(message)
        return user

    return Depends(check_role)


def actor_for(session: Session, user: User) -> Actor:
    """Who acts, for workflow payloads: taken from the account, never from what the request says."""
    role = Role(user.role)
    unit: str | None = role.value
    if role is Role.street_officer and user.street_office_id is not None:
        office = session.get(StreetOffice, user.street_office_id)
        unit = office.code if office is not None else None
    elif role is Role.merchant and user.merchant_id is not None:
        merchant = session.get(Merchant, user.merchant_id)
        unit = merchant.credit_code if merchant is not None else None
    elif role is Role.brigade_officer:
        unit = BRIGADE_UNIT
    return Actor(username=user.username, role=role.value, user_id=user.id, unit=unit)


def current_actor(session: SessionDep, user: CurrentUser) -> Actor:
    return actor_for(session, user)


CurrentActor = Annotated[Actor, Depends(current_actor)]


# What the caller may see


def case_scope_for(user: User) -> CaseScope | None:
    """The cases a person may see; None for an administrator, who sees no case content (三权分立)."""
    match Role(user.role):
        case Role.merchant:
            assert user.merchant_id is not None  # app_user_merchant_scope
            return CaseScope(ScopeKind.merchant, merchant_id=user.merchant_id)
        case Role.street_officer:
            assert user.street_office_id is not None  # app_user_street_scope
            return CaseScope(ScopeKind.street_office, street_office_id=user.street_office_id)
        case Role.brigade_officer:
            return CaseScope(ScopeKind.transferred)
        case Role.command_center | Role.auditor:
            return CaseScope(ScopeKind.everything)
        case Role.admin:
            return None
    return None


def case_scope(user: CurrentUser, request: Request) -> CaseScope:
    scope = case_scope_for(user)
    if scope is None:
        message = "administrators do not see case content (separation of duties)"
        audit_request(request, context=request_context(request, user=user), action=AuditAction.permission_denied,
                      outcome=AuditOutcome.denied, target=f"{request.method} {request.url.path}", reason=message)
        raise forbidden(message)
    return scope


Scope = Annotated[CaseScope, Depends(case_scope)]


def current_case(case_id: str, session: SessionDep, scope: Scope) -> AlertCase:
    """The case named in the path, if the caller may see it; 404 otherwise, so that ids outside one's
    scope cannot be told from ids that do not exist."""
    case = find_case(session, case_id=case_id, scope=scope)
    if case is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no case {case_id!r}")
    return case


CurrentCase = Annotated[AlertCase, Depends(current_case)]


def directory_scope(session: SessionDep, settings: SettingsDep, token: BearerToken) -> CaseScope:
    """Merchants and cameras a caller may list: a device (``Bearer sk_...``) or a person.

    A device sees its own merchant (a district-scoped device, all); merchants and cameras are configuration,
    so an administrator sees them all; everyone else as far as their case scope reaches.
    """
    if token and token.startswith(DEVICE_KEY_PREFIX):
        device = authenticate_device(session, presented_key=token)
        if device is None:
            raise unauthorized("the device key is not valid", invalid_token=True)
        if device.merchant_id is None:
            return CaseScope(ScopeKind.everything)
        return CaseScope(ScopeKind.merchant, merchant_id=device.merchant_id)
    user = _user_from_token(session, settings, token)
    _refuse_pending_password_change(user)
    return case_scope_for(user) or CaseScope(ScopeKind.everything)


DirectoryScope = Annotated[CaseScope, Depends(directory_scope)]
