"""The evidence transparency log, for anyone who must check that evidence was not altered later.

The checkpoint (a signed note) and the verifier key are public: they are what the bureau publishes and what an
auditor pins. Proofs need a signed-in account (they reveal only hashes, but the log is not an open service).
Issuing a checkpoint on demand is for the auditor, the command center and the administrator.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool

from api.deps import CurrentUser, SessionDep, require_roles
from domain.errors import NotFound, ValidationFailed
from domain.transparency import log
from domain.transparency.models import TransparencyLeaf
from domain.transparency.signed_note import NoteSigner
from domain.users.models import Role
from infra.checkpoints import authority_for, issue_checkpoint
from infra.settings import Settings

router = APIRouter(prefix="/transparency", tags=["transparency"])

NOTE_MEDIA_TYPE = "text/plain; charset=utf-8"
ISSUE_ROLES = (Role.auditor, Role.command_center, Role.admin)


def _refused(error: NotFound | ValidationFailed) -> HTTPException:
    code = status.HTTP_404_NOT_FOUND if isinstance(error, NotFound) else status.HTTP_422_UNPROCESSABLE_CONTENT
    return HTTPException(code, detail=error.message)


def _signer(request: Request) -> NoteSigner:
    signer: NoteSigner = request.app.state.signer
    return signer


@router.get("/checkpoint", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
def latest_checkpoint(session: SessionDep) -> Response:
    """The latest signed checkpoint (C2SP tlog-checkpoint as a signed note)."""
    checkpoint = log.latest_checkpoint(session)
    if checkpoint is None:
        raise _refused(NotFound("no checkpoint has been issued yet: the log is empty"))
    return Response(checkpoint.note, media_type=NOTE_MEDIA_TYPE,
                    headers={"X-Tree-Size": str(checkpoint.tree_size)})


@router.post("/checkpoint", response_class=Response, dependencies=[require_roles(*ISSUE_ROLES)],
             responses={201: {"content": {"text/plain": {}}}})
async def issue_now(request: Request) -> Response:
    """A checkpoint now, if the log grew since the latest one (201); else the latest one (200)."""
    settings: Settings = request.app.state.settings
    tsa_url = None if settings.tsa_url is None else str(settings.tsa_url)
    issued = await run_in_threadpool(
        issue_checkpoint, request.app.state.engine, signer=_signer(request), origin=settings.transparency_origin,
        authority=authority_for(tsa_url), tsa_url=tsa_url)
    if issued is None:
        raise _refused(NotFound("the log is empty: there is nothing to sign yet"))
    return Response(issued.checkpoint.note, media_type=NOTE_MEDIA_TYPE,
                    status_code=status.HTTP_201_CREATED if issued.new else status.HTTP_200_OK,
                    headers={"X-Tree-Size": str(issued.checkpoint.tree_size)})


@router.get("/key", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
def verifier_key(request: Request) -> Response:
    """The signed-note verifier key of the checkpoints (``<name>+<key id>+<base64 Ed25519 key>``)."""
    return Response(_signer(request).verifier_key() + "\n", media_type=NOTE_MEDIA_TYPE)


@router.get("/proof/inclusion")
def inclusion_proof(
    session: SessionDep, user: CurrentUser,
    leaf_index: Annotated[int, Query(ge=0)], tree_size: Annotated[int, Query(ge=1)],
) -> dict[str, Any]:
    """The audit path of one leaf in the tree of ``tree_size`` leaves (hex SHA-256 hashes, leaf to root)."""
    try:
        proof = log.inclusion(session, leaf_index=leaf_index, size=tree_size)
    except ValidationFailed as error:
        raise _refused(error) from None
    leaf = session.get(TransparencyLeaf, leaf_index)
    assert leaf is not None
    return {
        "leaf_index": leaf_index,
        "tree_size": tree_size,
        "leaf_hash": bytes(leaf.leaf_hash).hex(),
        "evidence_id": str(leaf.evidence_id),
        "leaf_data": bytes(leaf.data).decode("utf-8"),  # the canonical record: leaf_hash = SHA-256(0x00 ‖ it)
        "inclusion_proof": [node.hex() for node in proof],
    }


@router.get("/proof/consistency")
def consistency_proof(
    session: SessionDep, user: CurrentUser,
    first: Annotated[int, Query(ge=1)], second: Annotated[int, Query(ge=1)],
) -> dict[str, Any]:
    """Proof that the tree of ``second`` leaves extends the tree of ``first`` leaves unchanged."""
    try:
        proof = log.consistency(session, first=first, second=second)
    except ValidationFailed as error:
        raise _refused(error) from None
    return {"first": first, "second": second, "consistency_proof": [node.hex() for node in proof]}
