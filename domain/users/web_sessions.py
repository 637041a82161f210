"""Browser sessions of people: an opaque cookie token, stored only as its SHA-256, with idle and absolute limits.

Sessions live in PostgreSQL so every web replica sees a sign-out at once and a restart keeps people signed in.
Each session carries its own CSRF token (synchroniser-token pattern) and whether the second factor was passed.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import CursorResult, update
from sqlmodel import Field, Session, SQLModel, col

from domain.base import timestamp_field
from domain.users.models import User

TOKEN_BYTES = 32
# Writing last_seen_at on every request would turn every page view into a write; a minute of slack on a
# 30-minute idle limit is immaterial.
TOUCH_INTERVAL = timedelta(seconds=60)


class SessionEnd(StrEnum):
    signed_out = "signed_out"
    idle = "idle"
    max_age = "max_age"
    password_changed = "password_changed"  # noqa: S105 - a reason, not a password
    disabled = "disabled"


class WebSession(SQLModel, table=True):
    __tablename__ = "web_session"

    token_hash: str = Field(primary_key=True, max_length=64)
    user_id: int = Field(foreign_key="app_user.id", index=True)
    created_at: datetime = timestamp_field(default_now=True)
    last_seen_at: datetime = timestamp_field(default_now=True)
    ended_at: datetime | None = timestamp_field(nullable=True)
    end_reason: str | None = Field(default=None, max_length=32)
    csrf_token: str = Field(max_length=64)
    mfa_verified: bool = False
    ip: str | None = Field(default=None, max_length=64)
    user_agent: str = Field(default="", max_length=300)


@dataclass(frozen=True)
class SessionLimits:
    idle: timedelta
    max_age: timedelta


@dataclass(frozen=True)
class StartedSession:
    token: str  # goes into the cookie, never stored
    record: WebSession


@dataclass(frozen=True)
class ResolvedSession:
    record: WebSession | None
    user: User | None
    ended: SessionEnd | None  # why a presented session is no longer valid


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def start_session(
    session: Session, *, user: User, now: datetime, ip: str | None, user_agent: str, mfa_verified: bool
) -> StartedSession:
    assert user.id is not None
    token = secrets.token_urlsafe(TOKEN_BYTES)
    record = WebSession(
        token_hash=hash_token(token),
        user_id=user.id,
        created_at=now,
        last_seen_at=now,
        csrf_token=secrets.token_urlsafe(TOKEN_BYTES),
        mfa_verified=mfa_verified,
        ip=ip,
        user_agent=user_agent[:300],
    )
    session.add(record)
    session.flush()
    return StartedSession(token=token, record=record)


def resolve_session(session: Session, *, token: str, now: datetime, limits: SessionLimits) -> ResolvedSession:
    """The live session behind a cookie; an expired one is ended here (and says why). Flushes, never commits."""
    record = session.get(WebSession, hash_token(token))
    if record is None:
        return ResolvedSession(None, None, None)
    if record.ended_at is not None:
        return ResolvedSession(record, None, SessionEnd(record.end_reason or SessionEnd.signed_out))
    user = session.get(User, record.user_id)
    reason: SessionEnd | None = None
    if user is None or user.disabled:
        reason = SessionEnd.disabled
    elif now - record.last_seen_at >= limits.idle:
        reason = SessionEnd.idle
    elif now - record.created_at >= limits.max_age:
        reason = SessionEnd.max_age
    if reason is not None:
        end_session(session, record=record, now=now, reason=reason)
        return ResolvedSession(record, None, reason)
    if now - record.last_seen_at >= TOUCH_INTERVAL:
        record.last_seen_at = now
        session.add(record)
        session.flush()
    return ResolvedSession(record, user, None)


def end_session(session: Session, *, record: WebSession, now: datetime, reason: SessionEnd) -> None:
    record.ended_at = now
    record.end_reason = reason.value
    session.add(record)
    session.flush()


def end_all_sessions(
    session: Session, *, user_id: int, now: datetime, reason: SessionEnd, keep: str | None = None
) -> int:
    """End every open session of a user (after a password change, say), except ``keep`` (a token hash)."""
    statement = (
        update(WebSession)
        .where(col(WebSession.user_id) == user_id, col(WebSession.ended_at).is_(None))
        .values(ended_at=now, end_reason=reason.value)
    )
    if keep is not None:
        statement = statement.where(col(WebSession.token_hash) != keep)
    result: CursorResult[Any] = session.connection().execute(statement)
    session.flush()
    return int(result.rowcount or 0)


def mark_mfa_verified(session: Session, *, record: WebSession) -> None:
    record.mfa_verified = True
    # A new CSRF token after a privilege change, like a new session id would be.
    record.csrf_token = secrets.token_urlsafe(TOKEN_BYTES)
    session.add(record)
    session.flush()
