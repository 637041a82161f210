"""The vision worker: watches the cameras on task queue "vision" (``CameraWatchWorkflow`` and ``watch_camera``).

`python -m infra.vision_worker` (started by `sunshine up` after the casework worker; run several for more
cameras and for failover). It waits for Temporal, polls, and keeps the watches in line with the camera table:
``sync_camera_watches`` runs once at start-up (before the ready file is written) and then every ``SYNC_EVERY``.
Every vision worker runs the sync; that is harmless (it is idempotent) and cheap (one visibility query, plus one
call per camera whose watch is missing or no longer wanted). A Temporal Schedule would need a workflow and an
activity of its own for the same effect, so none is used.

Alerts go through ``infra.intake.AlertIntake`` (the path of ``POST /api/v1/alerts``) into the case workflows of
the casework queue. On SIGINT/SIGTERM the running watches fail on purpose (``WorkerShutdown``) and are retried on
another vision worker at once (measured: 60 watches handed back in < 2 s); the process exits within
``SHUTDOWN_LIMIT_SECONDS`` even when Temporal is stopping at the same time. A killed worker's watches move after
their heartbeat timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import signal
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, true
from sqlmodel import Session, col, select
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from domain.merchants.models import Camera
from infra.db import make_engine
from infra.settings import Settings, get_settings
from infra.worker import _connect_with_retry
from workflows.camera_watch_types import (
    SIGNAL_STOP,
    WORKFLOW_NAME,
    CameraWatchInput,
    StopWatchInput,
    WatchOptions,
    camera_id_of_watch,
    camera_watch_workflow_id,
)

if TYPE_CHECKING:
    from activities.camera_watch import CameraSettings
    from vision.pipeline import PipelineConfig

log = logging.getLogger("sunshine.vision_worker")

READY_FILE_ENV = "SUNSHINE_VISION_WORKER_READY_FILE"
SYNC_EVERY = timedelta(minutes=2)
SYNC_JITTER = 0.2  # ± fraction of SYNC_EVERY, so that several workers do not sync in step
SYNC_CONCURRENCY = 16
# After SIGINT/SIGTERM the watches fail at once (WorkerShutdown) and the worker reports that to Temporal. When
# Temporal is stopping too (`sunshine up` stops every child at once) those reports are retried for many seconds:
# past this limit the process exits anyway (the server then times the attempts out by their heartbeat).
SHUTDOWN_LIMIT_SECONDS = 4.0
SYNC_STOP_REASON = "camera_disabled"
SYNC_ACTOR = "system:vision-sync"


@dataclass(frozen=True)
class SyncResult:
    enabled: int  # enabled cameras in the database
    running: int  # watches found running on the task queue (before this sync)
    started: int  # watches requested for enabled cameras without a running one (an existing one is kept)
    stopped: int  # stop signals sent to watches of cameras that are switched off or gone


async def sync_camera_watches(
    client: Client, engine: Engine, *, task_queue: str, options: WatchOptions | None = None
) -> SyncResult:
    """Start a watch for every enabled camera that has none, and stop the watches of the others.

    Idempotent and safe to race (several vision workers run it): the start uses the camera's workflow id with
    ``USE_EXISTING``, so a watch that is already running (anywhere in the namespace) is left as it is; a stop sent to
    a watch that has ended meanwhile is ignored. A watch that ended (camera switched off) is started anew once the
    camera is enabled again. Visibility is eventually consistent: a watch started a moment ago may be started
    again here, which ``USE_EXISTING`` makes a no-op.
    """
    enabled = await asyncio.to_thread(_enabled_camera_ids, engine)
    running = await _running_watches(client, task_queue)
    to_start = sorted(enabled - running)
    to_stop = sorted(running - enabled)
    slots = asyncio.Semaphore(SYNC_CONCURRENCY)

    async def start(camera_id: int) -> None:
        async with slots:
            with contextlib.suppress(WorkflowAlreadyStartedError):  # started concurrently by another sync
                await client.start_workflow(
                    WORKFLOW_NAME,
                    CameraWatchInput(camera_id=camera_id, options=options or WatchOptions()),
                    id=camera_watch_workflow_id(camera_id),
                    task_queue=task_queue,
                    id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                    id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                    static_summary=f"摄像头 {camera_id} 视频分析",
                )

    async def stop(camera_id: int) -> None:
        async with slots:
            try:
                await client.get_workflow_handle(camera_watch_workflow_id(camera_id)).signal(
                    SIGNAL_STOP, StopWatchInput(reason=SYNC_STOP_REASON, by=SYNC_ACTOR)
                )
            except RPCError as error:
                if error.status != RPCStatusCode.NOT_FOUND:  # NOT_FOUND: it ended meanwhile
                    raise

    async with asyncio.TaskGroup() as group:
        for camera_id in to_start:
            group.create_task(start(camera_id))
        for camera_id in to_stop:
            group.create_task(stop(camera_id))
    result = SyncResult(enabled=len(enabled), running=len(running), started=len(to_start), stopped=len(to_stop))
    if to_start or to_stop:
        log.info("camera watches synced on %s: %s", task_queue, result)
    return result


def _enabled_camera_ids(engine: Engine) -> set[int]:
    with Session(engine) as session:
        return {camera_id for camera_id in session.exec(select(Camera.id).where(col(Camera.enabled) == true()))
                if camera_id is not None}


async def _running_watches(client: Client, task_queue: str) -> set[int]:
    if "'" in task_queue or '"' in task_queue:
        raise ValueError(f"task queue name {task_queue!r} must not contain quotes")
    query = f"WorkflowType = '{WORKFLOW_NAME}' AND ExecutionStatus = 'Running' AND TaskQueue = '{task_queue}'"
    running = set()
    async for execution in client.list_workflows(query):
        camera_id = camera_id_of_watch(execution.id)
        if camera_id is not None:
            running.add(camera_id)
    return running


# ---------------------------------------------------------------------------------------------------------
# The worker


def default_identity() -> str:
    """The worker identity Temporal shows (pending activities' ``last_worker_identity``, heartbeat ``worker``)."""
    return f"{os.getpid()}@{socket.gethostname()}:vision"


def build_vision_worker(
    client: Client,
    settings: Settings,
    *,
    engine: Engine | None = None,
    task_queue: str | None = None,
    identity: str | None = None,
    pipeline_config: Callable[[CameraSettings], PipelineConfig] | None = None,  # tests tune the checks
) -> Worker:
    from activities.camera_watch import CameraWatchActivities, default_pipeline_config
    from infra.evidence_store import EvidenceStore
    from infra.intake import AlertIntake
    from workflows.camera_watch import CameraWatchWorkflow

    engine = engine or make_engine(settings.effective_database_url)
    identity = identity or default_identity()

    async def this_client() -> Client:
        return client

    evidence_store = EvidenceStore.from_settings(settings, engine)
    intake = AlertIntake(
        engine=engine,
        evidence_store=evidence_store,
        temporal_client_factory=this_client,
        task_queue=settings.temporal_task_queue,  # the case workflows' queue
    )
    watches = CameraWatchActivities(engine, intake, identity=identity, evidence_store=evidence_store,
                                    pipeline_config=pipeline_config or default_pipeline_config)
    return Worker(
        client,
        task_queue=task_queue or settings.vision_task_queue,
        workflows=[CameraWatchWorkflow],
        activities=[watches.watch_camera],
        # Each watch holds one slot (and one thread) for as long as it runs: the cameras per worker.
        max_concurrent_activities=settings.vision_max_cameras,
        identity=identity,
        graceful_shutdown_timeout=timedelta(seconds=5),
    )


async def _sync_periodically(client: Client, engine: Engine, task_queue: str) -> None:
    while True:
        every = SYNC_EVERY.total_seconds()
        await asyncio.sleep(every * (1 + SYNC_JITTER * (2 * random.random() - 1)))  # noqa: S311 - jitter
        try:
            await sync_camera_watches(client, engine, task_queue=task_queue)
        except Exception:
            log.exception("camera watch sync failed; next try in %s", SYNC_EVERY)


async def run_vision_worker(settings: Settings) -> None:
    client = await _connect_with_retry(settings)
    engine = make_engine(settings.effective_database_url)
    task_queue = settings.vision_task_queue
    identity = default_identity()
    worker = build_vision_worker(client, settings, engine=engine, identity=identity)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with worker:
            try:
                result = await sync_camera_watches(client, engine, task_queue=task_queue)
                log.info("camera watches: %d enabled camera(s), %d started, %d stopped", result.enabled,
                         result.started, result.stopped)
            except Exception:
                log.exception("camera watch sync failed at start-up; next try in %s", SYNC_EVERY)
            ready_file = os.environ.get(READY_FILE_ENV)
            if ready_file:
                Path(ready_file).write_text(str(os.getpid()))
            log.info("vision worker %s polling task queue %s", identity, task_queue)
            syncing = asyncio.create_task(_sync_periodically(client, engine, task_queue))
            try:
                await stop.wait()
            finally:
                syncing.cancel()
                _exit_after(SHUTDOWN_LIMIT_SECONDS)
    finally:
        engine.dispose()


def _exit_after(seconds: float) -> None:
    """Make sure the process ends within ``seconds`` even when Temporal no longer answers."""

    def exit_now() -> None:
        log.warning("vision worker: shutdown not finished within %.0f s (Temporal unreachable?); exiting", seconds)
        for handler in logging.getLogger().handlers:
            handler.flush()
        os._exit(0)

    timer = threading.Timer(seconds, exit_now)
    timer.daemon = True  # a finished shutdown ends the process without waiting for it
    timer.start()


def main() -> None:
    settings = get_settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    asyncio.run(run_vision_worker(settings))


if __name__ == "__main__":
    main()
