"""Stream health per camera: a pure state machine fed with frames, connection events and clock ticks.

States (Frigate's watchdog numbers as defaults, all configurable):

* ``no_signal``: no frame for ``no_frame_seconds`` (20 s, Frigate's "no frames for 20 s → offline").
* ``unreachable``: no frame for ``unreachable_seconds`` *and* the latest connection attempts are failing (power or
  network cut), as opposed to a connection that is up but silent.
* ``frozen``: frames keep arriving but none differs from the first of the run by more than sensor noise for
  ``frozen_seconds`` (2 min): a hung encoder or an NVR repeating its last picture. A live camera shows itself by
  sensor noise (whole-picture mean difference ≥ ``frozen_max_difference``) or by a small local change such as the
  on-screen clock ticking (some 4×4 block's mean difference ≥ ``frozen_max_local_difference``).
* ``ok`` otherwise; reaching it again is the recovery.

Every problem must last its threshold before the state changes. The time from leaving ``ok`` until returning to it
is one *episode* and raises at most one ``camera_offline`` Finding: at the first moment the episode is on during the
camera's business hours (so a camera still dead at opening time is reported then). Outside business hours the state
changes are returned as records only. Reconnect attempts and stalls are kept as rolling one-hour counts, as in
Frigate's ``CameraWatchdog``.

The machine reads no clock: every observation carries its time, and ``tick(now)`` advances time between them.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

import cv2
import numpy as np
import numpy.typing as npt

from vision.sources import ConnectionEvent, ConnectionEventKind
from vision.types import BusinessHours, Finding, Frame, Image

CAMERA_OFFLINE = "camera_offline"  # domain.alerts.taxonomy.AlertType.camera_offline


class StreamState(StrEnum):
    OK = "ok"
    NO_SIGNAL = "no_signal"
    UNREACHABLE = "unreachable"
    FROZEN = "frozen"


@dataclass(frozen=True)
class HealthConfig:
    no_frame_seconds: float = 20.0
    unreachable_seconds: float = 20.0
    frozen_seconds: float = 120.0
    # Two frames are the same picture when both differences stay below these (grey levels, 0–255). Measured on a
    # static textured scene: sensor noise σ = 3 gives a mean of 2.27 (σ = 1: 0.78) and block maxima ≤ 4.6; an
    # OSD clock's seconds digit on a noise-free scene gives a mean of 0.002–0.008 but a block maximum of 19–33
    # (640×360 to 3840×2160); a repeated or identically re-encoded frame gives 0 and 0.
    frozen_max_difference: float = 1.0
    frozen_max_local_difference: float = 10.0
    # Frames are compared on a grey copy decimated (every n-th pixel, not averaged) to at most this width:
    # averaging would smooth away the very sensor noise that tells a live static scene from a frozen one
    # (an area-averaged 64-px copy takes σ = 3 noise down to 0.23). ≈ 2 ms per 1080p frame.
    signature_width: int = 640
    compare_interval_s: float = 1.0  # pictures are compared at most this often (frozen is a matter of minutes)
    # With the expected frame rate set, a gap between frames longer than max(2 / fps, 2 s) counts as a stall
    # (Frigate's rule); stalls reported by the source are counted either way.
    expected_fps: float | None = None
    window_seconds: float = 3600.0  # the rolling window of the reconnect and stall counts
    timezone: str = "Asia/Shanghai"  # business hours are local (Beijing) time


@dataclass(frozen=True)
class StateChange:
    """A state transition; outside business hours this record is all there is (no Finding)."""

    at: datetime
    previous: StreamState
    state: StreamState
    since: datetime  # when the condition began (the last frame, the start of the identical run, ...)
    in_business_hours: bool
    alerted: bool  # this episode has raised its camera_offline Finding (now or earlier)
    metrics: dict[str, Any]


@dataclass(frozen=True)
class HealthUpdate:
    changes: tuple[StateChange, ...] = ()
    findings: tuple[Finding, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.changes or self.findings)


_Signature = npt.NDArray[np.int16]


def frame_signature(image: Image, max_width: int = 640) -> _Signature:
    """Grey, decimated copy of ``image`` for frozen-frame comparison (see ``HealthConfig.signature_width``)."""
    step = max(1, math.ceil(image.shape[1] / max_width))
    small = np.ascontiguousarray(image[::step, ::step])
    grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY) if small.ndim == 3 and small.shape[2] == 3 else small
    return np.asarray(grey, dtype=np.int16)


_BLOCK = 4  # pixels of the signature per side of a block for the local difference


@dataclass(frozen=True)
class FrameDifference:
    mean: float  # mean absolute grey difference over the picture
    local: float  # the largest mean absolute difference of a 4×4 block

    def is_same_picture(self, config: HealthConfig) -> bool:
        return self.mean < config.frozen_max_difference and self.local < config.frozen_max_local_difference


def frame_difference(a: _Signature, b: _Signature) -> FrameDifference:
    """How far apart two signatures are; infinite when the resolution changed (a change by definition)."""
    if a.shape != b.shape:
        return FrameDifference(math.inf, math.inf)
    diff = np.abs(a - b).astype(np.float32)
    height, width = diff.shape[:2]
    blocks = cv2.resize(diff, (max(1, width // _BLOCK), max(1, height // _BLOCK)), interpolation=cv2.INTER_AREA)
    return FrameDifference(mean=float(diff.mean()), local=float(blocks.max()))


@dataclass
class _RollingCount:
    window: timedelta
    times: deque[datetime] = field(default_factory=deque)

    def add(self, at: datetime) -> None:
        self.times.append(at)

    def count(self, now: datetime) -> int:
        cutoff = now - self.window
        while self.times and self.times[0] <= cutoff:
            self.times.popleft()
        return sum(1 for at in self.times if at <= now)


class StreamHealth:
    """Health of one camera stream. Each observation returns a ``HealthUpdate`` (usually empty)."""

    def __init__(self, config: HealthConfig | None = None, *, started_at: datetime,
                 business_hours: BusinessHours | None = None) -> None:
        """``started_at``: when monitoring began (a camera that never sends a frame is silent since then);
        ``business_hours`` None means always open."""
        self.config = config or HealthConfig()
        _require_aware(started_at)
        self.business_hours = business_hours
        self._zone = ZoneInfo(self.config.timezone)
        self._started_at = started_at
        window = timedelta(seconds=self.config.window_seconds)
        self._reconnects = _RollingCount(window)
        self._stalls = _RollingCount(window)
        self._connect_failures = _RollingCount(window)
        self._stall_gap = (timedelta(seconds=max(2.0 / self.config.expected_fps, 2.0))
                           if self.config.expected_fps else None)
        self._last_frame_at: datetime | None = None
        self._failing_since: datetime | None = None
        self._anchor: _Signature | None = None  # first frame of the current run of identical frames
        self._compared_at: datetime | None = None
        self._unchanged_since: datetime | None = None
        self._last_difference: FrameDifference | None = None
        self.state = StreamState.OK
        self.since = started_at  # when the current state's condition began
        self._episode_started_at: datetime | None = None
        self._episode_alerted = False

    # -- observations ------------------------------------------------------------------------------------------

    def on_frame(self, frame: Frame) -> HealthUpdate:
        at = frame.captured_at
        _require_aware(at)
        if self._last_frame_at is not None and at <= self._last_frame_at:
            return HealthUpdate()  # out of order or repeated delivery: no new evidence
        if self._stall_gap is not None and self._last_frame_at is not None and at - self._last_frame_at > (
                self._stall_gap):
            self._stalls.add(at)
        if self._compared_at is None or (at - self._compared_at).total_seconds() >= self.config.compare_interval_s:
            # Frozen takes minutes to call: comparing pictures once a second is enough, and it is the costly part.
            self._compared_at = at
            signature = frame_signature(frame.image, self.config.signature_width)
            difference = None if self._anchor is None else frame_difference(self._anchor, signature)
            self._last_difference = difference
            if difference is None or not difference.is_same_picture(self.config):
                self._anchor, self._unchanged_since = signature, at
        self._last_frame_at = at
        self._failing_since = None  # a frame proves the camera is reachable
        return self._evaluate(at)

    def on_connected(self, at: datetime) -> HealthUpdate:
        _require_aware(at)
        self._failing_since = None
        return self._evaluate(at)

    def on_connect_failed(self, at: datetime) -> HealthUpdate:
        _require_aware(at)
        self._connect_failures.add(at)
        if self._failing_since is None:
            self._failing_since = at
        return self._evaluate(at)

    def on_reconnect(self, at: datetime) -> HealthUpdate:
        """A reconnection attempt was started (Frigate counts each ffmpeg restart the same way)."""
        _require_aware(at)
        self._reconnects.add(at)
        return self._evaluate(at)

    def on_stall(self, at: datetime) -> HealthUpdate:
        _require_aware(at)
        self._stalls.add(at)
        return self._evaluate(at)

    def on_event(self, event: ConnectionEvent) -> HealthUpdate:
        """Feed a ``vision.sources`` connection event. As a source's ``on_event`` callback, wrap it so the returned
        update is kept: ``on_event=lambda event: updates.append(health.on_event(event))``."""
        handlers = {
            ConnectionEventKind.CONNECTED: self.on_connected,
            ConnectionEventKind.CONNECT_FAILED: self.on_connect_failed,
            ConnectionEventKind.STALLED: self.on_stall,
            ConnectionEventKind.RECONNECTING: self.on_reconnect,
        }
        return handlers[event.kind](event.at)

    def tick(self, now: datetime) -> HealthUpdate:
        _require_aware(now)
        return self._evaluate(now)

    # -- counts and metrics ------------------------------------------------------------------------------------

    def reconnects_last_hour(self, now: datetime) -> int:
        return self._reconnects.count(now)

    def stalls_last_hour(self, now: datetime) -> int:
        return self._stalls.count(now)

    def connect_failures_last_hour(self, now: datetime) -> int:
        return self._connect_failures.count(now)

    @property
    def last_frame_at(self) -> datetime | None:
        return self._last_frame_at

    def metrics(self, now: datetime) -> dict[str, Any]:
        """Values that explain the current state (JSON-ready: times as ISO strings)."""
        metrics: dict[str, Any] = {
            "state": self.state.value,
            "since": self.since.isoformat(),
            "reconnects_last_hour": self.reconnects_last_hour(now),
            "stalls_last_hour": self.stalls_last_hour(now),
            "connect_failures_last_hour": self.connect_failures_last_hour(now),
            "last_frame_at": self._last_frame_at.isoformat() if self._last_frame_at else None,
            "seconds_without_frame": round(_seconds(now - self._silent_since()), 3),
        }
        if self._failing_since is not None:
            metrics["failing_since"] = self._failing_since.isoformat()
        if self.state is StreamState.FROZEN and self._last_difference is not None:
            metrics["frame_difference_mean"] = round(self._last_difference.mean, 4)
            metrics["frame_difference_local"] = round(self._last_difference.local, 4)
            metrics["frozen_max_difference"] = self.config.frozen_max_difference
            metrics["frozen_max_local_difference"] = self.config.frozen_max_local_difference
        return metrics

    # -- the machine -------------------------------------------------------------------------------------------

    def _silent_since(self) -> datetime:
        return self._last_frame_at or self._started_at

    def _condition(self, now: datetime) -> tuple[StreamState, datetime]:
        silent_since = self._silent_since()
        silent_for = _seconds(now - silent_since)
        if self._failing_since is not None and silent_for >= self.config.unreachable_seconds:
            return StreamState.UNREACHABLE, silent_since
        if silent_for >= self.config.no_frame_seconds:
            return StreamState.NO_SIGNAL, silent_since
        if (self._last_frame_at is not None and self._unchanged_since is not None
                and _seconds(self._last_frame_at - self._unchanged_since) >= self.config.frozen_seconds):
            return StreamState.FROZEN, self._unchanged_since
        return StreamState.OK, now

    def _is_business_time(self, now: datetime) -> bool:
        if self.business_hours is None:
            return True
        return self.business_hours.is_open(now.astimezone(self._zone).time())

    def _evaluate(self, now: datetime) -> HealthUpdate:
        state, since = self._condition(now)
        open_now = self._is_business_time(now)
        changed = state is not self.state
        previous = self.state
        if changed:
            if state is StreamState.OK:
                self._episode_started_at, self._episode_alerted = None, False
            elif previous is StreamState.OK:
                self._episode_started_at, self._episode_alerted = since, False
            self.state, self.since = state, since
        findings: tuple[Finding, ...] = ()
        if state is not StreamState.OK and not self._episode_alerted and open_now:
            self._episode_alerted = True
            assert self._episode_started_at is not None
            findings = (Finding(alert_type=CAMERA_OFFLINE, started_at=self._episode_started_at, at=now, score=1.0,
                                metrics=self.metrics(now)),)
        changes: tuple[StateChange, ...] = ()
        if changed:
            changes = (StateChange(at=now, previous=previous, state=state, since=since, in_business_hours=open_now,
                                   alerted=self._episode_alerted, metrics=self.metrics(now)),)
        return HealthUpdate(changes=changes, findings=findings)


def _seconds(delta: timedelta) -> float:
    return max(0.0, delta.total_seconds())


def _require_aware(at: datetime) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("stream health times must be timezone-aware (UTC)")
