"""Storing a person's upload as evidence: one way for the JSON API and the pages (callers map the errors)."""

from __future__ import annotations

from fastapi.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from domain.evidence.content import normalise_content_type
from domain.evidence.models import CollectionMethod
from domain.evidence.refs import EvidenceRef
from domain.users.models import User
from infra.evidence_store import EvidenceStore


async def store_upload(
    store: EvidenceStore, upload: UploadFile, *, user: User, unit: str | None, via: str
) -> EvidenceRef:
    """Raises what ``EvidenceStore.put`` raises (too large, unsupported, mismatch, store unavailable)."""
    declared = normalise_content_type(upload.content_type) if upload.content_type else None
    if declared == "application/octet-stream":  # "I don't know": let the bytes decide
        declared = None
    ref: EvidenceRef = await run_in_threadpool(
        lambda: store.put(
            upload.file,
            collection_method=CollectionMethod.upload,
            actor=f"user:{user.username}",
            actor_role=user.role,
            unit=unit,
            declared_content_type=declared,
            source_meta={"via": via, "filename": (upload.filename or "")[:200]},
        )
    )
    return ref
