"""The evidence bundle of one case (issue 6): everything an auditor needs to check the case's evidence offline.

Order of work: the export is entered in the custody log of every item, with its 事由, in one transaction (an item
recorded before the log existed is appended to it there); a checkpoint that holds every record of the case is
issued (or the latest one already does); then the ZIP is written:
records, their inclusion proofs against that checkpoint, the bytes streamed from the locked bucket (digests checked
while read), the custody rows, the 电子数据提取笔录, all signed (``domain.transparency.bundle``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any, BinaryIO, cast

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from domain.alerts.taxonomy import ALERT_TYPES, AlertType, alert_type_label
from domain.cases.service import CaseDetail, evidence_ids_of, get_case_detail
from domain.errors import ValidationFailed
from domain.evidence import service as evidence_service
from domain.evidence.custody_chain import custody_row
from domain.evidence.models import CustodyAction, CustodyEvent
from domain.evidence.refs import EvidenceRef
from domain.transparency import log
from domain.transparency.bundle import BundleContents, BundleEvidence, ChunkSource, write_bundle
from domain.transparency.merkle import inclusion_proof
from domain.transparency.models import TransparencyCheckpoint
from domain.transparency.signed_note import NoteSigner
from infra.checkpoints import issue_checkpoint
from infra.db import session_scope
from infra.evidence_store import EvidenceStore

MAX_REASON_CHARS = 500


@dataclass(frozen=True)
class Exporter:
    """Who asks for the bundle: recorded in the custody log, the manifest and the 笔录."""

    username: str
    role: str
    unit: str | None


@dataclass(frozen=True)
class BundleSummary:
    bundle_id: str
    case_id: str
    items: int
    tree_size: int


def check_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed("a reason (事由) is required to export evidence")
    if len(reason) > MAX_REASON_CHARS:
        raise ValidationFailed(f"the reason (事由) is longer than {MAX_REASON_CHARS} characters")
    return reason


def write_case_bundle(
    out: IO[bytes], *, engine: Engine, store: EvidenceStore, signer: NoteSigner, origin: str, case_id: str,
    reason: str, exporter: Exporter, now: datetime | None = None,
) -> BundleSummary:
    reason = check_reason(reason)
    bundle_id = str(evidence_service.new_evidence_id())
    with session_scope(engine) as session:
        detail = get_case_detail(session, case_id=case_id)
        evidence_ids = sorted(evidence_ids_of(detail))
        for evidence_id in evidence_ids:
            log.append_leaf(session, evidence_service.get_evidence(session, evidence_id))  # recorded before the log
            evidence_service.record_custody(
                session, evidence_id=evidence_id, action=CustodyAction.exported, actor=f"user:{exporter.username}",
                actor_role=exporter.role, unit=exporter.unit, reason=reason,
                detail={"bundle_id": bundle_id, "case_id": case_id})
    issue_checkpoint(engine, signer=signer, origin=origin)  # the case's newest record may be newer than the latest
    with Session(engine, expire_on_commit=False) as session:
        checkpoint = log.latest_checkpoint(session)
        if checkpoint is None:
            raise ValidationFailed(f"case {case_id} has no evidence in the transparency log")
        nodes = log.DatabaseNodes(session)
        items = [_bundle_item(session, nodes, evidence_id, checkpoint) for evidence_id in evidence_ids]
        refs = {item.record["sha256"]: EvidenceRef.from_record(evidence_service.get_evidence(session, evidence_id))
                for item, evidence_id in zip(items, evidence_ids, strict=True)}
        custody = [custody_row(event) for event in session.exec(
            select(CustodyEvent).where(col(CustodyEvent.evidence_id).in_(evidence_ids))
            .order_by(col(CustodyEvent.id)))]
    contents = BundleContents(
        bundle_id=bundle_id,
        generated_at=(now or datetime.now(UTC)),
        generated_by={"actor": exporter.username, "role": exporter.role, "unit": exporter.unit},
        reason=reason,
        case=case_summary(detail),
        evidence=items,
        evidence_content={sha256: _reader(store, ref) for sha256, ref in refs.items()},
        custody=custody,
        checkpoint_note=checkpoint.note,
        verifier_key=signer.verifier_key(),
    )
    write_bundle(cast(BinaryIO, out), contents=contents, signer=signer)
    return BundleSummary(bundle_id=bundle_id, case_id=case_id, items=len(items), tree_size=checkpoint.tree_size)


def _bundle_item(session: Session, nodes: log.DatabaseNodes, evidence_id: uuid.UUID,
                 checkpoint: TransparencyCheckpoint) -> BundleEvidence:
    leaf = log.leaf_of(session, evidence_id)
    return BundleEvidence(
        record=log.leaf_record(leaf),
        leaf_index=leaf.leaf_index,
        inclusion_proof=inclusion_proof(nodes, leaf.leaf_index, checkpoint.tree_size),
    )


def _reader(store: EvidenceStore, ref: EvidenceRef) -> ChunkSource:
    def chunks() -> Iterable[bytes]:
        def stream() -> Iterator[bytes]:
            with store.open(ref) as reader:
                yield from reader
        return stream()

    return chunks


def case_summary(detail: CaseDetail) -> dict[str, Any]:
    case, merchant = detail.case, detail.merchant
    try:
        legal_basis = ALERT_TYPES[AlertType(case.alert_type)].legal_basis
    except ValueError:
        legal_basis = ""
    return {
        "case_id": case.case_id,
        "case_number": case.case_id,
        "cause": f"{alert_type_label(case.alert_type)}（{legal_basis}）" if legal_basis else alert_type_label(
            case.alert_type),
        "alert_type": case.alert_type,
        "status": case.status,
        "opened_at": case.opened_at.astimezone(UTC).isoformat(),
        "closed_at": None if case.closed_at is None else case.closed_at.astimezone(UTC).isoformat(),
        "street_office": detail.street_office.name,
        "merchant": {"name": merchant.name, "credit_code": merchant.credit_code, "address": merchant.address},
        "alerts": [{"event_id": item.alert.event_id, "alert_type": item.alert.alert_type,
                    "captured_at": item.alert.captured_at.astimezone(UTC).isoformat(), "source": item.alert.source}
                   for item in detail.alerts],
    }
