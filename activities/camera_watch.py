"""The camera watch: one camera's frames through the vision pipeline into alert intake, as one long activity.

``watch_camera`` runs on a vision worker for as long as the camera is watched (a day at most: the workflow
continues as new daily). It heartbeats every ≤ 2 s with its progress (the SDK forwards the latest details to the
server at most every 0.8 × heartbeat timeout); when a vision worker dies, the heartbeat stops, Temporal gives the
attempt up after the heartbeat timeout and retries it on another vision worker.

How one attempt works:

- The camera row (stream URL, area, business hours: the camera's own, else the merchant's) is read; a camera that
  is gone or switched off ends the run at once.
- A thread of its own runs the blocking OpenCV work: ``vision.sources.open_source`` (which reconnects by itself,
  with back-off) → ``CameraPipeline.process`` per frame (or ``tick`` while no frame comes, so health can conclude
  ``camera_offline``). A URL that cannot even be opened counts as a camera without a picture. The thread's waits
  are interruptible, so a stop takes effect within one read.
- The activity's own task takes the alerts from that thread and submits them through ``infra.intake.AlertIntake``
  (the code path of ``POST /api/v1/alerts``) as ``system:vision``, heartbeats, and re-reads the camera row every
  ``refresh_seconds``: switched off → ``camera_disabled``, deleted → ``camera_missing``, URL/area/hours/reference
  changed → ``camera_changed`` (the workflow runs the activity again with the new settings).
- Cancellation (the workflow's ``stop`` signal) arrives with a heartbeat answer and ends the attempt at once. At a
  vision worker's graceful shutdown the attempt fails on purpose (``WorkerShutdown``), so that Temporal retries it
  on another worker after the first retry interval instead of waiting for the heartbeat timeout.

Alerts are idempotent: ``event_id`` = camera + alert type + the finding's ``started_at``, so submitting the same
finding again (an intake retry) can never make a second alert. A *new* attempt starts a new pipeline, which
would see a condition that lasts across the failover (a covered lens) as new: the alerts raised are carried in
the heartbeat details (and from run to run through the workflow), and a finding of the same type that was already
true when the new attempt started (``started_at`` within ``CONTINUATION_WINDOW`` of the attempt's start) reuses
the earlier ``started_at``, hence the earlier event id: intake answers "already known".

Alerts that intake refuses (a bug) are logged and dropped; alerts that could not be stored (object store or
database down) are retried a few times within the attempt; stored-but-undelivered alerts (``DeliveryPending``)
are left to the pending-alert sweep.

The detector is the registered model for the camera's area (``model_for_area``), loaded once per worker and shared
by its cameras; a model that no longer loads leaves the camera watched without one (logged). The tamper check
starts from the camera's stored reference frame; a camera without one enrols it from its first steady frames and
the watch stores it as evidence on the camera row, so the next watch (after a failover, the next day) compares
against the same view rather than enrolling whatever the camera shows by then.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import socket
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from typing import Any

import cv2
import numpy as np
from sqlalchemy import CursorResult, Engine, update
from sqlmodel import Session, col
from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from domain.alerts.intake_rules import MAX_BOXES, MAX_DETAIL_JSON_BYTES, UnknownCamera
from domain.base import utcnow
from domain.detectors.models import DetectorModel
from domain.detectors.service import model_for_area
from domain.errors import DomainError
from domain.evidence.models import CollectionMethod
from domain.merchants.models import Camera, Merchant
from infra.evidence_store import EvidenceStore
from infra.intake import AlertIntake, AlertSender, AlertSubmission, DeliveryPending, EvidenceUpload
from vision.detectors.base import Detector, DetectorConfig, create_detector
from vision.pipeline import CameraAlert, CameraPipeline, PipelineConfig
from vision.sources import ConnectionEvent, ConnectionEventKind, SourceConfig, mask_url, open_source
from vision.types import BusinessHours, Finding, Image

log = logging.getLogger("sunshine.camera_watch")

VISION_SENDER = AlertSender(source="system:vision", role="system")
# Cameras whose merchant states no business hours (Merchant.business_hours empty, Camera.business_hours None).
DEFAULT_BUSINESS_HOURS = BusinessHours(time(8, 0), time(22, 0))
ROUND_THE_CLOCK = BusinessHours(time(0, 0), time(23, 59, 59, 999999))
MINUTES_PER_DAY = 24 * 60

# A condition already true when a new attempt starts shows up with a started_at this close to the attempt's start.
CONTINUATION_WINDOW = timedelta(seconds=30)
# Alerts carried over from an attempt whose last heartbeat is older than this are not continued.
CONTINUATION_MAX_GAP = timedelta(minutes=10)
# The camera thread loops at least once per (read timeout + back-off + connect timeout) ≈ 30 s; silence this long
# means it hangs in native code: the attempt fails and is retried with a fresh thread.
STUCK_AFTER = timedelta(minutes=2)
THREAD_STOP_GRACE_SECONDS = 3.0
IDLE_TICK_SECONDS = 1.0
# Retries of an alert that could not be stored (object store or database unavailable), then it is dropped.
SUBMIT_RETRY_DELAYS = (timedelta(seconds=5), timedelta(seconds=15), timedelta(seconds=60), timedelta(minutes=3))
MAX_RETRYING_ALERTS = 50
REFERENCE_RETRY = timedelta(minutes=5)  # after a failed attempt to store the enrolled reference frame
WORKER_SHUTDOWN = "WorkerShutdown"  # ApplicationError.type: the attempt is retried on another worker
CAMERA_LOOP_FAILED = "CameraLoopFailed"


class WatchCameraOutcome(StrEnum):
    """Why an attempt ended normally (the values of ``workflows.camera_watch_types.WatchOutcome`` it can return)."""

    period_elapsed = "period_elapsed"
    camera_changed = "camera_changed"
    camera_disabled = "camera_disabled"
    camera_missing = "camera_missing"


@dataclass
class WatchCameraInput:
    camera_id: int
    until: datetime  # end of the workflow run's period: the activity returns period_elapsed then
    heartbeat_every_seconds: float = 2.0
    refresh_seconds: float = 30.0
    sample_fps: float = 5.0
    # Alerts raised by the previous run (alert type → started_at ISO) and when that run ended: for continuation.
    carried_raised: dict[str, str] = field(default_factory=dict)
    carried_at: datetime | None = None


@dataclass
class WatchCameraOutput:
    camera_id: int
    outcome: WatchCameraOutcome
    worker: str
    frames: int = 0
    last_frame_at: datetime | None = None
    alerts_raised: int = 0  # delivered by this run (intake's "created")
    alerts_known: int = 0  # intake already had them (a continued condition, a retried submission)
    alerts_pending: int = 0  # stored, delivery left to the pending-alert sweep
    alerts_dropped: int = 0  # refused by intake, or not storable after the retries
    raised: dict[str, str] = field(default_factory=dict)  # alert type → started_at ISO of the latest one
    ended_at: datetime | None = None


# ---------------------------------------------------------------------------------------------------------
# The camera as the watch sees it


@dataclass(frozen=True)
class CameraSettings:
    camera_id: int
    merchant_id: int
    enabled: bool
    stream_url: str
    area: str
    hours: tuple[tuple[str, str], ...]  # stored intervals: the camera's own, else the merchant's
    reference_frame_evidence_id: str | None = None
    detector: DetectorChoice | None = None

    @property
    def business_hours(self) -> BusinessHours:
        return watch_business_hours(self.hours)

    def watch_key(self) -> tuple[Any, ...]:
        """What the running pipeline was built from: a change restarts the activity."""
        return (self.stream_url, self.area, self.hours, self.reference_frame_evidence_id, self.detector)


@dataclass(frozen=True)
class DetectorChoice:
    """The registered model a camera runs (``domain.detectors.service.model_for_area``)."""

    model_id: int
    name: str
    version: str
    runtime: str
    path: str
    sha256: str
    class_map: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, model: DetectorModel) -> DetectorChoice:
        assert model.id is not None
        return cls(model_id=model.id, name=model.name, version=model.version, runtime=model.runtime,
                   path=model.path, sha256=model.sha256, class_map=tuple(sorted(model.class_map.items())))


def load_camera(engine: Engine, camera_id: int) -> CameraSettings | None:
    with Session(engine) as session:
        camera = session.get(Camera, camera_id)
        if camera is None or camera.id is None:
            return None
        merchant = session.get(Merchant, camera.merchant_id)
        stored = camera.business_hours if camera.business_hours is not None else (
            merchant.business_hours if merchant is not None else [])
        model = model_for_area(session, area=camera.area)
        return CameraSettings(
            camera_id=camera.id,
            merchant_id=camera.merchant_id,
            enabled=camera.enabled,
            stream_url=camera.stream_url,
            area=camera.area,
            hours=tuple((str(start), str(end)) for start, end in stored),
            reference_frame_evidence_id=(
                None if camera.reference_frame_evidence_id is None else str(camera.reference_frame_evidence_id)
            ),
            detector=None if model is None else DetectorChoice.of(model),
        )


def watch_business_hours(intervals: Sequence[Sequence[str]]) -> BusinessHours:
    """The stored intervals (``[["10:00", "14:00"], ["17:00", "22:00"]]``, Beijing time) as the one opening span
    the vision checks take: from the end of the longest closed gap of the day to its start (here 10:00–22:00).
    A lunch break counts as open: the checks raise fewer alerts, never more. No intervals: 08:00–22:00."""
    if not intervals:
        return DEFAULT_BUSINESS_HOURS
    open_minutes = [False] * MINUTES_PER_DAY
    try:
        for start_text, end_text in intervals:
            start, end = _minute_of_day(start_text), _minute_of_day(end_text)
            span = end - start if end > start else end + MINUTES_PER_DAY - start
            for minute in range(start, start + span):
                open_minutes[minute % MINUTES_PER_DAY] = True
    except (ValueError, TypeError):
        log.warning("business hours %r are not HH:MM intervals; using %s", intervals, DEFAULT_BUSINESS_HOURS)
        return DEFAULT_BUSINESS_HOURS
    if all(open_minutes):
        return ROUND_THE_CLOCK
    if not any(open_minutes):
        return DEFAULT_BUSINESS_HOURS
    first_open = open_minutes.index(True)
    best_start, best_length, run_start, run_length = 0, 0, 0, 0
    for offset in range(1, MINUTES_PER_DAY + 1):  # circularly, starting after an open minute
        minute = (first_open + offset) % MINUTES_PER_DAY
        if open_minutes[minute]:
            run_length = 0
            continue
        if run_length == 0:
            run_start = minute
        run_length += 1
        if run_length > best_length:
            best_start, best_length = run_start, run_length
    opens = (best_start + best_length) % MINUTES_PER_DAY
    return BusinessHours(opens=time(opens // 60, opens % 60), closes=time(best_start // 60, best_start % 60))


def _minute_of_day(text: str) -> int:
    hours, minutes = (int(part) for part in text.split(":"))
    minute = hours * 60 + minutes
    if not 0 <= minute <= MINUTES_PER_DAY or minutes > 59:
        raise ValueError(text)
    return minute


def default_pipeline_config(camera: CameraSettings) -> PipelineConfig:
    config = PipelineConfig(business_hours=camera.business_hours, camera_areas=(camera.area,))
    if camera.detector is not None:
        config = replace(config, rules=replace(config.rules, class_to_alert_type=dict(camera.detector.class_map)))
    return config


def load_detector(choice: DetectorChoice) -> Detector:
    """The registered model, refused (``ModelRejected``) when the file is gone or no longer the registered one."""
    return create_detector(DetectorConfig(model_path=choice.path, type=choice.runtime, sha256=choice.sha256,
                                          name=choice.name, version=choice.version))


def load_reference(store: EvidenceStore, evidence_id: str) -> Image:
    """The camera's stored reference frame, its digests checked while it is read."""
    ref = store.ref(uuid.UUID(evidence_id))
    with store.open(ref) as reader:
        data = reader.read()
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ValueError(f"the reference frame {evidence_id} ({ref.content_type}) is not an image")
    return np.asarray(image, dtype=np.uint8)


def store_reference(engine: Engine, store: EvidenceStore, camera_id: int, reference: Image,
                    captured_at: datetime | None) -> str | None:
    """Keep an enrolled reference (as evidence) for the camera, so that a later watch, on this worker or another,
    judges the view against it instead of enrolling whatever the camera shows then (a turned camera's new view).
    Returns the stored frame's evidence id, or None when an operator set a reference meanwhile (it is kept, and
    the watch restarts with it at its next look at the camera row)."""
    ok, png = cv2.imencode(".png", reference)
    if not ok:
        raise ValueError("the reference frame could not be encoded")
    ref = store.put(png.tobytes(), collection_method=CollectionMethod.platform_extraction, actor=VISION_SENDER.source,
                    actor_role="system", captured_at=captured_at, declared_content_type="image/png",
                    source_meta={"camera_id": camera_id, "kind": "tamper_reference"})
    with Session(engine) as session:
        result: CursorResult[Any] = session.connection().execute(
            update(Camera)
            .where(col(Camera.id) == camera_id, col(Camera.reference_frame_evidence_id).is_(None))
            .values(reference_frame_evidence_id=ref.evidence_id)
        )
        session.commit()
    return str(ref.evidence_id) if result.rowcount == 1 else None


# ---------------------------------------------------------------------------------------------------------
# From a CameraAlert to intake's submission


def alert_event_id(camera_id: int, alert_type: str, started_at: datetime) -> str:
    """Deterministic per finding: the same condition submitted again is the same event for intake."""
    stamp = started_at.astimezone(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    return f"vision:camera-{camera_id}:{alert_type}:{stamp}"


def alert_submission(camera_id: int, alert: CameraAlert, *, started_at: datetime | None = None) -> AlertSubmission:
    """The alert as intake takes it; ``started_at`` overrides the finding's (continuation across attempts)."""
    finding = alert.finding
    started = started_at or finding.started_at
    meta: dict[str, Any] = {
        "event_id": alert_event_id(camera_id, finding.alert_type, started),
        "camera_id": camera_id,
        "alert_type": finding.alert_type,
        "captured_at": finding.at.astimezone(UTC).isoformat(),
        "score": _unit(finding.score),
        "detail": _detail(finding, started),
    }
    boxes = [
        {"x": max(0.0, float(box.x)), "y": max(0.0, float(box.y)), "w": float(box.w), "h": float(box.h)}
        for box in finding.boxes
        if _finite(box.x, box.y, box.w, box.h) and box.w > 0 and box.h > 0
    ][:MAX_BOXES]
    if boxes:
        meta["boxes"] = boxes
    model = _model_meta(alert.model)
    if model is not None:
        meta["model"] = model
    clip = None if alert.clip is None else EvidenceUpload(alert.clip.data, alert.clip.content_type)
    return AlertSubmission(
        sender=VISION_SENDER,
        meta=meta,
        snapshot=EvidenceUpload(alert.snapshot_jpeg, "image/jpeg"),
        clip=clip,
    )


def _model_meta(provenance: Mapping[str, Any] | None) -> dict[str, str] | None:
    """The detector's provenance (``ModelInfo.provenance``: model_name, model_version, model_sha256) as intake's
    ``meta.model`` (name, version, sha256)."""
    if not provenance:
        return None
    meta = {key: provenance.get(f"model_{key}") for key in ("name", "version", "sha256")}
    if all(isinstance(value, str) and value for value in meta.values()):
        return {key: str(value) for key, value in meta.items()}
    return None


def _detail(finding: Finding, started_at: datetime) -> dict[str, Any]:
    detail: dict[str, Any] = {
        "source": "vision",
        "started_at": started_at.astimezone(UTC).isoformat(),
        "fired_at": finding.at.astimezone(UTC).isoformat(),
        "metrics": _plain_json(finding.metrics),
    }
    if len(json.dumps(detail, ensure_ascii=False).encode()) > MAX_DETAIL_JSON_BYTES:
        reason = finding.metrics.get("reason")
        detail["metrics"] = {"reason": str(reason)[:500]} if reason is not None else {}
        detail["metrics_truncated"] = True
    return detail


def _plain_json(value: Any) -> Any:
    """Metrics as plain JSON: numpy numbers to Python, non-finite numbers to null, anything else to text."""
    if isinstance(value, Mapping):
        return {str(key): _plain_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain_json(item) for item in value]
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, datetime):
        return value.isoformat()
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if hasattr(value, "dtype") and getattr(value.dtype, "kind", "") in "iub":
        return int(number)
    return number if math.isfinite(number) else None


def _unit(score: float) -> float:
    value = float(score)
    return min(1.0, max(0.0, value)) if math.isfinite(value) else 1.0


def _finite(*values: float) -> bool:
    return all(math.isfinite(float(value)) for value in values)


# ---------------------------------------------------------------------------------------------------------
# The camera thread


class _InterruptibleClock:
    """The sources' clock: real time, and waits that end as soon as the watch is told to stop."""

    def __init__(self, stop: threading.Event) -> None:
        self._stop = stop

    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._stop.wait(seconds)


class _CameraLoop:
    """Source → pipeline in a thread of its own; alerts are handed to the activity's event loop."""

    def __init__(
        self,
        camera: CameraSettings,
        *,
        sample_fps: float,
        source_config: SourceConfig,
        pipeline: CameraPipeline,
        loop: asyncio.AbstractEventLoop,
        alerts: asyncio.Queue[CameraAlert],
    ) -> None:
        self.camera = camera
        self.pipeline = pipeline
        self.stop = threading.Event()
        self.finished = asyncio.Event()
        self.frames = 0
        self.last_frame_at: datetime | None = None
        self.connected = False
        self.source_error: str | None = None
        self.error: BaseException | None = None
        self.looped_at = datetime.now(UTC)  # last sign of life, for the stuck-thread watchdog
        self._sample_fps = sample_fps
        self._source_config = source_config
        self._loop = loop
        self._alerts = alerts
        self._clock = _InterruptibleClock(self.stop)
        self._thread = threading.Thread(target=self._run, name=f"camera-watch-{camera.camera_id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        try:
            try:
                source = open_source(self.camera.stream_url, sample_fps=self._sample_fps, config=self._source_config,
                                     clock=self._clock, on_event=self._on_event)
            except (ValueError, OSError) as error:  # unsupported scheme, missing file: a camera without picture
                self.source_error = f"{type(error).__name__}: {mask_url(str(error))}"
                log.warning("camera %s: cannot open %s (%s)", self.camera.camera_id,
                            mask_url(self.camera.stream_url), self.source_error)
                self._idle()
                return
            with source:
                while not self.stop.is_set():
                    frame = source.read()
                    now = self._clock.now()
                    self.looped_at = now
                    if frame is not None:
                        self.frames += 1
                        self.last_frame_at = frame.captured_at
                        self._hand_over(self.pipeline.process(frame))
                    elif source.finished:  # a non-looping file ended: as good as a camera without picture
                        self._idle()
                        return
                    else:
                        self._hand_over(self.pipeline.tick(now))
        except BaseException as error:
            self.error = error
            log.exception("camera %s: the watch loop failed", self.camera.camera_id)
        finally:
            with contextlib.suppress(RuntimeError):  # the event loop is gone: nobody waits any more
                self._loop.call_soon_threadsafe(self.finished.set)

    def _idle(self) -> None:
        """No source: time still passes for the health checks (camera_offline during business hours)."""
        while not self.stop.wait(IDLE_TICK_SECONDS):
            now = self._clock.now()
            self.looped_at = now
            self._hand_over(self.pipeline.tick(now))

    def _on_event(self, event: ConnectionEvent) -> None:
        if event.kind is ConnectionEventKind.CONNECTED:
            self.connected = True
        elif event.kind in (ConnectionEventKind.CONNECT_FAILED, ConnectionEventKind.STALLED):
            self.connected = False
        self._hand_over(self.pipeline.on_connection_event(event))

    def _hand_over(self, alerts: list[CameraAlert]) -> None:
        for alert in alerts:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._alerts.put_nowait, alert)


# ---------------------------------------------------------------------------------------------------------
# The activity


@dataclass
class _Retrying:
    alert: CameraAlert
    due: datetime
    failures: int


@dataclass
class _Progress:
    worker: str
    attempt: int
    started_at: datetime
    carried: dict[str, datetime]  # from the previous attempt or run: alert type → started_at
    raised: dict[str, str] = field(default_factory=dict)
    alerts_raised: int = 0
    alerts_known: int = 0
    alerts_pending: int = 0
    alerts_dropped: int = 0
    retrying: list[_Retrying] = field(default_factory=list)

    def details(self, watch: _CameraLoop, now: datetime) -> dict[str, Any]:
        """The heartbeat details: what an operator (and the failover test) sees of a running watch."""
        return {
            "worker": self.worker,
            "attempt": self.attempt,
            "at": now.isoformat(),
            "frames": watch.frames,
            "last_frame_at": None if watch.last_frame_at is None else watch.last_frame_at.isoformat(),
            "connected": watch.connected,
            "source_error": watch.source_error,
            "alerts_raised": self.alerts_raised,
            "alerts_known": self.alerts_known,
            "alerts_pending": self.alerts_pending,
            "alerts_dropped": self.alerts_dropped,
            "alerts_retrying": len(self.retrying),
            "raised": dict(self.raised),
        }


class CameraWatchActivities:
    def __init__(
        self,
        engine: Engine,
        intake: AlertIntake,
        *,
        identity: str | None = None,
        clock: Callable[[], datetime] = utcnow,
        source_config: SourceConfig | None = None,
        pipeline_config: Callable[[CameraSettings], PipelineConfig] = default_pipeline_config,
        evidence_store: EvidenceStore | None = None,
        detector_loader: Callable[[DetectorChoice], Detector] = load_detector,
    ) -> None:
        self._engine = engine
        self._intake = intake
        self._evidence_store = evidence_store  # reference frames; None: each watch enrols its own, unsaved
        self._detector_loader = detector_loader
        # One loaded detector per model file for all the cameras of this worker (inference is thread-safe).
        self._detectors: dict[tuple[str, str], Detector] = {}
        self._detectors_lock = threading.Lock()
        self.identity = identity or f"{os.getpid()}@{socket.gethostname()}"
        self._clock = clock
        self._source_config = source_config or SourceConfig()
        self._pipeline_config = pipeline_config

    @activity.defn(name="watch_camera")
    async def watch_camera(self, request: WatchCameraInput) -> WatchCameraOutput:
        info = activity.info()
        now = self._clock()
        progress = _Progress(worker=self.identity, attempt=info.attempt, started_at=now,
                             carried=_carried(request, info.heartbeat_details, now=now))
        progress.raised = {alert_type: at.isoformat() for alert_type, at in progress.carried.items()}
        camera = await asyncio.to_thread(load_camera, self._engine, request.camera_id)
        if camera is None:
            return self._output(request, WatchCameraOutcome.camera_missing, progress)
        if not camera.enabled:
            return self._output(request, WatchCameraOutcome.camera_disabled, progress)
        if now >= request.until:
            return self._output(request, WatchCameraOutcome.period_elapsed, progress)

        log.info("camera %s: watch starts on %s (attempt %d, %s)", camera.camera_id, self.identity, info.attempt,
                 mask_url(camera.stream_url))
        alerts: asyncio.Queue[CameraAlert] = asyncio.Queue()
        detector = await asyncio.to_thread(self._detector_for, camera)
        reference = await asyncio.to_thread(self._reference_for, camera)
        pipeline = CameraPipeline(self._pipeline_config(camera), started_at=now, detector=detector,
                                  reference=reference)
        watch = _CameraLoop(camera, sample_fps=request.sample_fps, source_config=self._source_config,
                            pipeline=pipeline, loop=asyncio.get_running_loop(), alerts=alerts)
        watch.start()
        every = max(0.1, request.heartbeat_every_seconds)
        heartbeats = asyncio.create_task(self._heartbeat_forever(watch, progress, every))
        outcome: WatchCameraOutcome | None = None
        try:
            outcome = await self._watch(request, camera, watch, alerts, progress, pipeline)
        except asyncio.CancelledError:
            if activity.is_worker_shutdown():
                raise _worker_shutting_down() from None
            log.info("camera %s: watch cancelled", camera.camera_id)
            raise
        finally:
            watch.stop.set()
            heartbeats.cancel()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(watch.finished.wait(), THREAD_STOP_GRACE_SECONDS)
        if outcome is not None and watch.finished.is_set():
            # A normal end: what the pipeline still holds (alerts waiting for their clip) goes out too.
            for alert in [*_drain(alerts), *pipeline.flush()]:
                await self._submit_or_retry(camera, alert, progress)
        return self._output(request, outcome, progress, watch)

    async def _watch(
        self,
        request: WatchCameraInput,
        camera: CameraSettings,
        watch: _CameraLoop,
        alerts: asyncio.Queue[CameraAlert],
        progress: _Progress,
        pipeline: CameraPipeline,
    ) -> WatchCameraOutcome:
        refresh = timedelta(seconds=max(0.2, request.refresh_seconds))
        next_refresh = self._clock() + refresh
        next_reference_try = self._clock()
        while True:
            if activity.is_worker_shutdown():
                raise _worker_shutting_down()
            now = self._clock()
            if now >= request.until:
                return WatchCameraOutcome.period_elapsed
            if watch.finished.is_set():
                raise ApplicationError(f"camera {camera.camera_id}: the watch loop ended: {watch.error!r}",
                                       type=CAMERA_LOOP_FAILED)
            if datetime.now(UTC) - watch.looped_at > STUCK_AFTER:
                raise ApplicationError(f"camera {camera.camera_id}: the watch loop is stuck", type=CAMERA_LOOP_FAILED)
            if now >= next_refresh:
                fresh = await asyncio.to_thread(load_camera, self._engine, camera.camera_id)
                if fresh is None:
                    return WatchCameraOutcome.camera_missing
                if not fresh.enabled:
                    return WatchCameraOutcome.camera_disabled
                if fresh.watch_key() != camera.watch_key():
                    return WatchCameraOutcome.camera_changed
                next_refresh = now + refresh
            if (camera.reference_frame_evidence_id is None and self._evidence_store is not None
                    and pipeline.tamper.reference is not None and now >= next_reference_try):
                camera = await self._keep_reference(camera, pipeline)
                next_reference_try = now + REFERENCE_RETRY
            await self._retry_due(camera, progress, now)
            wait = min((request.until - now).total_seconds(), (next_refresh - now).total_seconds(), 1.0)
            try:
                alert = await asyncio.wait_for(alerts.get(), timeout=max(0.05, wait))
            except TimeoutError:
                continue
            await self._submit_or_retry(camera, alert, progress)

    def _detector_for(self, camera: CameraSettings) -> Detector | None:
        choice = camera.detector
        if choice is None:
            return None
        with self._detectors_lock:
            detector = self._detectors.get((choice.path, choice.sha256))
            if detector is None:
                try:
                    detector = self._detector_loader(choice)
                except Exception as error:  # the camera's health and tamper checks still matter
                    log.error("camera %s: model %s %s does not load (%s); watching without a detector",
                              camera.camera_id, choice.name, choice.version, error)
                    return None
                self._detectors[(choice.path, choice.sha256)] = detector
            return detector

    def _reference_for(self, camera: CameraSettings) -> Image | None:
        if camera.reference_frame_evidence_id is None or self._evidence_store is None:
            return None
        try:
            return load_reference(self._evidence_store, camera.reference_frame_evidence_id)
        except Exception as error:
            log.error("camera %s: reference frame %s unusable (%s); enrolling a new one", camera.camera_id,
                      camera.reference_frame_evidence_id, error)
            return None

    async def _keep_reference(self, camera: CameraSettings, pipeline: CameraPipeline) -> CameraSettings:
        """Store the reference the tamper check enrolled; the watch goes on with it (no restart)."""
        assert self._evidence_store is not None
        reference, captured_at = pipeline.tamper.reference, pipeline.tamper.reference_captured_at
        if reference is None:
            return camera
        try:
            evidence_id = await asyncio.to_thread(store_reference, self._engine, self._evidence_store,
                                                  camera.camera_id, reference, captured_at)
        except Exception as error:
            log.warning("camera %s: the enrolled reference frame was not stored (%s: %s); retrying later",
                        camera.camera_id, type(error).__name__, error)
            return camera
        if evidence_id is None:
            return camera
        log.info("camera %s: reference frame enrolled and stored as evidence %s", camera.camera_id, evidence_id)
        return replace(camera, reference_frame_evidence_id=evidence_id)

    async def _heartbeat_forever(self, watch: _CameraLoop, progress: _Progress, every: float) -> None:
        # The SDK sends the first heartbeat at once and later ones at most every 0.8 × heartbeat timeout: let the
        # first one show the first frame when it comes quickly.
        loop = asyncio.get_running_loop()
        first_by = loop.time() + every
        while watch.frames == 0 and watch.source_error is None and loop.time() < first_by:
            await asyncio.sleep(0.05)
        while True:
            activity.heartbeat(progress.details(watch, self._clock()))
            await asyncio.sleep(every)

    async def _submit(self, camera: CameraSettings, alert: CameraAlert, progress: _Progress) -> bool:
        """Hand one alert to intake; False when it could not be stored (it is then retried later)."""
        finding = alert.finding
        started_at = finding.started_at
        carried = progress.carried.get(finding.alert_type)
        if carried is not None and started_at <= progress.started_at + CONTINUATION_WINDOW:
            started_at = carried  # the condition was already there when this attempt started: the same event
        submission = alert_submission(camera.camera_id, alert, started_at=started_at)
        event_id = submission.meta["event_id"]
        try:
            result = await self._intake.receive(submission)
        except DeliveryPending as pending:
            log.warning("camera %s: alert %s stored, delivery pending: %s", camera.camera_id, event_id, pending)
            progress.alerts_pending += 1
        except UnknownCamera:
            log.warning("camera %s: intake no longer knows the camera; alert %s dropped", camera.camera_id, event_id)
            progress.alerts_dropped += 1
            return True
        except DomainError as refused:
            log.error("camera %s: intake refused alert %s: %s", camera.camera_id, event_id, refused)
            progress.alerts_dropped += 1
            return True
        except Exception as error:
            log.warning("camera %s: alert %s not stored (%s: %s)", camera.camera_id, event_id,
                        type(error).__name__, error)
            return False
        else:
            if result.created:
                progress.alerts_raised += 1
                log.info("camera %s: alert %s → %s%s", camera.camera_id, event_id, result.case_id,
                         " (merged)" if result.merged else "")
            else:
                progress.alerts_known += 1
        progress.raised[finding.alert_type] = started_at.isoformat()
        return True

    async def _submit_or_retry(self, camera: CameraSettings, alert: CameraAlert, progress: _Progress, *,
                               failures: int = 0) -> None:
        if not await self._submit(camera, alert, progress):
            self._schedule_retry(camera, progress, alert, failures=failures + 1)

    async def _retry_due(self, camera: CameraSettings, progress: _Progress, now: datetime) -> None:
        for item in [item for item in progress.retrying if item.due <= now]:
            progress.retrying.remove(item)
            await self._submit_or_retry(camera, item.alert, progress, failures=item.failures)

    def _schedule_retry(self, camera: CameraSettings, progress: _Progress, alert: CameraAlert, *,
                        failures: int) -> None:
        if failures > len(SUBMIT_RETRY_DELAYS) or len(progress.retrying) >= MAX_RETRYING_ALERTS:
            log.error("camera %s: %s alert of %s dropped after %d failed submissions", camera.camera_id,
                      alert.alert_type, alert.finding.started_at.isoformat(), failures)
            progress.alerts_dropped += 1
            return
        delay = SUBMIT_RETRY_DELAYS[failures - 1]
        progress.retrying.append(_Retrying(alert=alert, due=self._clock() + delay, failures=failures))

    def _output(self, request: WatchCameraInput, outcome: WatchCameraOutcome, progress: _Progress,
                watch: _CameraLoop | None = None) -> WatchCameraOutput:
        dropped = progress.alerts_dropped + len(progress.retrying)
        if progress.retrying:
            log.error("camera %s: %d alert(s) never stored, dropped at the end of the run", request.camera_id,
                      len(progress.retrying))
        return WatchCameraOutput(
            camera_id=request.camera_id,
            outcome=outcome,
            worker=self.identity,
            frames=0 if watch is None else watch.frames,
            last_frame_at=None if watch is None else watch.last_frame_at,
            alerts_raised=progress.alerts_raised,
            alerts_known=progress.alerts_known,
            alerts_pending=progress.alerts_pending,
            alerts_dropped=dropped,
            raised=dict(progress.raised),
            ended_at=self._clock(),
        )


def _carried(request: WatchCameraInput, heartbeat_details: Sequence[Any], *, now: datetime) -> dict[str, datetime]:
    """The alerts a previous attempt (its last heartbeat) or run (the input) raised, if recent enough."""
    raised: Mapping[str, Any] = request.carried_raised
    as_of = request.carried_at
    if heartbeat_details and isinstance(heartbeat_details[-1], Mapping):
        details = heartbeat_details[-1]
        raised = details.get("raised") or {}
        as_of = _parse_time(details.get("at"))
    if as_of is None or now - as_of > CONTINUATION_MAX_GAP or not isinstance(raised, Mapping):
        return {}
    carried = {}
    for alert_type, text in raised.items():
        at = _parse_time(text)
        if at is not None:
            carried[str(alert_type)] = at
    return carried


def _parse_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _drain(queue: asyncio.Queue[CameraAlert]) -> list[CameraAlert]:
    items = []
    while not queue.empty():
        items.append(queue.get_nowait())
    return items


def _worker_shutting_down() -> ApplicationError:
    return ApplicationError("the vision worker is shutting down; the watch moves to another worker",
                            type=WORKER_SHUTDOWN, category=ApplicationErrorCategory.BENIGN)
