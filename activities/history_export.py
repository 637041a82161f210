"""Exporting closed case histories for auditors, run by the history-export schedules (``infra.schedules``).

The frequent run looks at executions closed recently (a window several times its interval, so a missed run or
two loses nothing); the nightly run looks at every closed execution Temporal still holds and exports those no
run has exported yet (after an outage longer than the window, before retention deletes them). Listing goes
through visibility; what is already exported is read from the ``workflow_history_export`` table in pages, so
each run exports only what is missing. A failed export is reported and left to the next run.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from temporalio import activity

from activities.handoffs import HANDOFF_WORKFLOW_NAME
from domain.base import utcnow
from infra.history_export import HistoryExporter
from workflows.alert_case_types import WORKFLOW_NAME as CASE_WORKFLOW_NAME

log = logging.getLogger("sunshine.history_export")

EXPORTED_WORKFLOW_TYPES = (CASE_WORKFLOW_NAME, HANDOFF_WORKFLOW_NAME)
# Visibility ids are checked against the table in pages of this size.
PAGE_SIZE = 200
_QUOTABLE = re.compile(r"[^'\"\\\n]*")


@dataclass
class ExportClosedInput:
    closed_within_minutes: int | None = 60  # None: every closed execution Temporal still holds (the nightly pass)
    task_queue: str | None = None  # only the executions of this task queue (the worker's own); None: every one
    limit: int = 1000  # exports per run at most; the next run goes on


@dataclass
class ExportClosedOutput:
    listed: int = 0  # closed executions visibility returned
    exported: int = 0
    already_exported: int = 0
    failed: list[str] = field(default_factory=list)  # workflow ids; the next run tries again


def closed_executions_query(*, closed_after: datetime | None, task_queue: str | None) -> str:
    types = " OR ".join(f"WorkflowType = '{name}'" for name in EXPORTED_WORKFLOW_TYPES)
    clauses = [f"({types})", "ExecutionStatus != 'Running'"]
    if closed_after is not None:
        clauses.append(f"CloseTime > '{closed_after.isoformat()}'")
    if task_queue is not None:
        if not _QUOTABLE.fullmatch(task_queue):
            raise ValueError(f"task queue {task_queue!r} cannot be quoted in a visibility query")
        clauses.append(f"TaskQueue = '{task_queue}'")
    return " AND ".join(clauses)


class HistoryExportActivities:
    def __init__(self, exporter: HistoryExporter) -> None:
        self._exporter = exporter

    @activity.defn(name="export_closed_histories")
    async def export_closed_histories(self, request: ExportClosedInput) -> ExportClosedOutput:
        closed_after = (
            None if request.closed_within_minutes is None
            else utcnow() - timedelta(minutes=request.closed_within_minutes)
        )
        query = closed_executions_query(closed_after=closed_after, task_queue=request.task_queue)
        output = ExportClosedOutput()
        page: list[tuple[str, str]] = []
        async for execution in self._exporter.client.list_workflows(query, page_size=PAGE_SIZE):
            output.listed += 1
            page.append((execution.id, execution.run_id))
            if len(page) >= PAGE_SIZE:
                await self._export_page(page, output, request.limit)
                page = []
            if output.exported + len(output.failed) >= request.limit:
                break
        await self._export_page(page, output, request.limit)
        if output.failed:
            log.warning("history export: %d failed (%s); the next run tries again", len(output.failed),
                        ", ".join(output.failed[:10]))
        return output

    async def _export_page(self, page: list[tuple[str, str]], output: ExportClosedOutput, limit: int) -> None:
        if not page:
            return
        exported = await asyncio.to_thread(self._exporter.archive.exported, [workflow_id for workflow_id, _ in page])
        for workflow_id, run_id in page:
            if workflow_id in exported:
                output.already_exported += 1
                continue
            if output.exported + len(output.failed) >= limit:
                return
            try:
                await self._exporter.export(workflow_id, run_id)
                output.exported += 1
            except Exception as error:  # one bad history must not stop the others; the next run retries it
                log.warning("history export of %s run %s failed: %s", workflow_id, run_id, error)
                output.failed.append(workflow_id)
            if activity.in_activity():
                activity.heartbeat(output.exported)
