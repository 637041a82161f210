"""Showing evidence in the browser: access checked, the view logged (audit log and custody log, with 事由),
then a redirect to a short-lived presigned URL of the exact stored version."""

from __future__ import annotations

import uuid
from typing import Annotated

import urllib3.exceptions
from fastapi import APIRouter, HTTPException, Query, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from api.deps import SessionDep, case_scope_for
from api.web.context import Page, PageForbidden
from domain.audit.models import AuditAction
from domain.audit.service import record_audit
from domain.cases.service import case_refers_to, find_case
from domain.users.models import Role
from infra.evidence_store import EvidenceStore, EvidenceStoreError

router = APIRouter(include_in_schema=False)

# 审计管理员 see digests, not pictures (access matrix, domain note §9); administrators see no case content.
NO_VIEWING = frozenset({Role.auditor, Role.admin})


@router.get("/evidence/{evidence_id}")
async def view_evidence(
    evidence_id: uuid.UUID,
    context: Page,
    session: SessionDep,
    case: Annotated[str, Query(min_length=1, max_length=128, description="the case the evidence is viewed for")],
) -> Response:
    if context.role in NO_VIEWING:
        raise PageForbidden(context.tr.gettext("Your role does not view evidence pictures."), context,
                            target=f"evidence:{evidence_id}")
    scope = case_scope_for(context.user)
    found = None if scope is None else find_case(session, case_id=case, scope=scope)
    if found is None or not case_refers_to(session, case_id=case, evidence_id=evidence_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=context.tr.gettext("No such evidence in this case."))
    reason = f"case handling {case}"  # 事由: the case it was opened for
    store: EvidenceStore = context.request.app.state.evidence_store
    try:
        url = await run_in_threadpool(
            lambda: store.presigned_get(
                evidence_id, actor=f"user:{context.user.username}", actor_role=context.user.role,
                unit=context.actor.unit, reason=reason,
            )
        )
    except (EvidenceStoreError, urllib3.exceptions.HTTPError, OSError):
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail=context.tr.gettext("The evidence store is unavailable; try again shortly."),
            headers={"Retry-After": "10"},
        ) from None
    record_audit(session, context=context.audit_context(), action=AuditAction.evidence_viewed,
                 target=f"evidence:{evidence_id}", reason=reason, detail={"case_id": case})
    session.commit()
    return RedirectResponse(url, status_code=status.HTTP_303_SEE_OTHER)
