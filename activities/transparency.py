"""The periodic checkpoint of the evidence transparency log (``infra.checkpoints.issue_checkpoint``)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from temporalio import activity

from domain.transparency.signed_note import NoteSigner
from domain.transparency.timestamping import TimestampAuthority
from infra.checkpoints import issue_checkpoint


@dataclass
class IssueCheckpointInput:
    force: bool = False  # sign even when the tree has not grown (a fresh signature over the same state)


@dataclass
class IssueCheckpointOutput:
    issued: bool  # False: the tree had not grown (or the log is empty)
    tree_size: int = 0
    checkpoint_id: int | None = None
    appended_missing: int = 0  # evidence recorded before the log existed, appended now
    timestamped: bool = False


class TransparencyActivities:
    def __init__(self, engine: Engine, signer: NoteSigner, *, origin: str,
                 authority: TimestampAuthority | None = None, tsa_url: str | None = None) -> None:
        self._engine = engine
        self._signer = signer
        self._origin = origin
        self._authority = authority
        self._tsa_url = tsa_url
        self._backfilled = False  # evidence from before the log: appended until a run finds none

    @activity.defn(name="issue_checkpoint")
    def issue_checkpoint(self, request: IssueCheckpointInput) -> IssueCheckpointOutput:
        issued = issue_checkpoint(self._engine, signer=self._signer, origin=self._origin, force=request.force,
                                  authority=self._authority, tsa_url=self._tsa_url, backfill=not self._backfilled)
        if issued is None:
            return IssueCheckpointOutput(issued=False)
        self._backfilled = self._backfilled or issued.appended_missing == 0
        return IssueCheckpointOutput(issued=issued.new, tree_size=issued.checkpoint.tree_size,
                                     checkpoint_id=issued.checkpoint.id, appended_missing=issued.appended_missing,
                                     timestamped=issued.timestamped)
