"""The evidence transparency log in PostgreSQL: append a record, read proofs, issue signed checkpoints.

Each Evidence record is appended, as canonical JSON, in the transaction that creates it (so there is no record
without a leaf, and no leaf without a record). Appends are serialised by a transaction-level advisory lock,
taken last in that transaction (after the upload), so it is held only until the commit that follows.
Perfect-subtree hashes are stored as they complete: a root or proof reads O(log n) nodes in one query.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, text, tuple_
from sqlmodel import Session, col, select

from domain.errors import NotFound, ValidationFailed
from domain.evidence.models import Evidence
from domain.transparency.canonical import canonical_json
from domain.transparency.merkle import (
    NodeId,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    nodes_completed_by_append,
    root_hash,
    verify_consistency,
)
from domain.transparency.models import TransparencyCheckpoint, TransparencyLeaf, TransparencyNode
from domain.transparency.signed_note import Checkpoint, NoteSigner

LEAF_FORMAT = "sunshine-evidence/1"
# pg_advisory_xact_lock key of the log ("tlog" in ASCII)
LOG_LOCK = 0x746C6F67
CUSTODY_EXTENSION = "custody"  # checkpoint extension line: "custody <seq> <row hash>", the chain's head


def evidence_leaf_record(evidence: Evidence) -> dict[str, Any]:
    """What the log commits to about one piece of evidence: both digests, where and how long it is kept, capture
    metadata, collection method and its source (camera, device, model name/version/sha256, boxes, uploader)."""
    return {
        "format": LEAF_FORMAT,
        "evidence_id": str(evidence.id),
        "sha256": evidence.sha256,
        "sm3": evidence.sm3,
        "size": evidence.size,
        "content_type": evidence.content_type,
        "collection_method": evidence.collection_method,
        "captured_at": _iso(evidence.captured_at),
        "stored_at": _iso(evidence.stored_at),
        "bucket": evidence.bucket,
        "key": evidence.key,
        "version_id": evidence.version_id,
        "retention_mode": evidence.retention_mode,
        "retain_until": _iso(evidence.retain_until),
        "source": evidence.source,
    }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


class DatabaseNodes:
    """``merkle.NodeReader`` over the node table: one query per root or proof."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def get_nodes(self, ids: Sequence[NodeId]) -> Mapping[NodeId, bytes]:
        if not ids:
            return {}
        rows = self._session.exec(
            select(TransparencyNode.level, TransparencyNode.node_index, TransparencyNode.hash).where(
                tuple_(col(TransparencyNode.level), col(TransparencyNode.node_index)).in_(list(ids)))
        ).all()
        return {(level, index): bytes(hash_) for level, index, hash_ in rows}


def tree_size(session: Session) -> int:
    latest = session.exec(select(func.max(TransparencyLeaf.leaf_index))).one()
    return 0 if latest is None else int(latest) + 1


def append_leaf(session: Session, evidence: Evidence) -> TransparencyLeaf:
    """Append the record of ``evidence`` (flushed, in the caller's transaction); its leaf if already there."""
    existing = session.exec(select(TransparencyLeaf).where(TransparencyLeaf.evidence_id == evidence.id)).first()
    if existing is not None:
        return existing
    session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOG_LOCK})
    index = tree_size(session)
    data = canonical_json(evidence_leaf_record(evidence))
    leaf = TransparencyLeaf(leaf_index=index, evidence_id=evidence.id, leaf_hash=leaf_hash(data), data=data)
    completed = nodes_completed_by_append(index)
    left_siblings = [(level - 1, 2 * node_index) for level, node_index in completed if level > 0]
    known = dict(DatabaseNodes(session).get_nodes(left_siblings))
    hashes: dict[NodeId, bytes] = {}
    for level, node_index in completed:
        if level == 0:
            hashes[(0, node_index)] = leaf.leaf_hash
        else:
            hashes[(level, node_index)] = node_hash(known[(level - 1, 2 * node_index)],
                                                    hashes[(level - 1, 2 * node_index + 1)])
    session.add(leaf)
    session.add_all(TransparencyNode(level=level, node_index=node_index, hash=value)
                    for (level, node_index), value in hashes.items())
    session.flush()
    return leaf


def append_missing(session: Session, *, limit: int = 10_000) -> int:
    """Append evidence recorded before the log existed, oldest first; how many were appended."""
    missing = session.exec(
        select(Evidence).where(~col(Evidence.id).in_(select(TransparencyLeaf.evidence_id)))
        .order_by(col(Evidence.created_at), col(Evidence.id)).limit(limit)
    ).all()
    for evidence in missing:
        append_leaf(session, evidence)
    return len(missing)


def leaf_of(session: Session, evidence_id: uuid.UUID) -> TransparencyLeaf:
    leaf = session.exec(select(TransparencyLeaf).where(TransparencyLeaf.evidence_id == evidence_id)).first()
    if leaf is None:
        raise NotFound(f"evidence {evidence_id} is not in the transparency log")
    return leaf


def leaf_record(leaf: TransparencyLeaf) -> dict[str, Any]:
    record: dict[str, Any] = json.loads(bytes(leaf.data))
    return record


# Proofs


def check_proof_arguments(*, size: int, **indexes: int) -> None:
    if size < 1:
        raise ValidationFailed("tree_size must be at least 1")
    for name, value in indexes.items():
        if value < 0:
            raise ValidationFailed(f"{name} must not be negative")


def inclusion(session: Session, *, leaf_index: int, size: int) -> list[bytes]:
    check_proof_arguments(size=size, leaf_index=leaf_index)
    current = tree_size(session)
    if size > current:
        raise ValidationFailed(f"tree_size {size} is larger than the log ({current} leaves)")
    if leaf_index >= size:
        raise ValidationFailed(f"leaf_index {leaf_index} is not in a tree of {size} leaves")
    return inclusion_proof(DatabaseNodes(session), leaf_index, size)


def consistency(session: Session, *, first: int, second: int) -> list[bytes]:
    check_proof_arguments(size=second, first=first)
    current = tree_size(session)
    if second > current:
        raise ValidationFailed(f"second {second} is larger than the log ({current} leaves)")
    if not 1 <= first <= second:
        raise ValidationFailed("first must lie between 1 and second")
    return consistency_proof(DatabaseNodes(session), first, second)


# Checkpoints


@dataclass(frozen=True)
class CustodyHead:
    seq: int
    row_hash: str


def latest_checkpoint(session: Session) -> TransparencyCheckpoint | None:
    return session.exec(
        select(TransparencyCheckpoint).order_by(col(TransparencyCheckpoint.id).desc()).limit(1)
    ).first()


def issue_checkpoint(
    session: Session, *, signer: NoteSigner, origin: str, custody_head: CustodyHead | None = None,
    force: bool = False, now: datetime | None = None,
) -> TransparencyCheckpoint | None:
    """Sign the log's current size and root (and the custody chain's head), if the tree grew since the latest
    checkpoint or ``force``; None when there was nothing new. Before signing, the new tree is proved consistent
    with the latest checkpoint: a rewritten node table refuses to be signed."""
    session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOG_LOCK})
    size = tree_size(session)
    latest = latest_checkpoint(session)
    if latest is not None and latest.tree_size == size and not force:
        return None
    nodes = DatabaseNodes(session)
    root = root_hash(nodes, size)
    if latest is not None and 0 < latest.tree_size <= size:
        verify_consistency(latest.tree_size, size, bytes(latest.root_hash), root,
                           consistency_proof(nodes, latest.tree_size, size) if latest.tree_size < size else [])
    extensions = () if custody_head is None else (f"{CUSTODY_EXTENSION} {custody_head.seq} {custody_head.row_hash}",)
    body = Checkpoint(origin=origin, size=size, root_hash=root, extensions=extensions).body()
    checkpoint = TransparencyCheckpoint(tree_size=size, root_hash=root, note=signer.sign(body))
    if now is not None:
        checkpoint.issued_at = now
    session.add(checkpoint)
    session.flush()
    return checkpoint


def custody_anchors(session: Session) -> list[tuple[int, str]]:
    """The custody heads the signed checkpoints recorded: (seq, row hash)."""
    anchors = []
    for note in session.exec(select(TransparencyCheckpoint.note)):
        body = note.split("\n\n", 1)[0] + "\n"  # the signed text; the signatures follow a blank line
        for line in Checkpoint.parse(body).extensions:
            name, seq, row_hash = [*line.split(" "), "", ""][:3]
            if name == CUSTODY_EXTENSION and seq.isdigit():
                anchors.append((int(seq), row_hash))
    return anchors


def root_base64(checkpoint: TransparencyCheckpoint) -> str:
    return base64.b64encode(bytes(checkpoint.root_hash)).decode()
