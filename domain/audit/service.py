"""Writing and reading the audit log. Keyword-only functions on a Session; they flush, the caller commits.

Security events must survive the failure of what they record (a refused request rolls its own transaction
back), so callers that audit a refusal write the event in a session of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement
from sqlmodel import Session, col, select

from domain.audit.models import AuditAction, AuditEvent, AuditOutcome

MAX_AUDIT_PAGE = 200


@dataclass(frozen=True)
class AuditContext:
    """Who is acting and from where, as the edge (web request, CLI) knows it."""

    user_id: int | None = None
    username: str = ""
    role: str | None = None
    unit: str | None = None
    ip: str | None = None
    user_agent: str = ""


@dataclass(frozen=True)
class AuditFilters:
    actions: tuple[str, ...] = ()
    username: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    target: str | None = None


def record_audit(
    session: Session,
    *,
    context: AuditContext,
    action: AuditAction,
    outcome: AuditOutcome = AuditOutcome.success,
    target: str = "",
    reason: str = "",
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    event = AuditEvent(
        user_id=context.user_id,
        username=context.username[:64],
        role=context.role,
        unit=(context.unit or None) and context.unit[:64],
        ip=context.ip,
        user_agent=context.user_agent[:300],
        action=action.value,
        outcome=outcome.value,
        target=target[:200],
        reason=reason[:500],
        detail=detail or {},
    )
    session.add(event)
    session.flush()
    return event


def list_audit(
    session: Session, *, filters: AuditFilters, limit: int = 100, before_id: int | None = None
) -> Sequence[AuditEvent]:
    """Newest first; page with ``before_id`` (the id of the last row shown)."""
    conditions: list[ColumnElement[bool]] = []
    if filters.actions:
        conditions.append(col(AuditEvent.action).in_(filters.actions))
    if filters.username:
        conditions.append(col(AuditEvent.username) == filters.username)
    if filters.outcome:
        conditions.append(col(AuditEvent.outcome) == filters.outcome)
    if filters.since is not None:
        conditions.append(col(AuditEvent.at) >= filters.since)
    if filters.until is not None:
        conditions.append(col(AuditEvent.at) < filters.until)
    if filters.target:
        conditions.append(col(AuditEvent.target) == filters.target)
    if before_id is not None:
        conditions.append(col(AuditEvent.id) < before_id)
    statement = (
        select(AuditEvent).where(*conditions).order_by(col(AuditEvent.id).desc()).limit(min(limit, MAX_AUDIT_PAGE))
    )
    return list(session.exec(statement))
