"""POST /api/v1/cases/{case_id}/evidence-bundle: the case's evidence as a verifiable ZIP (issue 6).

For the people who hand evidence on or check it: the street officer of the case's street, the brigade (transferred
cases), the command center and the auditor; a merchant and the administrator get 403. A 事由 is required; the
export is entered in the custody log of every item and in the audit log.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import IO, Annotated

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, StringConstraints

from api.audit import audit_request, request_context
from api.deps import CurrentActor, CurrentCase, CurrentUser, require_roles
from domain.audit.models import AuditAction
from domain.audit.service import AuditContext
from domain.errors import ValidationFailed
from domain.users.models import Role
from infra.evidence_bundles import MAX_REASON_CHARS, Exporter, write_case_bundle
from infra.settings import Settings

router = APIRouter(tags=["evidence"])

EXPORT_ROLES = (Role.street_officer, Role.brigade_officer, Role.command_center, Role.auditor)
CHUNK = 1024 * 1024
SPOOL_IN_MEMORY = 16 * 1024 * 1024


class BundleRequest(BaseModel):
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_REASON_CHARS)]


@router.post("/cases/{case_id}/evidence-bundle", dependencies=[require_roles(*EXPORT_ROLES)],
             response_class=StreamingResponse, responses={200: {"content": {"application/zip": {}}}})
async def evidence_bundle(body: BundleRequest, case: CurrentCase, actor: CurrentActor, user: CurrentUser,
                          request: Request) -> StreamingResponse:
    return await bundle_download(request, case_id=case.case_id, reason=body.reason,
                                 exporter=Exporter(username=actor.username, role=actor.role, unit=actor.unit),
                                 audit_context=request_context(request, user=user, unit=actor.unit))


async def bundle_download(request: Request, *, case_id: str, reason: str, exporter: Exporter,
                          audit_context: AuditContext) -> StreamingResponse:
    """The bundle as a ZIP download (the JSON API's and the case page's); 422 naming the problem."""
    settings: Settings = request.app.state.settings
    spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115 - streamed, closed below
    try:
        summary = await run_in_threadpool(
            write_case_bundle, spool, engine=request.app.state.engine, store=request.app.state.evidence_store,
            signer=request.app.state.signer, origin=settings.transparency_origin, case_id=case_id,
            reason=reason, exporter=exporter)
    except ValidationFailed as error:
        spool.close()
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=error.message) from None
    except BaseException:
        spool.close()
        raise
    audit_request(request, context=audit_context, action=AuditAction.evidence_exported, target=case_id,
                  reason=reason, detail={"bundle_id": summary.bundle_id, "items": summary.items,
                                         "tree_size": summary.tree_size})
    spool.seek(0)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return StreamingResponse(
        _chunks(spool), media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="evidence-{case_id}-{stamp}.zip"',
                 "X-Bundle-Id": summary.bundle_id})


def _chunks(spool: IO[bytes]) -> Iterator[bytes]:
    try:
        while chunk := spool.read(CHUNK):
            yield chunk
    finally:
        spool.close()
