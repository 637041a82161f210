"""The Temporal Schedules of the platform, created or brought up to date on every worker start.

- ``<prefix>certificate-check-daily``: ``DailyCertificateCheckWorkflow`` at 06:00 Asia/Shanghai (before shops
  open: the day's reminders and lapses are in the queue when people start work). Catch-up window 1 day: after
  an outage the missed check runs once, late, rather than never.
- ``<prefix>pending-alert-sweep``: ``PendingAlertSweepWorkflow`` every 5 minutes, delivering alerts stored
  while Temporal could not be reached whose senders never retried. Catch-up window 5 minutes.
- ``<prefix>history-export-recent``: ``HistoryExportWorkflow`` every 5 minutes, exporting the histories of cases
  (and hand-offs) closed in the last hour for auditors. Catch-up window 5 minutes.
- ``<prefix>history-export-nightly``: ``HistoryExportWorkflow`` at 02:30 Asia/Shanghai (quiet hours), exporting
  every closed one not exported yet, before Temporal's retention deletes it. Catch-up window 1 day.
- ``<prefix>transparency-checkpoint``: ``TransparencyCheckpointWorkflow`` every ``checkpoint_every_minutes``
  (default 5), signing a checkpoint of the evidence log when it grew. Catch-up window: one interval.

All skip a start while the previous run is still going (overlap SKIP). ``ensure_schedules`` is idempotent and
safe to race: it creates a missing schedule, and otherwise updates spec, action and policy to what this code
says, keeping the schedule's state (an operator's pause and its note survive a worker restart).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleCalendarSpec,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from activities.transparency import IssueCheckpointInput
from workflows.history_export import HistoryExportInput, HistoryExportWorkflow
from workflows.scheduled_checks import (
    DailyCertificateCheckInput,
    DailyCertificateCheckWorkflow,
    PendingAlertSweepInput,
    PendingAlertSweepWorkflow,
)

log = logging.getLogger("sunshine.schedules")

DEFAULT_ID_PREFIX = "sunshine-"
CERTIFICATE_CHECK = "certificate-check-daily"
PENDING_ALERT_SWEEP = "pending-alert-sweep"
HISTORY_EXPORT_RECENT = "history-export-recent"
HISTORY_EXPORT_NIGHTLY = "history-export-nightly"
TRANSPARENCY_CHECKPOINT = "transparency-checkpoint"
DEFAULT_CHECKPOINT_EVERY = timedelta(minutes=5)
TIME_ZONE = "Asia/Shanghai"
CERTIFICATE_CHECK_HOUR = 6
SWEEP_EVERY = timedelta(minutes=5)
HISTORY_EXPORT_EVERY = timedelta(minutes=5)
HISTORY_EXPORT_WINDOW_MINUTES = 60  # twelve runs' worth: a few missed runs lose nothing
HISTORY_EXPORT_NIGHTLY_AT = (2, 30)


def desired_schedules(task_queue: str, *, id_prefix: str = DEFAULT_ID_PREFIX,
                      checkpoint_every: timedelta = DEFAULT_CHECKPOINT_EVERY) -> dict[str, Schedule]:
    """Schedule id → the schedule as this code wants it."""
    from workflows.transparency_checkpoint import TransparencyCheckpointWorkflow

    nightly_hour, nightly_minute = HISTORY_EXPORT_NIGHTLY_AT
    schedules: list[tuple[str, Any, Any, timedelta, str, timedelta | ScheduleCalendarSpec]] = [
        (CERTIFICATE_CHECK, DailyCertificateCheckWorkflow.run, DailyCertificateCheckInput(), timedelta(hours=6),
         "每日证照到期检查", _daily(CERTIFICATE_CHECK_HOUR, 0)),
        (PENDING_ALERT_SWEEP, PendingAlertSweepWorkflow.run, PendingAlertSweepInput(), timedelta(minutes=15),
         "补投递未送达的预警", SWEEP_EVERY),
        (HISTORY_EXPORT_RECENT, HistoryExportWorkflow.run,
         HistoryExportInput(closed_within_minutes=HISTORY_EXPORT_WINDOW_MINUTES, task_queue=task_queue),
         timedelta(minutes=30), "导出近期结案的工作流历史", HISTORY_EXPORT_EVERY),
        (HISTORY_EXPORT_NIGHTLY, HistoryExportWorkflow.run,
         HistoryExportInput(closed_within_minutes=None, task_queue=task_queue), timedelta(hours=6),
         "导出全部未导出的工作流历史", _daily(nightly_hour, nightly_minute)),
        (TRANSPARENCY_CHECKPOINT, TransparencyCheckpointWorkflow.run, IssueCheckpointInput(), timedelta(minutes=10),
         "签发证据日志检查点", checkpoint_every),
    ]
    return {
        id_prefix + name: _schedule(id_prefix + name, task_queue, run, argument, timeout, summary, when)
        for name, run, argument, timeout, summary, when in schedules
    }


def _daily(hour: int, minute: int) -> ScheduleCalendarSpec:
    return ScheduleCalendarSpec(hour=[ScheduleRange(hour)], minute=[ScheduleRange(minute)],
                                comment=f"{hour:02d}:{minute:02d} Beijing time, every day")


def _schedule(schedule_id: str, task_queue: str, run: Any, argument: Any, timeout: timedelta, summary: str,
              when: timedelta | ScheduleCalendarSpec) -> Schedule:
    """Every interval (catch-up: one interval) or at a time of day (catch-up: a day); overlap SKIP."""
    if isinstance(when, timedelta):
        spec = ScheduleSpec(intervals=[ScheduleIntervalSpec(every=when)], time_zone_name=TIME_ZONE)
        catchup = when
    else:
        spec = ScheduleSpec(calendars=[when], time_zone_name=TIME_ZONE)
        catchup = timedelta(days=1)
    return Schedule(
        action=ScheduleActionStartWorkflow(run, argument, id=schedule_id,  # the server appends the scheduled time
                                           task_queue=task_queue, execution_timeout=timeout, static_summary=summary),
        spec=spec,
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=catchup),
        state=ScheduleState(note="managed by the Sunshine worker (infra/schedules.py)"),
    )


async def ensure_schedules(client: Client, task_queue: str, *, id_prefix: str = DEFAULT_ID_PREFIX,
                           checkpoint_every: timedelta = DEFAULT_CHECKPOINT_EVERY) -> list[str]:
    """Create the schedules, or update existing ones to this code's definition; returns their ids."""
    schedules = desired_schedules(task_queue, id_prefix=id_prefix, checkpoint_every=checkpoint_every)
    for schedule_id, schedule in schedules.items():
        try:
            await client.create_schedule(schedule_id, schedule)
            log.info("schedule %s created (task queue %s)", schedule_id, task_queue)
        except ScheduleAlreadyRunningError:
            await client.get_schedule_handle(schedule_id).update(_keeping_state(schedule))
            log.info("schedule %s updated (task queue %s)", schedule_id, task_queue)
    return list(schedules)


def _keeping_state(schedule: Schedule) -> Callable[[ScheduleUpdateInput], ScheduleUpdate]:
    def updater(current: ScheduleUpdateInput) -> ScheduleUpdate:
        return ScheduleUpdate(schedule=dataclasses.replace(schedule, state=current.description.schedule.state))

    return updater
