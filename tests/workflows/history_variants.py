"""Two changed versions of AlertCaseWorkflow for the replay tests: the same workflow name, one more activity call
when the case starts — once behind ``workflow.patched`` (old histories replay), once not (they diverge).

A module of its own, with workflow imports only: the sandbox re-imports it for every replay, and it imports
``workflows.alert_case`` normally (not passed through), so that the subclass runs inside the sandbox like the
worker's own class does.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

from workflows.alert_case import WORKFLOW_NAME, AlertCaseWorkflow, CaseState, OpenCaseInput

PATCH_ID = "notify-auditors-on-open"
NOTIFY_AUDITORS = "notify_auditors"  # only ever replayed: no worker needs to run it
NOTIFY_TIMEOUT = timedelta(seconds=30)


@workflow.defn(name=WORKFLOW_NAME)
class PatchedAlertCaseWorkflow(AlertCaseWorkflow):
    @workflow.run
    async def run(self, request: OpenCaseInput) -> CaseState:
        if workflow.patched(PATCH_ID):
            await workflow.execute_activity(NOTIFY_AUDITORS, request.case_id, start_to_close_timeout=NOTIFY_TIMEOUT)
        return await super().run(request)


@workflow.defn(name=WORKFLOW_NAME)
class UnpatchedAlertCaseWorkflow(AlertCaseWorkflow):
    @workflow.run
    async def run(self, request: OpenCaseInput) -> CaseState:
        await workflow.execute_activity(NOTIFY_AUDITORS, request.case_id, start_to_close_timeout=NOTIFY_TIMEOUT)
        return await super().run(request)
