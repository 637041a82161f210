"""HistoryExportWorkflow: one pass of the closed-history export, started by the history-export schedules.

A small wrapper around one activity (``HistoryExportActivities.export_closed_histories``); the schedules say which
pass: recently closed executions every few minutes, every not-yet-exported one nightly. Durable names are
contracts: change them only with a patch and replay tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.history_export import ExportClosedInput, ExportClosedOutput, HistoryExportActivities

__all__ = ["HISTORY_EXPORT_WORKFLOW", "ExportClosedOutput", "HistoryExportInput", "HistoryExportWorkflow"]

HISTORY_EXPORT_WORKFLOW = "HistoryExportWorkflow"

# Each export is idempotent (a run exported already is skipped): an attempt may simply run again.
EXPORT_ACTIVITY_TIMEOUT = timedelta(hours=2)
EXPORT_HEARTBEAT_TIMEOUT = timedelta(minutes=2)  # one history is fetched and stored well within this
EXPORT_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=10), maximum_interval=timedelta(minutes=5), maximum_attempts=5
)


@dataclass
class HistoryExportInput:
    closed_within_minutes: int | None = 60  # None: every closed execution not exported yet (the nightly pass)
    task_queue: str | None = None  # only executions of this task queue (the schedule passes the worker's own)
    limit: int = 1000


@workflow.defn(name=HISTORY_EXPORT_WORKFLOW)
class HistoryExportWorkflow:
    @workflow.run
    async def run(self, request: HistoryExportInput) -> ExportClosedOutput:
        minutes = request.closed_within_minutes
        window = "全部未导出" if minutes is None else f"近 {minutes} 分钟结案"
        return await workflow.execute_activity_method(
            HistoryExportActivities.export_closed_histories,
            ExportClosedInput(
                closed_within_minutes=request.closed_within_minutes, task_queue=request.task_queue,
                limit=request.limit,
            ),
            start_to_close_timeout=EXPORT_ACTIVITY_TIMEOUT,
            heartbeat_timeout=EXPORT_HEARTBEAT_TIMEOUT,
            retry_policy=EXPORT_RETRY,
            summary=f"导出工作流历史（{window}）",
        )
