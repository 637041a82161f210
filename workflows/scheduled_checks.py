"""Workflows started by Temporal Schedules (``infra.schedules``): small wrappers around one activity each.

- ``DailyCertificateCheckWorkflow`` (06:00 Asia/Shanghai): raises certificate alerts for today's Beijing date.
- ``PendingAlertSweepWorkflow`` (every 5 minutes): delivers alerts stored while Temporal could not be reached.

"Today" is ``workflow.now()`` at +08:00 (a fixed offset: ``ZoneInfo`` does not work in the sandbox, and China
has no DST). Durable names are contracts: change them only with a patch and replay tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta, timezone

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.scheduled_checks import (
        DeliverPendingInput,
        DeliverPendingOutput,
        RaiseCertificateAlertsInput,
        RaiseCertificateAlertsOutput,
        ScheduledCheckActivities,
    )

__all__ = [
    "DAILY_CERTIFICATE_CHECK_WORKFLOW",
    "PENDING_ALERT_SWEEP_WORKFLOW",
    "DailyCertificateCheckInput",
    "DailyCertificateCheckWorkflow",
    "DeliverPendingOutput",
    "PendingAlertSweepInput",
    "PendingAlertSweepWorkflow",
    "RaiseCertificateAlertsOutput",
]

DAILY_CERTIFICATE_CHECK_WORKFLOW = "DailyCertificateCheckWorkflow"
PENDING_ALERT_SWEEP_WORKFLOW = "PendingAlertSweepWorkflow"
CST = timezone(timedelta(hours=8))

# The check is idempotent (one event id per certificate problem): an attempt may simply run again.
CHECK_ACTIVITY_TIMEOUT = timedelta(minutes=30)
CHECK_HEARTBEAT_TIMEOUT = timedelta(minutes=2)  # intake's delivery of one alert takes at most ~45 s
CHECK_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=10), maximum_interval=timedelta(minutes=5), maximum_attempts=10
)
SWEEP_ACTIVITY_TIMEOUT = timedelta(minutes=4)
SWEEP_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=5), maximum_interval=timedelta(seconds=30), maximum_attempts=3
)  # the next sweep comes in 5 minutes anyway


@dataclass
class DailyCertificateCheckInput:
    as_of_date: str | None = None  # ISO date; None: today in Beijing (what the schedule passes)


@dataclass
class PendingAlertSweepInput:
    older_than_seconds: int = 120
    limit: int = 100


@workflow.defn(name=DAILY_CERTIFICATE_CHECK_WORKFLOW)
class DailyCertificateCheckWorkflow:
    @workflow.run
    async def run(self, request: DailyCertificateCheckInput) -> RaiseCertificateAlertsOutput:
        as_of = request.as_of_date or workflow.now().astimezone(CST).date().isoformat()
        return await workflow.execute_activity_method(
            ScheduledCheckActivities.raise_certificate_alerts,
            RaiseCertificateAlertsInput(as_of_date=as_of),
            start_to_close_timeout=CHECK_ACTIVITY_TIMEOUT,
            heartbeat_timeout=CHECK_HEARTBEAT_TIMEOUT,
            retry_policy=CHECK_RETRY,
            summary=f"证照到期检查 {as_of}",
        )


@workflow.defn(name=PENDING_ALERT_SWEEP_WORKFLOW)
class PendingAlertSweepWorkflow:
    @workflow.run
    async def run(self, request: PendingAlertSweepInput) -> DeliverPendingOutput:
        return await workflow.execute_activity_method(
            ScheduledCheckActivities.deliver_pending_alerts,
            DeliverPendingInput(older_than_seconds=request.older_than_seconds, limit=request.limit),
            start_to_close_timeout=SWEEP_ACTIVITY_TIMEOUT,
            retry_policy=SWEEP_RETRY,
        )
