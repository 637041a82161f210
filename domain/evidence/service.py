"""The evidence record and its custody log (公共安全视频条例 第十六条: every use is registered).

Keyword-only functions on a Session; they flush but never commit, so the caller decides the transaction.
The bytes themselves live in object storage (infra.evidence_store); nothing here touches them.
"""

from __future__ import annotations

import os
import time
import uuid
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from domain.base import utcnow
from domain.errors import NotFound, ValidationFailed
from domain.evidence.custody_chain import append_custody
from domain.evidence.models import CollectionMethod, CustodyAction, CustodyEvent, Evidence
from domain.transparency.log import append_leaf

# Using evidence needs a stated 事由; collecting and verifying it are the platform's own acts.
REASON_REQUIRED_ACTIONS = frozenset(
    {CustodyAction.viewed, CustodyAction.downloaded, CustodyAction.exported, CustodyAction.transferred}
)
ACTOR_KINDS = ("user", "device", "system")


class EvidenceNotFound(NotFound):
    """No evidence record with that id (or digest)."""


class ReasonRequired(ValidationFailed):
    """Viewing, downloading, exporting or transferring evidence needs a stated reason (事由)."""


def new_evidence_id() -> uuid.UUID:
    """A time-ordered UUID (version 7, RFC 9562): ids sort by creation, which keeps the index compact."""
    unix_ms = time.time_ns() // 1_000_000
    value = (unix_ms & ((1 << 48) - 1)) << 80 | int.from_bytes(os.urandom(10), "big")
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    return uuid.UUID(int=value)


def check_actor(actor: str) -> str:
    """``user:<username>``, ``device:<key_id>`` or ``system:<component>``."""
    kind, _, name = actor.partition(":")
    if kind not in ACTOR_KINDS or not name.strip() or len(actor) > 100:
        raise ValidationFailed(f"actor {actor!r} must be 'user:<name>', 'device:<key id>' or 'system:<component>'")
    return actor


def get_evidence(session: Session, evidence_id: uuid.UUID) -> Evidence:
    evidence = session.get(Evidence, evidence_id)
    if evidence is None:
        raise EvidenceNotFound(f"no evidence with id {evidence_id}")
    return evidence


def find_by_sha256(session: Session, *, sha256: str, lock: bool = False) -> Evidence | None:
    """The record of these bytes, if any; ``lock`` holds its row until the transaction ends."""
    statement = select(Evidence).where(Evidence.sha256 == sha256.lower())
    if lock:
        statement = statement.with_for_update()
    return session.exec(statement).first()


def record_collected(
    session: Session,
    *,
    evidence_id: uuid.UUID,
    bucket: str,
    key: str,
    version_id: str | None,
    sha256: str,
    sm3: str,
    size: int,
    content_type: str,
    stored_at: datetime,
    retention_mode: str,
    retain_until: datetime,
    collection_method: CollectionMethod | str,
    captured_at: datetime | None,
    source: dict[str, Any],
    actor: str,
    actor_role: str | None = None,
    unit: str | None = None,
) -> Evidence:
    """The record of newly stored bytes and its first custody event, ``collected`` (制作方法, who, when).

    Flushes, so a second record of the same SHA-256 fails here with the unique violation.
    """
    method = _collection_method(collection_method)
    check_actor(actor)
    evidence = Evidence(
        id=evidence_id,
        bucket=bucket,
        key=key,
        version_id=version_id,
        sha256=sha256.lower(),
        sm3=sm3.lower(),
        size=size,
        content_type=content_type,
        stored_at=stored_at,
        retention_mode=retention_mode,
        retain_until=retain_until,
        collection_method=method.value,
        captured_at=captured_at,
        source=source,
    )
    session.add(evidence)
    session.flush()
    append_leaf(session, evidence)
    append_custody(
        session,
        CustodyEvent(
            evidence_id=evidence_id,
            action=CustodyAction.collected.value,
            at=stored_at,
            actor=actor,
            actor_role=actor_role,
            unit=unit,
            detail=_collection_detail(method, captured_at, source),
        ),
    )
    return evidence


def record_repeat_collection(
    session: Session,
    *,
    evidence: Evidence,
    collection_method: CollectionMethod | str,
    captured_at: datetime | None,
    source: dict[str, Any],
    actor: str,
    actor_role: str | None = None,
    unit: str | None = None,
) -> CustodyEvent | None:
    """Known bytes submitted again: log the submission unless it repeats one already logged.

    A custodian records every distinct act of collection, since a second camera, alert or officer handing
    over the same bytes is provenance worth keeping. A retry of the same submission (same actor, method,
    capture time and source) adds nothing. The evidence row is locked so concurrent retries log once.
    """
    method = _collection_method(collection_method)
    check_actor(actor)
    session.exec(select(Evidence.id).where(Evidence.id == evidence.id).with_for_update()).one()
    detail = _collection_detail(method, captured_at, source)
    logged = session.exec(
        select(CustodyEvent).where(
            CustodyEvent.evidence_id == evidence.id, CustodyEvent.action == CustodyAction.collected.value
        )
    ).all()
    for event in logged:
        same_submission = {k: v for k, v in event.detail.items() if k != "repeat_submission"} == detail
        if same_submission and (event.actor, event.actor_role, event.unit) == (actor, actor_role, unit):
            return None
    event = CustodyEvent(
        evidence_id=evidence.id,
        action=CustodyAction.collected.value,
        at=utcnow(),
        actor=actor,
        actor_role=actor_role,
        unit=unit,
        detail={**detail, "repeat_submission": True},
    )
    return append_custody(session, event)


def record_custody(
    session: Session,
    *,
    evidence_id: uuid.UUID,
    action: CustodyAction | str,
    actor: str,
    actor_role: str | None = None,
    unit: str | None = None,
    reason: str | None = None,
    detail: dict[str, Any] | None = None,
) -> CustodyEvent:
    """Append one event to the custody log; uses of evidence (view, download, export, transfer) need 事由."""
    try:
        parsed_action = CustodyAction(action)
    except ValueError:
        raise ValidationFailed(f"unknown custody action {action!r}") from None
    check_actor(actor)
    reason = (reason or "").strip() or None
    if parsed_action in REASON_REQUIRED_ACTIONS and reason is None:
        raise ReasonRequired(f"a reason (事由) is required to record evidence as {parsed_action.value}")
    if reason is not None and len(reason) > 500:
        raise ValidationFailed("the reason (事由) is longer than 500 characters")
    get_evidence(session, evidence_id)
    event = CustodyEvent(
        evidence_id=evidence_id,
        action=parsed_action.value,
        at=utcnow(),
        actor=actor,
        actor_role=actor_role,
        unit=unit,
        reason=reason,
        detail=detail or {},
    )
    return append_custody(session, event)


def custody_log(session: Session, evidence_id: uuid.UUID) -> list[CustodyEvent]:
    """Every custody event of one piece of evidence, oldest first."""
    statement = (
        select(CustodyEvent)
        .where(CustodyEvent.evidence_id == evidence_id)
        .order_by(col(CustodyEvent.at), col(CustodyEvent.id))
    )
    return list(session.exec(statement).all())


def _collection_method(value: CollectionMethod | str) -> CollectionMethod:
    try:
        return CollectionMethod(value)
    except ValueError:
        known = ", ".join(m.value for m in CollectionMethod)
        raise ValidationFailed(f"unknown collection method {value!r}; known: {known}") from None


def _collection_detail(method: CollectionMethod, captured_at: datetime | None, source: dict[str, Any]) -> dict:
    return {
        "collection_method": method.value,
        "captured_at": captured_at.isoformat() if captured_at is not None else None,
        "source": source,
    }
