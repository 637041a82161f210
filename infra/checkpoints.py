"""Issuing checkpoints of the evidence transparency log: evidence recorded before the log existed is appended, the
custody chain's head is signed along, and the note is time-stamped by the configured RFC 3161 authority.

Used by the periodic Temporal Schedule (every ``checkpoint_every_minutes`` when the tree grew; it also appends
evidence recorded before the log existed, until none is left), by
``POST /api/v1/transparency/checkpoint`` (on demand) and before an evidence bundle is built (its proofs need a
checkpoint that holds its records).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlmodel import Session

from domain.evidence.custody_chain import chain_head
from domain.transparency import log
from domain.transparency.models import CheckpointTimestamp, TransparencyCheckpoint
from domain.transparency.signed_note import NoteSigner
from domain.transparency.timestamping import Rfc3161Authority, TimestampAuthority
from infra.db import session_scope

logger = logging.getLogger("sunshine.transparency")


@dataclass(frozen=True)
class IssuedCheckpoint:
    checkpoint: TransparencyCheckpoint
    new: bool  # False: the tree had not grown, this is the latest one
    appended_missing: int = 0
    timestamped: bool = False


def custody_head(session: Session) -> log.CustodyHead | None:
    head = chain_head(session)
    return None if head is None else log.CustodyHead(seq=head[0], row_hash=head[1])


def authority_for(tsa_url: str | None) -> TimestampAuthority | None:
    return None if not tsa_url else Rfc3161Authority(tsa_url)


def issue_checkpoint(
    engine: Engine, *, signer: NoteSigner, origin: str, force: bool = False,
    authority: TimestampAuthority | None = None, tsa_url: str | None = None, backfill: bool = False,
) -> IssuedCheckpoint | None:
    """A new checkpoint when the tree grew (or ``force``), else the latest one; None while the log is empty.
    ``backfill`` first appends evidence recorded before the log existed (a scan of the evidence table: the
    scheduled run does it until nothing is left)."""
    with session_scope(engine) as session:
        appended = log.append_missing(session) if backfill else 0
        if log.tree_size(session) == 0 and not force:
            return None
        issued = log.issue_checkpoint(session, signer=signer, origin=origin, custody_head=custody_head(session),
                                      force=force)
        checkpoint = issued or log.latest_checkpoint(session)
    assert checkpoint is not None
    if issued is None:
        return IssuedCheckpoint(checkpoint, new=False, appended_missing=appended)
    logger.info("checkpoint %s: %d leaves", checkpoint.id, checkpoint.tree_size)
    stamped = False
    if authority is not None:
        stamped = _timestamp(engine, checkpoint, authority, tsa_url or "")
    return IssuedCheckpoint(checkpoint, new=True, appended_missing=appended, timestamped=stamped)


def _timestamp(engine: Engine, checkpoint: TransparencyCheckpoint, authority: TimestampAuthority,
               tsa_url: str) -> bool:
    """A failed stamp leaves the checkpoint valid (signed) and is logged; the next checkpoint is stamped anew."""
    assert checkpoint.id is not None
    try:
        token = authority.stamp(checkpoint.note.encode("utf-8"))
    except Exception as error:
        logger.warning("checkpoint %s: time-stamp authority failed: %s", checkpoint.id, error)
        return False
    with session_scope(engine) as session:
        session.add(CheckpointTimestamp(checkpoint_id=checkpoint.id, tsa_url=token.tsa_url or tsa_url,
                                        token=token.der, gen_time=token.gen_time,
                                        serial_number=str(token.serial_number)))
    return True
