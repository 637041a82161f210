"""The casework worker: runs the case workflows and their activities on task queue "casework".

`python -m infra.worker` (started by `sunshine up`); waits for Temporal to be reachable, then polls
until SIGINT/SIGTERM, finishing in-flight activities gracefully.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlmodel import Session
from temporalio.client import Client
from temporalio.worker import Worker

from infra.clients import connect_temporal
from infra.db import make_engine
from infra.settings import Settings, get_settings

if TYPE_CHECKING:
    from activities.transparency import TransparencyActivities
    from infra.history_export import HistoryExporter
    from infra.intake import AlertIntake

log = logging.getLogger("sunshine.worker")

CONNECT_TIMEOUT_SECONDS = 60.0


# Sync activities (SQLAlchemy) run on a thread pool of this size; as many may run at once. Local activities (the
# case workflow's transition records, working-day deadlines, advice) run on the same pool.
ACTIVITY_THREADS = 16
# Open cases wait for days: keep many in the sticky cache so that an answer or a timer rarely replays a history.
MAX_CACHED_WORKFLOWS = 10_000


def casework_registrations(
    client: Client,
    session_factory: Callable[[], Session],
    intake: AlertIntake | None = None,
    history_exporter: HistoryExporter | None = None,
    transparency: TransparencyActivities | None = None,
) -> tuple[list[type], list[Any]]:
    """The workflows and activities of task queue "casework" (tests build their worker from the same lists).

    With ``intake``, also the scheduled checks (certificate expiry, pending-alert sweep), which raise alerts
    through it; with ``history_exporter``, the export of closed histories for auditors; with ``transparency``, the
    periodic checkpoint of the evidence log."""
    from activities.calendar import CalendarActivities
    from activities.cases import CaseActivities
    from activities.handoffs import HandoffActivities
    from workflows.alert_case import AlertCaseWorkflow
    from workflows.enforcement_handoff import EnforcementHandoffWorkflow

    calendar = CalendarActivities(session_factory)
    cases = CaseActivities(session_factory)
    handoffs = HandoffActivities(client)  # starts the hand-off workflow: needs the client
    workflows: list[type] = [AlertCaseWorkflow, EnforcementHandoffWorkflow]
    activities: list[Any] = [
        calendar.compute_deadline,
        cases.record_transition,  # the case workflow's projection + timeline + inbox (local activity)
        cases.project_case,
        cases.append_case_events,  # the hand-off workflow's timeline lines and notices
        cases.notify,
        cases.advise_disposition,
        cases.project_handoff,
        handoffs.start_handoff,
    ]
    if intake is not None:
        from activities.scheduled_checks import ScheduledCheckActivities
        from workflows.scheduled_checks import DailyCertificateCheckWorkflow, PendingAlertSweepWorkflow

        checks = ScheduledCheckActivities(session_factory, intake)
        workflows += [DailyCertificateCheckWorkflow, PendingAlertSweepWorkflow]
        activities += [checks.raise_certificate_alerts, checks.deliver_pending_alerts]
    if history_exporter is not None:
        from activities.history_export import HistoryExportActivities
        from workflows.history_export import HistoryExportWorkflow

        workflows.append(HistoryExportWorkflow)
        activities.append(HistoryExportActivities(history_exporter).export_closed_histories)
    if transparency is not None:
        from workflows.transparency_checkpoint import TransparencyCheckpointWorkflow

        workflows.append(TransparencyCheckpointWorkflow)
        activities.append(transparency.issue_checkpoint)
    return workflows, activities


def build_casework_worker(client: Client, settings: Settings) -> Worker:
    from activities.transparency import TransparencyActivities
    from infra.checkpoints import authority_for
    from infra.code_version import code_version
    from infra.evidence_store import EvidenceStore
    from infra.history_export import HistoryArchive, HistoryExporter
    from infra.intake import AlertIntake
    from infra.transparency_key import ensure_signer_key, load_signer

    engine = make_engine(settings.effective_database_url)

    async def this_client() -> Client:
        return client

    intake = AlertIntake(  # the scheduled checks raise alerts through the same intake as the API
        engine=engine,
        evidence_store=EvidenceStore.from_settings(settings, engine),
        temporal_client_factory=this_client,
        task_queue=settings.temporal_task_queue,
    )
    ensure_signer_key(settings)  # the exported histories' manifests are signed with it
    exporter = HistoryExporter(client, HistoryArchive.from_settings(settings, engine))
    tsa_url = None if settings.tsa_url is None else str(settings.tsa_url)
    transparency = TransparencyActivities(engine, load_signer(settings), origin=settings.transparency_origin,
                                          authority=authority_for(tsa_url), tsa_url=tsa_url)
    workflows, activities = casework_registrations(client, lambda: Session(engine), intake, exporter, transparency)
    return Worker(
        client,
        activity_executor=ThreadPoolExecutor(max_workers=ACTIVITY_THREADS),
        max_concurrent_activities=ACTIVITY_THREADS,
        max_concurrent_local_activities=ACTIVITY_THREADS,
        max_cached_workflows=MAX_CACHED_WORKFLOWS,
        task_queue=settings.temporal_task_queue,
        workflows=workflows,
        activities=activities,
        graceful_shutdown_timeout=timedelta(seconds=5),
        build_id=code_version(),  # recorded in every workflow task completed: the exported histories name the code
    )


async def _connect_with_retry(settings: Settings) -> Client:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + CONNECT_TIMEOUT_SECONDS
    while True:
        try:
            return await connect_temporal(settings)
        except Exception as exc:
            if loop.time() > deadline:
                raise RuntimeError(f"Temporal at {settings.effective_temporal_address} unreachable: {exc}") from exc
            await asyncio.sleep(1)


async def run_worker(settings: Settings) -> None:
    from infra.schedules import ensure_schedules

    client = await _connect_with_retry(settings)
    await ensure_schedules(client, settings.temporal_task_queue,
                           checkpoint_every=timedelta(minutes=settings.checkpoint_every_minutes))
    worker = build_casework_worker(client, settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with worker:
        ready_file = os.environ.get("SUNSHINE_WORKER_READY_FILE")
        if ready_file:
            Path(ready_file).write_text(str(os.getpid()))
        log.info("casework worker polling task queue %s", settings.temporal_task_queue)
        await stop.wait()


def main() -> None:
    settings = get_settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    asyncio.run(run_worker(settings))


if __name__ == "__main__":
    main()
