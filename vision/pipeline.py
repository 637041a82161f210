"""One camera's whole analysis: stream health, tamper checks, after-hours motion and the detector with its rules,
turning sampled frames into alerts with their evidence (a JPEG snapshot, and a WebM clip around the moment).

Used by the camera watch (live) and by ``sunshine vision analyze`` (a file), so both judge a scene the same way.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from vision.clips import Clip, ClipConfig, ClipRecorder, encode_jpeg
from vision.detectors.base import Detector
from vision.health import HealthConfig, StreamHealth, StreamState
from vision.motion import AfterHoursMotion, MotionConfig
from vision.rules import DetectionRules, RulesConfig
from vision.tamper import CAMERA_COVERED, TamperConfig, TamperMonitor
from vision.types import BusinessHours, Finding, Frame, Image

# Alerts whose moment matters get a clip; a camera fault is shown by its snapshot and its measurements.
CLIPPED_ALERT_TYPES = frozenset({"pest", "no_hat", "no_uniform", "no_mask", "smoking", "phone_use", "trash_can_open"})
PLACEHOLDER_SIZE = (360, 640)  # a camera that never sent a picture still needs a snapshot for its alert


@dataclass(frozen=True)
class PipelineConfig:
    business_hours: BusinessHours
    camera_areas: tuple[str, ...] = ()
    health: HealthConfig = field(default_factory=HealthConfig)
    tamper: TamperConfig = field(default_factory=TamperConfig)
    motion: MotionConfig = field(default_factory=MotionConfig)
    rules: RulesConfig = field(default_factory=RulesConfig)
    clips: ClipConfig = field(default_factory=ClipConfig)
    # The detector is the expensive part: it runs on at most one frame per interval.
    detect_interval: timedelta = timedelta(seconds=1)


@dataclass(frozen=True)
class CameraAlert:
    finding: Finding
    snapshot_jpeg: bytes
    clip: Clip | None = None
    model: Mapping[str, Any] | None = None  # name, version, sha256 of the detector that fired

    @property
    def alert_type(self) -> str:
        return self.finding.alert_type


@dataclass
class _Waiting:
    finding: Finding
    snapshot_jpeg: bytes
    model: Mapping[str, Any] | None
    label: str


class CameraPipeline:
    def __init__(
        self,
        config: PipelineConfig,
        *,
        started_at: datetime,
        detector: Detector | None = None,
        reference: Image | None = None,
    ) -> None:
        self.config = config
        self.detector = detector
        tamper_config = replace(config.tamper, business_hours=config.tamper.business_hours or config.business_hours)
        self.health = StreamHealth(config.health, started_at=started_at, business_hours=config.business_hours)
        self.tamper = TamperMonitor(tamper_config, reference=reference)
        self.motion = AfterHoursMotion(config.business_hours, config.motion)
        model = detector.info.provenance() if detector is not None else None
        self.rules = None
        if detector is not None:
            self.rules = DetectionRules(config.rules, camera_areas=config.camera_areas, model=model)
        self.clips = ClipRecorder(config.clips)
        self._model = model
        self._waiting: list[_Waiting] = []
        self._last_frame: Frame | None = None
        self._last_detection_at: datetime | None = None
        self._labels = itertools.count()

    def process(self, frame: Frame) -> list[CameraAlert]:
        """One sampled frame in; the alerts that are complete now out (a clipped alert waits for its clip)."""
        self._last_frame = frame
        ready: list[CameraAlert] = []
        findings: list[tuple[Finding, Frame, Mapping[str, Any] | None]] = []
        tamper_findings = self.tamper.observe(frame)
        findings += [(f, frame, None) for f in self._health_findings(frame)]
        findings += [(f, frame, None) for f in tamper_findings]
        findings += [(f, frame, None) for f in self.motion.observe(frame)]
        if self.rules is not None and self.detector is not None and self._detection_due(frame.captured_at):
            self._last_detection_at = frame.captured_at
            for firing in self.rules.observe(frame, self.detector.detect(frame.image)):
                findings.append((firing.finding, firing.snapshot, self._model))
        for finding, snapshot, model in findings:
            jpeg = encode_jpeg(snapshot.image)
            if finding.alert_type in CLIPPED_ALERT_TYPES:
                label = f"{finding.alert_type}#{next(self._labels)}"
                self.clips.trigger(finding.at, label)
                self._waiting.append(_Waiting(finding, jpeg, model, label))
            else:
                ready.append(CameraAlert(finding, jpeg, None, model))
        ready += self._with_clips(self.clips.add(frame))
        return ready

    def _health_findings(self, frame: Frame) -> tuple[Finding, ...]:
        """A covered lens also looks frozen (the same dark picture for minutes): it is one fault, reported once,
        as the more telling ``camera_covered`` with its measurements."""
        findings = self.health.on_frame(frame).findings
        if CAMERA_COVERED in self.tamper.active | self.tamper.pending:
            return tuple(f for f in findings if f.metrics.get("state") != StreamState.FROZEN.value)
        return findings

    def tick(self, now: datetime) -> list[CameraAlert]:
        """Time passes without frames (the stream is down): health may conclude something."""
        return [CameraAlert(f, self._snapshot_without_frame()) for f in self.health.tick(now).findings]

    def on_connection_event(self, event: Any) -> list[CameraAlert]:
        """A source's ConnectionEvent (connected, connect_failed, stalled, reconnecting)."""
        return [CameraAlert(f, self._snapshot_without_frame()) for f in self.health.on_event(event).findings]

    def flush(self) -> list[CameraAlert]:
        """The stream ended: alerts still waiting get the clip they have."""
        alerts = self._with_clips(self.clips.flush())
        alerts += [CameraAlert(w.finding, w.snapshot_jpeg, None, w.model) for w in self._waiting]
        self._waiting = []
        return alerts

    def _detection_due(self, at: datetime) -> bool:
        last = self._last_detection_at
        return last is None or at - last >= self.config.detect_interval

    def _with_clips(self, clips: list[Clip]) -> list[CameraAlert]:
        alerts = []
        for clip in clips:
            waiting = next((w for w in self._waiting if w.label == clip.label), None)
            if waiting is None:
                continue
            self._waiting.remove(waiting)
            alerts.append(CameraAlert(waiting.finding, waiting.snapshot_jpeg, clip, waiting.model))
        return alerts

    def _snapshot_without_frame(self) -> bytes:
        if self._last_frame is not None:
            return encode_jpeg(self._last_frame.image)
        return encode_jpeg(np.zeros((*PLACEHOLDER_SIZE, 3), dtype=np.uint8))
