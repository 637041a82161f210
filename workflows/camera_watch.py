"""CameraWatchWorkflow: one enabled camera watched by a vision worker (办法 第二、十二条), one workflow per camera.

Workflow id ``camera-watch-{camera_id}``, started (idempotently) by ``infra.vision_worker.sync_camera_watches``.
The workflow and its activity run on the vision task queue. It runs the long, heartbeating ``watch_camera``
activity (``activities.camera_watch``): the heartbeat timeout (10 s by default) is how fast a dead vision worker's
camera moves to another worker, since the retry policy never gives up (backoff 1 s → 30 s).

- The activity ends by itself when the camera is switched off or deleted (the watch ends), when its settings
  change (the activity runs again), or when the run's period is over (a day: the workflow continues as new, so
  the history stays small).
- Signal ``stop`` (sent by the sync for a camera that is no longer enabled) cancels the activity and ends the
  watch once the activity has stopped (it learns of the cancel with its next heartbeat, within 0.8 × the
  heartbeat timeout).
- Query ``get_state``: status, period, completed activity runs; live progress (frames, last frame, the worker) is
  in the pending activity's heartbeat details (``describe``).

Durable names (workflow, signal, query, activity) are contracts: change them only with a patch and replay tests.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError
from temporalio.workflow import ActivityCancellationType

with workflow.unsafe.imports_passed_through():
    from activities.camera_watch import CameraWatchActivities, WatchCameraInput, WatchCameraOutput
    from workflows.camera_watch_types import (
        ACTIVITY_WATCH_CAMERA,
        QUERY_GET_STATE,
        SIGNAL_STOP,
        TASK_QUEUE,
        WORKFLOW_NAME,
        CameraWatchInput,
        CameraWatchResult,
        StopWatchInput,
        WatchOptions,
        WatchOutcome,
        WatchState,
        WatchStatus,
        camera_id_of_watch,
        camera_watch_workflow_id,
    )

__all__ = [
    "ACTIVITY_WATCH_CAMERA",
    "QUERY_GET_STATE",
    "SIGNAL_STOP",
    "TASK_QUEUE",
    "WORKFLOW_NAME",
    "CameraWatchInput",
    "CameraWatchResult",
    "CameraWatchWorkflow",
    "StopWatchInput",
    "WatchOptions",
    "WatchOutcome",
    "WatchState",
    "WatchStatus",
    "camera_id_of_watch",
    "camera_watch_workflow_id",
]

# Never give up: a watch is retried on the next vision worker for as long as the camera is enabled.
WATCH_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), backoff_coefficient=2.0, maximum_interval=timedelta(seconds=30),
    maximum_attempts=0,
)
# One attempt may last the whole period; it ends by itself at the period's end, this is only the backstop.
START_TO_CLOSE_SLACK = timedelta(hours=1)


@workflow.defn(name=WORKFLOW_NAME)
class CameraWatchWorkflow:
    @workflow.init
    def __init__(self, request: CameraWatchInput) -> None:
        now = workflow.now()
        self._stop: StopWatchInput | None = None
        self._state = WatchState(
            camera_id=request.camera_id,
            status=WatchStatus.watching,
            run_started_at=now,
            period_ends_at=now + timedelta(hours=request.options.period_hours),
        )
        # Alerts raised so far (alert type → started_at), handed to the next activity run (alert continuation).
        self._raised: dict[str, str] = dict(request.carried_raised)
        self._raised_at: datetime | None = now if request.carried_raised else None

    @workflow.run
    async def run(self, request: CameraWatchInput) -> CameraWatchResult:
        options = request.options
        while True:
            if self._stop is not None:
                return self._end(WatchOutcome.stopped, self._stop.reason)
            activity = workflow.start_activity_method(
                CameraWatchActivities.watch_camera,
                WatchCameraInput(
                    camera_id=request.camera_id,
                    until=self._state.period_ends_at,
                    heartbeat_every_seconds=min(options.heartbeat_every_seconds,
                                                options.heartbeat_timeout_seconds / 3),
                    refresh_seconds=options.refresh_seconds,
                    sample_fps=options.sample_fps,
                    carried_raised=dict(self._raised),
                    carried_at=self._raised_at,
                ),
                start_to_close_timeout=timedelta(hours=options.period_hours) + START_TO_CLOSE_SLACK,
                heartbeat_timeout=timedelta(seconds=options.heartbeat_timeout_seconds),
                retry_policy=WATCH_RETRY,
                # A stopped watch ends once its activity has stopped: the activity learns of the cancel with the
                # answer to its next heartbeat (the SDK sends one at most every 0.8 × heartbeat timeout); an
                # activity whose worker died ends at its heartbeat timeout (a cancel-requested one is not retried).
                cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
                summary=f"camera {request.camera_id}",
            )
            await self._done_or_stopped(activity)
            if not activity.done():
                self._state.status = WatchStatus.stopping
                activity.cancel()
            try:
                output: WatchCameraOutput = await activity
            except ActivityError:
                if self._stop is not None:  # cancelled, or timed out on a dead worker after the cancel request
                    return self._end(WatchOutcome.stopped, self._stop.reason)
                raise
            outcome = WatchOutcome(output.outcome)
            self._state.activity_runs += 1
            self._state.last_outcome = outcome
            self._state.alerts_raised += output.alerts_raised
            self._raised, self._raised_at = dict(output.raised), output.ended_at
            if outcome in (WatchOutcome.camera_disabled, WatchOutcome.camera_missing):
                return self._end(outcome)
            if outcome is WatchOutcome.period_elapsed or workflow.info().is_continue_as_new_suggested():
                break
            # camera_changed: the next activity run reads the new settings
        await workflow.wait_condition(workflow.all_handlers_finished)
        if self._stop is not None:
            return self._end(WatchOutcome.stopped, self._stop.reason)
        workflow.continue_as_new(CameraWatchInput(camera_id=request.camera_id, options=options,
                                                  carried_raised=dict(self._raised)))

    async def _done_or_stopped(self, activity: workflow.ActivityHandle[WatchCameraOutput]) -> None:
        await workflow.wait_condition(lambda: activity.done() or self._stop is not None)

    def _end(self, outcome: WatchOutcome, reason: str = "") -> CameraWatchResult:
        self._state.status = WatchStatus.ended
        self._state.last_outcome = outcome
        return CameraWatchResult(camera_id=self._state.camera_id, outcome=outcome, ended_at=workflow.now(),
                                 reason=reason, activity_runs=self._state.activity_runs)

    @workflow.signal(name=SIGNAL_STOP)
    def stop(self, request: StopWatchInput) -> None:
        if self._stop is None:
            self._stop = request
            self._state.stop_reason = request.reason
            self._state.stop_requested_by = request.by

    @workflow.query(name=QUERY_GET_STATE)
    def get_state(self) -> WatchState:
        return self._state
