"""Every committed history must replay against the current workflow code (determinism gate for deploys).

The histories were exported from the timer-path tests by tests/replay/record_histories.py. A failure here means a
change would break cases already in flight: put it behind ``workflow.patched()`` (temporal reference §7).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from workflows.alert_case import AlertCaseWorkflow
from workflows.camera_watch import CameraWatchWorkflow
from workflows.enforcement_handoff import EnforcementHandoffWorkflow
from workflows.history_export import HistoryExportWorkflow
from workflows.transparency_checkpoint import TransparencyCheckpointWorkflow

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))
EXPECTED_PATHS = {
    "silence_then_deadline", "rectified_now_reviewed", "immediate_fix_too_late", "needs_time_met",
    "needs_time_missed", "dispute_accepted", "merged_alerts", "transfer_case", "transfer_handoff",
    "camera_watch_stopped", "camera_watch_disabled", "camera_watch_continued",
    "history_export_recent", "transparency_checkpoint",
}


def test_one_history_per_path_is_committed() -> None:
    assert {path.stem for path in HISTORIES} >= EXPECTED_PATHS


@pytest.mark.parametrize("path", HISTORIES, ids=lambda path: path.stem)
async def test_history_replays_against_current_code(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert json.loads(text)["events"], "empty history"
    history = WorkflowHistory.from_json(path.stem, text)
    replayer = Replayer(workflows=[AlertCaseWorkflow, EnforcementHandoffWorkflow, CameraWatchWorkflow,
                                   HistoryExportWorkflow, TransparencyCheckpointWorkflow])
    result = await replayer.replay_workflow(history)
    assert result.replay_failure is None
