"""EvidenceRef: where evidence lies and what it must hash to.

It lives in the domain (no storage client) because it travels in workflow and activity payloads.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from domain.evidence.models import Evidence


@dataclass(frozen=True)
class EvidenceRef:
    """Where evidence lies and what it must hash to: small and JSON-able, for workflow payloads."""

    evidence_id: uuid.UUID
    bucket: str
    key: str
    version_id: str | None
    sha256: str
    sm3: str
    size: int
    content_type: str
    stored_at: datetime

    def to_payload(self) -> dict[str, Any]:
        payload = asdict(self)
        payload["evidence_id"] = str(self.evidence_id)
        payload["stored_at"] = self.stored_at.isoformat()
        return payload

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> EvidenceRef:
        return cls(
            evidence_id=uuid.UUID(str(payload["evidence_id"])),
            bucket=str(payload["bucket"]),
            key=str(payload["key"]),
            version_id=None if payload.get("version_id") is None else str(payload["version_id"]),
            sha256=str(payload["sha256"]),
            sm3=str(payload["sm3"]),
            size=int(payload["size"]),
            content_type=str(payload["content_type"]),
            stored_at=datetime.fromisoformat(str(payload["stored_at"])),
        )

    @classmethod
    def from_record(cls, evidence: Evidence) -> EvidenceRef:
        return cls(
            evidence_id=evidence.id,
            bucket=evidence.bucket,
            key=evidence.key,
            version_id=evidence.version_id,
            sha256=evidence.sha256,
            sm3=evidence.sm3,
            size=evidence.size,
            content_type=evidence.content_type,
            stored_at=evidence.stored_at,
        )
