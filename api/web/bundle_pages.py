"""Evidence bundle downloads from the auditor's case page and the brigade's transferred-case page (the officer's
case page has its own, next to its actions). Same code path as ``POST /api/v1/cases/{id}/evidence-bundle``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, status
from fastapi.responses import Response

from api.deps import SessionDep
from api.routes.bundles import bundle_download
from api.web.brigade_pages import READ_ROLES, VisibleHandoff
from api.web.context import CsrfChecked, PageContext, page_roles
from domain.cases.service import CaseScope, ScopeKind, find_case
from domain.users.models import Role
from infra.evidence_bundles import Exporter

router = APIRouter(include_in_schema=False)


async def _download(context: PageContext, case_id: str, reason: str) -> Response:
    if not reason.strip():
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            detail=context.tr.gettext("State the reason (事由) for exporting the evidence."))
    actor = context.actor
    return await bundle_download(context.request, case_id=case_id, reason=reason.strip(),
                                 exporter=Exporter(username=actor.username, role=actor.role, unit=actor.unit),
                                 audit_context=context.audit_context())


@router.post("/audit/cases/{case_id}/evidence-bundle", dependencies=[page_roles(Role.auditor)])
async def audit_bundle(case_id: str, context: CsrfChecked, session: SessionDep,
                       reason: Annotated[str, Form(max_length=500)] = "") -> Response:
    if find_case(session, case_id=case_id, scope=CaseScope(ScopeKind.everything)) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=context.tr.gettext("No such case."))
    return await _download(context, case_id, reason)


@router.post("/brigade/handoffs/{handoff_id}/evidence-bundle", dependencies=[page_roles(*READ_ROLES)])
async def brigade_bundle(handoff: VisibleHandoff, context: CsrfChecked,
                         reason: Annotated[str, Form(max_length=500)] = "") -> Response:
    return await _download(context, handoff.case_id, reason)
