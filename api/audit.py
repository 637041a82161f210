"""Writing an audit entry from a request, in a transaction of its own: a refusal's own transaction may be
rolled back, and the entry must outlive it (等保 安全审计: every user, important actions and security events)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from sqlmodel import Session

from domain.audit.models import AuditAction, AuditOutcome
from domain.audit.service import AuditContext, record_audit
from domain.users.models import User


def request_context(request: Request, *, user: User | None = None, username: str = "",
                    unit: str | None = None) -> AuditContext:
    return AuditContext(
        user_id=user.id if user is not None else None,
        username=user.username if user is not None else username[:64],
        role=user.role if user is not None else None,
        unit=unit,
        ip=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent", "")[:300],
    )


def audit_request(
    request: Request,
    *,
    context: AuditContext,
    action: AuditAction,
    outcome: AuditOutcome = AuditOutcome.success,
    target: str = "",
    reason: str = "",
    detail: dict[str, Any] | None = None,
) -> None:
    with Session(request.app.state.engine) as session:
        record_audit(session, context=context, action=action, outcome=outcome, target=target, reason=reason,
                     detail=detail)
        session.commit()
