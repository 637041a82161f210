"""``TransparencyCheckpointWorkflow``: started by a Temporal Schedule every ``checkpoint_every_minutes``; signs a
checkpoint of the evidence log when it grew. Durable names are contracts."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.transparency import IssueCheckpointInput, IssueCheckpointOutput, TransparencyActivities

TRANSPARENCY_CHECKPOINT_WORKFLOW = "TransparencyCheckpointWorkflow"
ISSUE_TIMEOUT = timedelta(minutes=2)  # a TSA call is bounded by its own timeout inside
ISSUE_RETRY = RetryPolicy(initial_interval=timedelta(seconds=5), maximum_interval=timedelta(seconds=30),
                          maximum_attempts=3)  # the next run comes in a few minutes anyway


@workflow.defn(name=TRANSPARENCY_CHECKPOINT_WORKFLOW)
class TransparencyCheckpointWorkflow:
    @workflow.run
    async def run(self, request: IssueCheckpointInput) -> IssueCheckpointOutput:
        return await workflow.execute_activity_method(
            TransparencyActivities.issue_checkpoint, request, start_to_close_timeout=ISSUE_TIMEOUT,
            retry_policy=ISSUE_RETRY, summary="签发证据日志检查点")
