"""Sign-in (OAuth2 password flow), token renewal, the caller's identity and password change."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, Field

from api.audit import audit_request, request_context
from api.auth import (
    TOKEN_TYPE,
    InvalidCredentials,
    InvalidToken,
    IssuedToken,
    SignInLocked,
    WrongCurrentPassword,
    authenticate,
    change_password,
    issue_token,
    refresh_token,
    signing_key,
)
from api.deps import (
    AuthPolicyDep,
    BearerToken,
    CurrentUser,
    SessionDep,
    SettingsDep,
    SignedInUser,
    unauthorized,
)
from domain.audit.models import AuditAction, AuditOutcome
from domain.errors import ValidationFailed
from domain.users.models import ROLE_LABELS, Role
from domain.users.service import normalise_username

router = APIRouter(prefix="/auth", tags=["auth"])


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = TOKEN_TYPE
    expires_in: int = Field(description="seconds until the token expires")
    must_change_password: bool = False

    @classmethod
    def of(cls, issued: IssuedToken, *, must_change_password: bool) -> TokenResponse:
        return cls(
            access_token=issued.access_token,
            expires_in=issued.expires_in,
            must_change_password=must_change_password,
        )


class PasswordChange(BaseModel):
    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=1, max_length=1024)


class Me(BaseModel):
    id: int
    username: str
    display_name: str
    role: str
    role_label: str
    street_office_id: int | None
    merchant_id: int | None


def _locked(error: SignInLocked) -> HTTPException:
    return HTTPException(
        status.HTTP_429_TOO_MANY_REQUESTS, detail=error.message, headers={"Retry-After": str(error.retry_after_seconds)}
    )


@router.post("/token", response_model=TokenResponse)
def sign_in(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    policy: AuthPolicyDep,
) -> TokenResponse:
    """Exchange username and password for a bearer token (the same refusal whether or not the user exists)."""
    typed = normalise_username(form.username)
    via = {"via": "api"}
    try:
        user = authenticate(session, username=form.username, password=form.password, policy=policy)
    except SignInLocked as error:
        audit_request(request, context=request_context(request, username=typed), action=AuditAction.sign_in_failed,
                      outcome=AuditOutcome.denied, reason="locked", detail=via)
        raise _locked(error) from None
    except InvalidCredentials as error:
        audit_request(request, context=request_context(request, username=typed), action=AuditAction.sign_in_failed,
                      outcome=AuditOutcome.failure, detail=via)
        raise unauthorized(error.message) from None
    audit_request(request, context=request_context(request, user=user), action=AuditAction.signed_in, detail=via)
    issued = issue_token(signing_key(settings), user=user, policy=policy)
    return TokenResponse.of(issued, must_change_password=user.must_change_password)


@router.post("/refresh", response_model=TokenResponse)
def renew_token(user: CurrentUser, token: BearerToken, settings: SettingsDep, policy: AuthPolicyDep) -> TokenResponse:
    """A fresh token while the session is in use, up to the session's maximum length since sign-in."""
    assert token is not None  # CurrentUser has checked it
    try:
        issued = refresh_token(signing_key(settings), user=user, token=token, policy=policy)
    except InvalidToken as error:
        raise unauthorized(error.message, invalid_token=True) from None
    return TokenResponse.of(issued, must_change_password=False)


@router.get("/me", response_model=Me)
def who_am_i(user: CurrentUser) -> Me:
    assert user.id is not None
    return Me(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        role=user.role,
        role_label=ROLE_LABELS[Role(user.role)],
        street_office_id=user.street_office_id,
        merchant_id=user.merchant_id,
    )


@router.post("/password", response_model=TokenResponse)
def set_new_password(
    body: PasswordChange, user: SignedInUser, session: SessionDep, settings: SettingsDep, policy: AuthPolicyDep
) -> TokenResponse:
    """Change one's own password (the only route open while a password change is required).

    Earlier tokens stop working; the answer carries a new one.
    """
    try:
        change_password(
            session,
            user=user,
            current_password=body.current_password,
            new_password=body.new_password,
            policy=policy,
        )
    except SignInLocked as error:
        raise _locked(error) from None
    except WrongCurrentPassword as error:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail=error.message) from None
    except ValidationFailed as error:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, detail={"message": error.message, "problems": error.problems}
        ) from None
    issued = issue_token(signing_key(settings), user=user, policy=policy)
    return TokenResponse.of(issued, must_change_password=False)
