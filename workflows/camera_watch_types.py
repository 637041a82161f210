"""The contract of CameraWatchWorkflow: durable names and the payload dataclasses of its messages.

Kept apart from the workflow module for the same reason as ``workflows.alert_case_types``: the workflow module is
re-imported inside Temporal's sandbox, where ``datetime.datetime`` is a restricted proxy that the default converter
cannot decode into; the workflow imports this module through ``imports_passed_through``.

Durable names (workflow, signal, query, activity, workflow id) are contracts: change them only with a patch and
replay tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

WORKFLOW_NAME = "CameraWatchWorkflow"
TASK_QUEUE = "vision"  # the default; the workflow and its activity run on the vision workers' queue
ACTIVITY_WATCH_CAMERA = "watch_camera"
SIGNAL_STOP = "stop"
QUERY_GET_STATE = "get_state"
WORKFLOW_ID_PREFIX = "camera-watch-"


def camera_watch_workflow_id(camera_id: int) -> str:
    """One watch per camera in the namespace: ``camera-watch-{camera_id}``."""
    return f"{WORKFLOW_ID_PREFIX}{camera_id}"


def camera_id_of_watch(workflow_id: str) -> int | None:
    """The camera of a watch's workflow id (None for an id that is not a watch's)."""
    suffix = workflow_id.removeprefix(WORKFLOW_ID_PREFIX)
    if suffix == workflow_id or not suffix.isdigit():
        return None
    return int(suffix)


class WatchOutcome(StrEnum):
    """Why one run of the ``watch_camera`` activity (or the whole watch) ended."""

    period_elapsed = "period_elapsed"  # the workflow run's period is over: continue-as-new
    camera_changed = "camera_changed"  # stream URL, area, hours or reference changed: run the activity again
    camera_disabled = "camera_disabled"  # the camera was switched off: the watch ends
    camera_missing = "camera_missing"  # the camera row is gone: the watch ends
    stopped = "stopped"  # the ``stop`` signal: the watch ends (the activity is cancelled)


class WatchStatus(StrEnum):
    watching = "watching"
    stopping = "stopping"
    ended = "ended"


@dataclass
class WatchOptions:
    """Tunables of one watch, carried across continue-as-new (defaults are production values)."""

    # Without a heartbeat for this long the attempt is given up and retried on another vision worker.
    heartbeat_timeout_seconds: float = 10.0
    # The activity heartbeats this often (at most a third of the timeout).
    heartbeat_every_seconds: float = 2.0
    # The camera row is read again this often: switched off → the watch ends; changed → the activity restarts.
    refresh_seconds: float = 30.0
    # Frames analysed per second (as ``sunshine vision analyze`` samples by default).
    sample_fps: float = 5.0
    # Each workflow run watches this long, then continues as new (keeps the history short).
    period_hours: float = 24.0


@dataclass
class CameraWatchInput:
    camera_id: int
    options: WatchOptions = field(default_factory=WatchOptions)
    # Set by continue-as-new: the alerts the previous run raised (alert type → started_at ISO), so that a
    # condition lasting across midnight is not raised again.
    carried_raised: dict[str, str] = field(default_factory=dict)


@dataclass
class StopWatchInput:
    reason: str = "stopped"  # e.g. camera_disabled (sent by sync_camera_watches)
    by: str = "system"


@dataclass
class CameraWatchResult:
    camera_id: int
    outcome: WatchOutcome
    ended_at: datetime
    reason: str = ""  # the stop signal's reason, when stopped
    activity_runs: int = 0  # completed activity runs in this workflow run


@dataclass
class WatchState:
    """What ``get_state`` answers. Live progress (frames, last frame, worker) is in the activity's heartbeat."""

    camera_id: int
    status: WatchStatus
    run_started_at: datetime
    period_ends_at: datetime
    activity_runs: int = 0  # completed activity runs in this workflow run
    last_outcome: WatchOutcome | None = None
    alerts_raised: int = 0  # alerts delivered by completed activity runs of this workflow run
    stop_reason: str | None = None
    stop_requested_by: str | None = None
