"""Appending to the hash-chained custody log, and checking the whole chain.

Every row commits to the row before it (``domain.transparency.custody_chain``). Appends take one transaction-level
advisory lock, so the chain has a single order (the row ids, assigned under the lock); the lock is held until the
caller's commit, which follows at once wherever custody is recorded. Ids may have gaps (a rolled-back append
consumes its id): the links, not the ids, show a removed row.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

from sqlalchemy import text
from sqlmodel import Session, col, select

from domain.base import utcnow
from domain.evidence.models import CustodyEvent
from domain.transparency.custody_chain import GENESIS_HASH, custody_row_hash

# pg_advisory_xact_lock key of the custody chain ("custody" in ASCII, as an int64)
CUSTODY_CHAIN_LOCK = 0x637573746F6479


def custody_fields(event: CustodyEvent) -> dict[str, Any]:
    """The row as its hash covers it (and as a bundle's manifest carries it)."""
    return {
        "seq": event.id,
        "evidence_id": str(event.evidence_id),
        "action": event.action,
        "at": event.at.astimezone(UTC).isoformat(),
        "actor": event.actor,
        "actor_role": event.actor_role,
        "unit": event.unit,
        "reason": event.reason,
        "detail": event.detail,
    }


def custody_row(event: CustodyEvent) -> dict[str, Any]:
    return {**custody_fields(event), "prev_hash": event.prev_hash, "row_hash": event.row_hash}


def chain_head(session: Session) -> tuple[int, str] | None:
    """The newest row's (seq, row hash); None while the log is empty."""
    row = session.exec(
        select(CustodyEvent.id, CustodyEvent.row_hash).where(col(CustodyEvent.row_hash).is_not(None))
        .order_by(col(CustodyEvent.id).desc()).limit(1)
    ).first()
    if row is None or row[0] is None or row[1] is None:
        return None
    return row[0], row[1]


def append_custody(session: Session, event: CustodyEvent) -> CustodyEvent:
    """Add ``event`` as the chain's newest row (flushed, not committed)."""
    session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CUSTODY_CHAIN_LOCK})
    head = chain_head(session)
    event.id = session.execute(text("SELECT nextval(pg_get_serial_sequence('custody_event', 'id'))")).scalar_one()
    event.at = (event.at or utcnow()).astimezone(UTC)
    event.prev_hash = GENESIS_HASH if head is None else head[1]
    event.row_hash = custody_row_hash(event.prev_hash, custody_fields(event))
    session.add(event)
    session.flush()
    return event


@dataclass
class CustodyChainReport:
    rows: int = 0
    head_seq: int | None = None
    head_hash: str | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_custody_chain(session: Session, *, anchors: Iterable[tuple[int, str]] = ()) -> CustodyChainReport:
    """Walk the whole log in order: every link and every row hash; ``anchors`` are (seq, row hash) pairs recorded
    elsewhere (the signed checkpoints): a row cut off the end of the chain, or a rewritten chain, misses them."""
    report = CustodyChainReport()
    expected_prev = GENESIS_HASH
    seen: dict[int, str] = {}
    wanted = dict(anchors)
    statement = select(CustodyEvent).order_by(col(CustodyEvent.id)).execution_options(yield_per=2000)
    for event in session.exec(statement):
        report.rows += 1
        label = f"custody #{event.id}"
        if event.prev_hash != expected_prev:
            report.problems.append(f"{label}: does not link to the row before it (a row was removed or inserted)")
        if event.row_hash != custody_row_hash(event.prev_hash or GENESIS_HASH, custody_fields(event)):
            report.problems.append(f"{label}: its fields do not match its hash (the row was edited)")
        expected_prev = event.row_hash or ""
        assert event.id is not None
        if event.id in wanted:
            seen[event.id] = event.row_hash or ""
        report.head_seq, report.head_hash = event.id, event.row_hash
    for seq, row_hash in sorted(wanted.items()):
        if seq not in seen:
            report.problems.append(f"custody #{seq}, named by a signed checkpoint, is missing (rows were removed)")
        elif seen[seq] != row_hash:
            report.problems.append(f"custody #{seq} differs from the hash a signed checkpoint recorded")
    return report
