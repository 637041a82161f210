"""Starting the enforcement hand-off (移交) as an independent workflow, so it outlives the case.

The case workflow calls ``start_handoff`` once when it transfers; the hand-off gets the deterministic id
``handoff-{case_id}`` and the REJECT_DUPLICATE reuse policy, so a retried activity (or a replayed case)
finds the hand-off already there and answers with its id instead of starting a second one.

The hand-off's input type and durable name live here (not in ``workflows/``) because this module must
not import workflow code: the case workflow imports it, and the hand-off workflow imports it too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from temporalio import activity
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

HANDOFF_WORKFLOW_NAME = "EnforcementHandoffWorkflow"


def handoff_workflow_id(case_id: str) -> str:
    return f"handoff-{case_id}"


@dataclass
class HandoffInput:
    """What the brigade receives: ids, the reason, who transferred, the advice, evidence references."""

    case_id: str
    merchant_id: int
    street_office_id: int
    camera_id: int
    alert_type: str
    reason: str
    transferred_by: str  # username
    transferred_by_role: str
    transferred_at: datetime
    transferred_by_user_id: int | None = None
    disposition: dict[str, Any] | None = None
    evidence: list[dict[str, Any]] = field(default_factory=list)  # EvidenceRef payloads (snapshots, photos)


@dataclass
class StartHandoffInput:
    handoff: HandoffInput
    task_queue: str | None = None  # default: the task queue of the calling activity


@dataclass
class StartHandoffOutput:
    handoff_id: str
    run_id: str | None
    already_started: bool


class HandoffActivities:
    def __init__(self, client: Client) -> None:
        self._client = client

    @activity.defn(name="start_handoff")
    async def start_handoff(self, request: StartHandoffInput) -> StartHandoffOutput:
        workflow_id = handoff_workflow_id(request.handoff.case_id)
        try:
            handle = await self._client.start_workflow(
                HANDOFF_WORKFLOW_NAME,
                request.handoff,
                id=workflow_id,
                task_queue=request.task_queue or activity.info().task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            )
        except WorkflowAlreadyStartedError as exc:
            # A retry of this activity, or a second transfer of the same case: the first hand-off stands.
            return StartHandoffOutput(handoff_id=workflow_id, run_id=exc.run_id, already_started=True)
        return StartHandoffOutput(handoff_id=workflow_id, run_id=handle.result_run_id, already_started=False)
