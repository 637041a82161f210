"""Camera watches on real vision workers: the Temporal dev server, the test PostgreSQL, looping demo videos.

- the sync starts one CameraWatchWorkflow per enabled camera (idempotently) and stops the watch of a camera that
  is switched off; a watch also ends by itself when its camera is switched off;
- failover: a vision worker process killed with SIGKILL loses its camera to another vision worker process within
  the heartbeat timeout; a worker stopped with SIGTERM hands its watch back at once (WorkerShutdown);
- a covered lens during business hours becomes a camera_covered alert that intake delivers into a real
  AlertCaseWorkflow;
- the pure parts: business hours for the checks, deterministic event ids, the meta intake accepts.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select
from temporalio.api.enums.v1 import PendingActivityState
from temporalio.api.workflow.v1 import PendingActivityInfo
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.worker import Worker

from activities.camera_watch import (
    DEFAULT_BUSINESS_HOURS,
    ROUND_THE_CLOCK,
    CameraSettings,
    WatchCameraOutcome,
    alert_event_id,
    alert_submission,
    default_pipeline_config,
    watch_business_hours,
)
from domain.alerts.intake_rules import EVENT_ID_PATTERN, parse_alert_meta
from domain.cases.models import Alert
from domain.detectors.service import InspectedModel, register_model
from domain.merchants.models import Camera, Merchant, StreetOffice
from infra.evidence_store import EvidenceStore
from infra.settings import Settings
from infra.vision_worker import build_vision_worker, sync_camera_watches
from infra.worker import casework_registrations
from tests.fixtures.database import truncate_all
from tests.fixtures.s3 import SeaweedInstance
from tests.vision.models import planted_onnx
from tests.workflows.conftest import export_history
from vision import synthetic
from vision.detectors.inspect import inspect_model
from vision.pipeline import CameraAlert, PipelineConfig
from vision.tamper import TamperConfig
from vision.types import BusinessHours, Finding
from workflows.alert_case import AlertCaseWorkflow, CaseState
from workflows.camera_watch import (
    CameraWatchWorkflow,
    WatchOptions,
    WatchOutcome,
    WatchStatus,
    camera_watch_workflow_id,
)

REPO = Path(__file__).resolve().parents[2]
ROUND_THE_CLOCK_HOURS = [["00:00", "24:00"]]
# Fast enough for tests, same code paths as production.
FAST = WatchOptions(heartbeat_timeout_seconds=5.0, heartbeat_every_seconds=0.5, refresh_seconds=1.0, sample_fps=5.0)
DEADLINE = 30.0


# ---------------------------------------------------------------------------------------------------------
# Pure parts


def test_business_hours_for_the_checks_span_the_day_from_the_longest_closed_gap() -> None:
    assert watch_business_hours([]) == DEFAULT_BUSINESS_HOURS == BusinessHours(clock_time(8), clock_time(22))
    assert watch_business_hours([["10:00", "14:00"], ["17:00", "22:00"]]) == BusinessHours(clock_time(10),
                                                                                        clock_time(22))
    assert watch_business_hours([["18:00", "02:00"]]) == BusinessHours(clock_time(18), clock_time(2))
    assert watch_business_hours([["06:00", "09:00"], ["11:00", "01:30"]]) == BusinessHours(clock_time(6),
                                                                                        clock_time(1, 30))
    assert watch_business_hours(ROUND_THE_CLOCK_HOURS) == ROUND_THE_CLOCK
    assert ROUND_THE_CLOCK.is_open(clock_time(0, 0)) and ROUND_THE_CLOCK.is_open(clock_time(23, 59))
    assert watch_business_hours([["nonsense", "x"]]) == DEFAULT_BUSINESS_HOURS


def test_an_alert_becomes_meta_that_intake_accepts_with_a_deterministic_event_id() -> None:
    started = datetime(2026, 3, 2, 3, 15, 0, 123456, tzinfo=UTC)
    finding = Finding(alert_type="camera_covered", started_at=started, at=started + timedelta(seconds=60),
                      score=0.97, metrics={"reason": "dark and featureless", "mean": float("nan"), "n": 3})
    alert = CameraAlert(finding=finding, snapshot_jpeg=b"\xff\xd8\xff\xe0jpeg")
    submission = alert_submission(7, alert)
    meta = parse_alert_meta(submission.meta)
    assert meta.event_id == alert_event_id(7, "camera_covered", started) == (
        "vision:camera-7:camera_covered:20260302T031500.123456Z")
    assert EVENT_ID_PATTERN.fullmatch(meta.event_id)
    assert meta.captured_at == finding.at and meta.score == 0.97 and meta.camera_id == 7
    assert meta.detail is not None and meta.detail["metrics"] == {"reason": "dark and featureless", "mean": None,
                                                                  "n": 3}
    assert submission.sender.source == "system:vision" and submission.clip is None
    # A continued condition keeps the event id of the alert raised before the failover.
    earlier = started - timedelta(minutes=5)
    assert alert_submission(7, alert, started_at=earlier).meta["event_id"] == alert_event_id(7, "camera_covered",
                                                                                             earlier)


def test_every_activity_outcome_is_a_workflow_outcome() -> None:
    assert {outcome.value for outcome in WatchCameraOutcome} <= {outcome.value for outcome in WatchOutcome}


# ---------------------------------------------------------------------------------------------------------
# The world


def write_video(path: Path, scenario: synthetic.Scenario, *, width: int = 320, height: int = 180) -> str:
    """The scenario as an MJPEG AVI; returns its file:// URL (the camera's stream_url)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), scenario.fps, (width, height))
    assert writer.isOpened()
    try:
        for k in range(scenario.frame_count):
            writer.write(synthetic.render_frame(scenario, k, width=width, height=height))
    finally:
        writer.release()
    return path.resolve().as_uri()


@pytest.fixture(scope="module")
def kitchen_video(tmp_path_factory: pytest.TempPathFactory) -> str:
    scenario = dataclasses.replace(synthetic.normal_activity(duration_s=20.0, workers=2), fps=5.0)
    return write_video(tmp_path_factory.mktemp("videos") / "kitchen.avi", scenario)


def seed_cameras(engine: Engine, stream_urls: list[str], *, hours: list[list[str]] | None = None,
                 enabled: bool = True) -> list[int]:
    tag = secrets.token_hex(3).upper()
    with Session(engine, expire_on_commit=False) as session:
        office = StreetOffice(code=f"VS{tag}", name=f"视频测试街道{tag}")
        session.add(office)
        session.flush()
        assert office.id is not None
        merchant = Merchant(credit_code=f"92120103MA{tag}9V"[:18].ljust(18, "0"), name=f"视频测试餐馆{tag}",
                            address="河西区测试路9号", street_office_id=office.id,
                            business_hours=hours if hours is not None else ROUND_THE_CLOCK_HOURS)
        session.add(merchant)
        session.flush()
        assert merchant.id is not None
        cameras = [Camera(merchant_id=merchant.id, name=f"后厨{n + 1}号", area="cooking", stream_url=url,
                          enabled=enabled) for n, url in enumerate(stream_urls)]
        session.add_all(cameras)
        session.commit()
        return [camera.id for camera in cameras if camera.id is not None]


def set_enabled(engine: Engine, camera_id: int, enabled: bool) -> None:
    with Session(engine) as session:
        camera = session.get(Camera, camera_id)
        assert camera is not None
        camera.enabled = enabled
        session.add(camera)
        session.commit()


@pytest.fixture
async def temporal(temporal_dev_server: str) -> Client:
    return await Client.connect(temporal_dev_server)


@pytest.fixture
def vision_queue() -> str:
    return f"vision-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def clean(temporal: Client, db_engine: Engine, vision_queue: str) -> AsyncIterator[None]:
    """Ends every watch of this test's queue (workflow ids are per camera id, which restarts with each test)."""
    yield
    query = f"WorkflowType = 'CameraWatchWorkflow' AND ExecutionStatus = 'Running' AND TaskQueue = '{vision_queue}'"
    async for execution in temporal.list_workflows(query):
        await temporal.get_workflow_handle(execution.id).terminate("end of test")
    truncate_all(db_engine)


def test_settings(database_url: str, temporal_address: str, *, casework_queue: str, var_dir: Path,
                  **more: Any) -> Settings:
    return Settings(database_url=database_url, temporal_address=temporal_address,  # type: ignore[arg-type]
                    temporal_task_queue=casework_queue, var_dir=var_dir, **more)


test_settings.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


async def eventually(check: Callable[[], Awaitable[Any]], what: str, timeout: float = DEADLINE) -> Any:
    """Poll ``check()`` until it returns something truthy; fail after the deadline (no sleeping as a guess)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: Any = None
    while True:
        last = await check()
        if last:
            return last
        if loop.time() > deadline:
            raise AssertionError(f"not within {timeout} s: {what} (last: {last!r})")
        await asyncio.sleep(0.1)


async def pending_watch(client: Client, camera_id: int) -> tuple[PendingActivityInfo | None, dict[str, Any]]:
    """The running watch_camera attempt of a camera and its latest heartbeat details."""
    description = await client.get_workflow_handle(camera_watch_workflow_id(camera_id)).describe()
    pending = list(description.raw_description.pending_activities)
    if not pending:
        return None, {}
    activity = pending[0]
    details: dict[str, Any] = {}
    if activity.heartbeat_details.payloads:
        decoded = client.data_converter.payload_converter.from_payloads(list(activity.heartbeat_details.payloads))
        details = decoded[-1] if decoded and isinstance(decoded[-1], dict) else {}
    return activity, details


def watching_on(client: Client, camera_id: int, worker: Callable[[str], bool], *, frames_over: int = 0
                ) -> Callable[[], Awaitable[dict[str, Any] | None]]:
    async def check() -> dict[str, Any] | None:
        activity, details = await pending_watch(client, camera_id)
        if activity is None or not worker(str(details.get("worker", ""))):
            return None
        return details if details.get("frames", 0) > frames_over else None

    return check


async def status_of(handle: WorkflowHandle[Any, Any]) -> WorkflowExecutionStatus | None:
    return (await handle.describe()).status


# ---------------------------------------------------------------------------------------------------------
# Start and stop


async def test_sync_watches_every_enabled_camera_once_and_stops_switched_off_ones(
    temporal: Client, temporal_dev_server: str, database_url: str, db_engine: Engine, vision_queue: str,
    kitchen_video: str, tmp_path: Path, clean: None,
) -> None:
    first, second = seed_cameras(db_engine, [kitchen_video, kitchen_video])
    set_enabled(db_engine, second, False)
    settings = test_settings(database_url, temporal_dev_server, casework_queue=f"casework-{vision_queue}",
                             var_dir=tmp_path / "var")

    async def sync(options: WatchOptions = FAST) -> Any:
        return await sync_camera_watches(temporal, db_engine, task_queue=vision_queue, options=options)

    async with build_vision_worker(temporal, settings, engine=db_engine, task_queue=vision_queue,
                                   identity="vision-test-a"):
        started = time.monotonic()
        # The first watch re-reads its camera rarely: it is the stop signal that ends it below.
        result = await sync(dataclasses.replace(FAST, refresh_seconds=600))
        assert (result.enabled, result.started, result.stopped) == (1, 1, 0)
        handle = temporal.get_workflow_handle_for(CameraWatchWorkflow.run, camera_watch_workflow_id(first))
        details = await eventually(watching_on(temporal, first, lambda w: w == "vision-test-a"),
                                   "frames flow on the worker")
        print(f"\nfirst frames analysed {time.monotonic() - started:.1f} s after the sync")
        assert details["connected"] and details["source_error"] is None and details["last_frame_at"]
        state = await handle.query(CameraWatchWorkflow.get_state)
        assert (state.camera_id, state.status) == (first, WatchStatus.watching)
        assert state.period_ends_at - state.run_started_at == timedelta(hours=24)
        run_id = (await handle.describe()).run_id

        # Idempotent: once visibility lists the watch, a second sync leaves it alone (the same run).
        again = await eventually(lambda: _listed(sync), "the running watch is listed")
        assert (again.enabled, again.running, again.started, again.stopped) == (1, 1, 0, 0)
        assert (await handle.describe()).run_id == run_id

        # Switched off + sync: the stop signal cancels the activity and ends the watch.
        set_enabled(db_engine, first, False)
        stopped = await sync()
        assert (stopped.enabled, stopped.stopped) == (0, 1)
        result_first = await asyncio.wait_for(handle.result(), DEADLINE)
        assert (result_first.outcome, result_first.reason) == (WatchOutcome.stopped, "camera_disabled")
        assert (await pending_watch(temporal, first))[0] is None  # it ended once its activity had stopped
        assert (await handle.query(CameraWatchWorkflow.get_state)).status == WatchStatus.ended
        await export_history(handle, "camera_watch_stopped")

        # Enabled again: a new run. Switched off without a sync: the activity sees it on its next refresh.
        set_enabled(db_engine, first, True)
        set_enabled(db_engine, second, True)
        both = await sync()
        assert both.enabled == 2 and both.started >= 1  # 2, unless visibility still lists the ended watch
        await eventually(lambda: _listed(sync), "both watches are listed")
        await eventually(watching_on(temporal, second, lambda w: w == "vision-test-a"), "the second camera runs")
        assert (await handle.describe()).run_id != run_id
        set_enabled(db_engine, second, False)
        second_handle = temporal.get_workflow_handle_for(CameraWatchWorkflow.run, camera_watch_workflow_id(second))
        ended = await asyncio.wait_for(second_handle.result(), DEADLINE)
        assert ended.outcome == WatchOutcome.camera_disabled and ended.activity_runs == 1
        await export_history(second_handle, "camera_watch_disabled")
        assert await status_of(handle) == WorkflowExecutionStatus.RUNNING


async def test_a_watch_continues_as_new_when_its_period_ends(
    temporal: Client, temporal_dev_server: str, database_url: str, db_engine: Engine, vision_queue: str,
    kitchen_video: str, tmp_path: Path, clean: None,
) -> None:
    [camera_id] = seed_cameras(db_engine, [kitchen_video])
    settings = test_settings(database_url, temporal_dev_server, casework_queue=f"casework-{vision_queue}",
                             var_dir=tmp_path / "var")
    short = dataclasses.replace(FAST, period_hours=2 / 3600)  # a "day" of two seconds
    handle = temporal.get_workflow_handle_for(CameraWatchWorkflow.run, camera_watch_workflow_id(camera_id))
    async with build_vision_worker(temporal, settings, engine=db_engine, task_queue=vision_queue,
                                   identity="vision-test-period"):
        await sync_camera_watches(temporal, db_engine, task_queue=vision_queue, options=short)
        first_run = (await handle.describe()).run_id

        async def next_run_watching() -> str | None:
            description = await handle.describe()
            if description.run_id == first_run or description.status != WorkflowExecutionStatus.RUNNING:
                return None
            _, details = await pending_watch(temporal, camera_id)
            return description.run_id if details.get("frames", 0) > 0 else None

        await eventually(next_run_watching, "the next run watches the camera")
        previous = temporal.get_workflow_handle(camera_watch_workflow_id(camera_id), run_id=first_run)
        assert (await previous.describe()).status == WorkflowExecutionStatus.CONTINUED_AS_NEW
        state = await handle.query(CameraWatchWorkflow.get_state)
        assert state.period_ends_at - state.run_started_at == timedelta(seconds=2)
        await export_history(previous, "camera_watch_continued")


async def _listed(sync: Callable[[], Awaitable[Any]]) -> Any:
    result = await sync()
    return result if result.running == result.enabled else None


# ---------------------------------------------------------------------------------------------------------
# Failover between vision worker processes


class VisionWorkerProcess:
    """`python -m infra.vision_worker` as `sunshine up` runs it, on the test's components."""

    def __init__(self, name: str, env: dict[str, str], directory: Path) -> None:
        self.ready_file = directory / f"{name}.ready"
        self.log_path = directory / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "infra.vision_worker"], cwd=REPO, stdout=self._log, stderr=subprocess.STDOUT,
            env={**env, "SUNSHINE_VISION_WORKER_READY_FILE": str(self.ready_file)},
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def owns(self, worker: str) -> bool:
        return worker.startswith(f"{self.pid}@")

    async def ready(self, timeout: float = 90.0) -> None:
        async def check() -> bool:
            assert self.process.poll() is None, f"vision worker exited early:\n{self.tail()}"
            return self.ready_file.exists()

        await eventually(check, f"vision worker {self.pid} ready", timeout)

    def tail(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-4000:]

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self._log.close()


@pytest.fixture
def worker_processes() -> Iterator[list[VisionWorkerProcess]]:
    processes: list[VisionWorkerProcess] = []
    yield processes
    for process in processes:
        process.close()


@pytest.mark.slow
async def test_a_killed_vision_worker_loses_its_camera_to_another_within_the_heartbeat_timeout(
    temporal: Client, temporal_dev_server: str, database_url: str, db_engine: Engine, vision_queue: str,
    kitchen_video: str, tmp_path: Path, clean: None, worker_processes: list[VisionWorkerProcess],
) -> None:
    [camera_id] = seed_cameras(db_engine, [kitchen_video])
    env = {key: value for key, value in os.environ.items() if not key.startswith("SUNSHINE_")}
    env.update(
        SUNSHINE_DATABASE_URL=database_url,
        SUNSHINE_TEMPORAL_ADDRESS=temporal_dev_server,
        SUNSHINE_VISION_TASK_QUEUE=vision_queue,
        SUNSHINE_TEMPORAL_TASK_QUEUE=f"casework-{vision_queue}",
        SUNSHINE_S3_ENDPOINT="http://127.0.0.1:9",  # no alert is expected from a normal kitchen
        SUNSHINE_VAR_DIR=str(tmp_path / "var"),
    )
    heartbeat_timeout = WatchOptions().heartbeat_timeout_seconds  # the production default: the workers' sync

    a = VisionWorkerProcess("vision-a", env, tmp_path)
    worker_processes.append(a)
    await a.ready()  # its start-up sync has started the camera's watch
    on_a = await eventually(watching_on(temporal, camera_id, a.owns), "the watch runs on worker A", 60)
    b = VisionWorkerProcess("vision-b", env, tmp_path)
    worker_processes.append(b)
    await b.ready()
    before, _ = await pending_watch(temporal, camera_id)
    assert before is not None and a.owns(before.last_worker_identity), "B must not have taken the watch yet"

    a.process.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()

    async def started_on_b() -> PendingActivityInfo | None:
        activity, _ = await pending_watch(temporal, camera_id)
        started = activity is not None and activity.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
        return activity if started and b.owns(activity.last_worker_identity) else None

    # The server gives the attempt up at most one heartbeat timeout after the last heartbeat it received (before
    # the kill), then retries it after the first retry interval (1 s) on the worker that polls: B.
    after = await eventually(started_on_b, "the watch moves to worker B", heartbeat_timeout + 30)
    moved_after = time.monotonic() - killed_at
    on_b = await eventually(watching_on(temporal, camera_id, b.owns), "frames flow on worker B",
                            heartbeat_timeout + 30)
    frames_after = time.monotonic() - killed_at
    print(f"\nwatch moved from A to B {moved_after:.1f} s after SIGKILL, its heartbeat showed B's frames after "
          f"{frames_after:.1f} s (heartbeat timeout {heartbeat_timeout:.0f} s)")
    assert moved_after < heartbeat_timeout + 5, f"took {moved_after:.1f} s\n{b.tail()}"
    assert after.attempt > before.attempt and on_b["attempt"] >= after.attempt
    assert on_a["worker"] != on_b["worker"] and b.owns(on_b["worker"])
    assert (await temporal.get_workflow_handle(camera_watch_workflow_id(camera_id)).describe()).status == (
        WorkflowExecutionStatus.RUNNING)

    # A graceful stop hands the watch back at once: the attempt fails with WorkerShutdown (retried elsewhere).
    b.process.send_signal(signal.SIGTERM)
    stopped_at = time.monotonic()
    assert await asyncio.to_thread(b.process.wait, 15) == 0, b.tail()
    print(f"worker B stopped {time.monotonic() - stopped_at:.1f} s after SIGTERM")

    async def failed_for_shutdown() -> bool:
        activity, _ = await pending_watch(temporal, camera_id)
        return activity is not None and activity.last_failure.application_failure_info.type == "WorkerShutdown"

    await eventually(failed_for_shutdown, "the attempt failed with WorkerShutdown", 10)


# ---------------------------------------------------------------------------------------------------------
# A covered lens becomes a case


@pytest.mark.slow
async def test_a_covered_camera_in_business_hours_raises_an_alert_into_a_case(
    temporal: Client, temporal_dev_server: str, database_url: str, db_engine: Engine, vision_queue: str,
    seaweedfs: SeaweedInstance, evidence_store: EvidenceStore, tmp_path: Path, clean: None,
) -> None:
    scenario = dataclasses.replace(synthetic.covered(start_s=8.0, duration_s=60.0, workers=2), fps=5.0)
    video = write_video(tmp_path / "covered.avi", scenario)
    [camera_id] = seed_cameras(db_engine, [video])
    casework_queue = f"casework-{vision_queue}"
    settings = test_settings(
        database_url, temporal_dev_server, casework_queue=casework_queue, var_dir=tmp_path / "var",
        s3_endpoint=seaweedfs.endpoint, s3_access_key=seaweedfs.access_key, s3_secret_key=seaweedfs.secret_key,
        evidence_bucket=evidence_store.bucket, evidence_retention_days=1,
    )

    def quick_tamper(camera: CameraSettings) -> PipelineConfig:
        config = default_pipeline_config(camera)  # round the clock: covered is judged now
        return dataclasses.replace(config, tamper=TamperConfig(persistence_s=3.0))

    workflows, activities = casework_registrations(temporal, lambda: Session(db_engine))
    casework = Worker(temporal, task_queue=casework_queue, workflows=workflows, activities=activities,
                      activity_executor=ThreadPoolExecutor(max_workers=4), max_concurrent_activities=4)
    vision = build_vision_worker(temporal, settings, engine=db_engine, task_queue=vision_queue,
                                 identity="vision-test-covered", pipeline_config=quick_tamper)
    async with casework, vision:
        started = time.monotonic()
        await sync_camera_watches(temporal, db_engine, task_queue=vision_queue, options=FAST)

        async def delivered() -> Alert | None:
            with Session(db_engine) as session:
                alert = session.exec(select(Alert).where(Alert.camera_id == camera_id)).first()
            return alert if alert is not None and alert.delivered_at is not None else None

        alert = await eventually(delivered, "a delivered camera_covered alert", 60)
        print(f"\ncamera_covered delivered {time.monotonic() - started:.1f} s after the watch started")
        assert (alert.alert_type, alert.source) == ("camera_covered", "system:vision")
        assert alert.event_id.startswith(f"vision:camera-{camera_id}:camera_covered:")
        assert alert.detail["source"] == "vision" and "reason" in alert.detail["metrics"]
        assert alert.case_id is not None and alert.snapshot_evidence_id is not None
        case: CaseState = await temporal.get_workflow_handle(alert.case_id).query(AlertCaseWorkflow.get_state)
        assert case.camera_id == camera_id and case.alert_type == "camera_covered"
        assert [ref.event_id for ref in case.alerts] == [alert.event_id]

        async def reported() -> dict[str, Any] | None:  # heartbeats are throttled: the details follow shortly
            _, details = await pending_watch(temporal, camera_id)
            return details if details.get("alerts_raised") == 1 else None

        details = await eventually(reported, "the heartbeat reports the alert")
        assert datetime.fromisoformat(details["raised"]["camera_covered"]) == datetime.fromisoformat(
            alert.detail["started_at"])
        await temporal.get_workflow_handle(alert.case_id).terminate("end of test")

    # Before the cover came, the watch enrolled the view and kept it on the camera for the next watch.
    with Session(db_engine) as session:
        camera = session.get(Camera, camera_id)
        assert camera is not None and camera.reference_frame_evidence_id is not None
        reference = evidence_store.ref(camera.reference_frame_evidence_id)
    assert reference.content_type == "image/png"
    with evidence_store.open(reference) as reader:
        picture = cv2.imdecode(np.frombuffer(reader.read(), np.uint8), cv2.IMREAD_UNCHANGED)
    assert picture is not None and picture.shape == (180, 320)  # the grey working view of the 320×180 stream
    assert float(picture.mean()) > 40, "enrolled from the open view, not from the covered lens"


# ---------------------------------------------------------------------------------------------------------
# A registered detector on a camera


@pytest.mark.slow
async def test_a_camera_runs_the_registered_model_for_its_area_and_alerts_carry_the_model(
    temporal: Client, temporal_dev_server: str, database_url: str, db_engine: Engine, vision_queue: str,
    seaweedfs: SeaweedInstance, evidence_store: EvidenceStore, tmp_path: Path, clean: None,
) -> None:
    # A person at the counter without a hat, on every frame: (1, K, 6) rows in the 640×640 letterboxed input of
    # the 320×180 stream (scale 2, 140 px of padding above and below).
    planted = np.array([[[200, 200, 300, 480, 0.92, 0], [225, 200, 275, 250, 0.88, 1]]], dtype=np.float32)
    model_file = planted_onnx(tmp_path / "hats.onnx", planted, names=("person", "no_hat"))
    info = inspect_model(model_file, type="onnx")
    with Session(db_engine) as session:
        register_model(
            session, name="hats", version="1", path=str(model_file), class_map={"no_hat": "no_hat"}, areas=None,
            registered_by="test", inspected=InspectedModel(
                runtime="onnx", sha256=info.sha256, layout=info.layout.value, input_width=info.input_width,
                input_height=info.input_height, classes=info.class_names, licence=info.licence))
        session.commit()
    scenario = dataclasses.replace(synthetic.normal_activity(duration_s=30.0, workers=1), fps=5.0)
    [camera_id] = seed_cameras(db_engine, [write_video(tmp_path / "kitchen.avi", scenario)])
    casework_queue = f"casework-{vision_queue}"
    settings = test_settings(
        database_url, temporal_dev_server, casework_queue=casework_queue, var_dir=tmp_path / "var",
        s3_endpoint=seaweedfs.endpoint, s3_access_key=seaweedfs.access_key, s3_secret_key=seaweedfs.secret_key,
        evidence_bucket=evidence_store.bucket, evidence_retention_days=1,
    )
    workflows, activities = casework_registrations(temporal, lambda: Session(db_engine))
    casework = Worker(temporal, task_queue=casework_queue, workflows=workflows, activities=activities,
                      activity_executor=ThreadPoolExecutor(max_workers=4), max_concurrent_activities=4)
    vision = build_vision_worker(temporal, settings, engine=db_engine, task_queue=vision_queue,
                                 identity="vision-test-detector")
    async with casework, vision:
        await sync_camera_watches(temporal, db_engine, task_queue=vision_queue, options=FAST)

        async def delivered() -> Alert | None:
            with Session(db_engine) as session:
                alert = session.exec(select(Alert).where(Alert.camera_id == camera_id,
                                                         Alert.alert_type == "no_hat")).first()
            return alert if alert is not None and alert.delivered_at is not None else None

        alert = await eventually(delivered, "a delivered no_hat alert", 60)
        assert alert.model == {"name": "hats", "version": "1", "sha256": info.sha256}
        assert alert.boxes and alert.clip_evidence_id is not None and alert.snapshot_evidence_id is not None
        assert alert.detail["metrics"], "the scores and thresholds that fired are the alert's reason"
        assert alert.case_id is not None
        await temporal.get_workflow_handle(alert.case_id).terminate("end of test")

