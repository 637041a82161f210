"""Verifying an exported workflow history and replaying it against the running workflow code.

``check_and_replay`` checks the per-event chain, the file digest and the manifest's signature
(``domain.audit.history_chain``), then replays the history with the Temporal ``Replayer`` and the casework
worker's workflow classes (the same classes and the default data converter and sandbox, as the worker; temporal
reference §8). The verdict is DETERMINISTIC, DIVERGED (the first divergence: its message and the event where the
current code stops reproducing the history) or TAMPERED (the first thing verification found wrong).

Replay proves that this code makes these decisions from these inputs, not that the inputs are untouched (an edited
name still replays): that is the chain's part, so a failed check is TAMPERED whatever the replay says.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from domain.audit.history_chain import HistoryCheck, MalformedHistory, event_id_of, history_events, verify_history
from domain.base import utcnow
from domain.transparency.signed_note import NoteVerifier
from infra.code_version import code_version

WORKFLOW_TASK_SCHEDULED = "EVENT_TYPE_WORKFLOW_TASK_SCHEDULED"
WORKFLOW_TASK_COMPLETED = "EVENT_TYPE_WORKFLOW_TASK_COMPLETED"
# One replay of one history; a replay that hangs (a history cut oddly by hand) must not hang the auditor's page.
REPLAY_TIMEOUT_SECONDS = 60
# Where the SDK's nondeterminism message names the history event it could not match.
_EVENT_IN_MESSAGE = re.compile(r"HistoryEvent\(id: (\d+)|event(?: id)?[ :#]+(\d+)", re.IGNORECASE)
_CORE_MESSAGE = re.compile(r'message: "((?:[^"\\]|\\.)*)"')


class Verdict(StrEnum):
    deterministic = "deterministic"
    diverged = "diverged"
    tampered = "tampered"


@dataclass(frozen=True)
class ReplayVerdict:
    verdict: Verdict
    check: HistoryCheck
    divergence: str | None = None  # the replay failure's message
    divergence_event_id: int | None = None
    replayed_with: str = field(default_factory=code_version)
    checked_at: datetime = field(default_factory=utcnow)

    def line(self) -> str:
        if self.verdict == Verdict.tampered:
            return f"TAMPERED: {self.check.problem}"
        if self.verdict == Verdict.diverged:
            where = f" at event {self.divergence_event_id}" if self.divergence_event_id is not None else ""
            return f"DIVERGED{where}: {self.divergence}"
        return "DETERMINISTIC"

    def as_record(self) -> dict[str, Any]:
        """What the export row keeps of the latest check (JSON)."""
        return {
            "verdict": self.verdict.value,
            "summary": self.line(),
            "problems": list(self.check.problems),
            "first_bad_event_id": self.check.first_bad_event_id,
            "divergence": self.divergence,
            "divergence_event_id": self.divergence_event_id,
            "replayed_with": self.replayed_with,
        }


def replay_workflows() -> list[type]:
    """The workflow classes of the worker that ran the exported histories (a Replayer needs the same ones)."""
    from workflows.alert_case import AlertCaseWorkflow
    from workflows.camera_watch import CameraWatchWorkflow
    from workflows.enforcement_handoff import EnforcementHandoffWorkflow

    return [AlertCaseWorkflow, EnforcementHandoffWorkflow, CameraWatchWorkflow]


async def check_and_replay(
    workflow_id: str,
    history: bytes,
    manifest_note: str,
    verifier: NoteVerifier,
    *,
    workflows: Sequence[type] | None = None,
) -> ReplayVerdict:
    """Verify the chain and signature, then replay against ``workflows`` (default: the worker's current classes).

    A tampered history is still replayed when it parses (what the replay says is reported too), but its verdict is
    TAMPERED whatever the replay found: replay proves only that this code makes these decisions from these inputs.
    """
    check = verify_history(history, manifest_note, verifier)
    try:
        events = history_events(history)
    except MalformedHistory:
        return ReplayVerdict(verdict=Verdict.tampered, check=check)
    replayer = Replayer(workflows=list(workflows or replay_workflows()))
    failure = await _replay_failure(replayer, workflow_id, events)
    divergence = divergence_event_id = None
    if failure is not None:
        divergence = _divergence_message(failure)
        divergence_event_id = _divergence_event_id(str(failure))
        if divergence_event_id is None:  # some core messages name no event: find the workflow task that fails
            divergence_event_id = await _first_divergent_event(replayer, workflow_id, events)
    if not check.ok:
        verdict = Verdict.tampered
    elif failure is not None:
        verdict = Verdict.diverged
    else:
        verdict = Verdict.deterministic
    return ReplayVerdict(verdict=verdict, check=check, divergence=divergence, divergence_event_id=divergence_event_id)


async def _replay_failure(replayer: Replayer, workflow_id: str, events: Sequence[dict[str, Any]]) -> Exception | None:
    history = WorkflowHistory.from_json(workflow_id, json.dumps({"events": list(events)}))
    result = await asyncio.wait_for(
        replayer.replay_workflow(history, raise_on_replay_failure=False), REPLAY_TIMEOUT_SECONDS
    )
    return result.replay_failure


async def _first_divergent_event(
    replayer: Replayer, workflow_id: str, events: Sequence[dict[str, Any]]
) -> int | None:
    """The first event the current code does not reproduce: replay growing prefixes of the history, each ending
    before a workflow task, to find the first task whose commands differ (a failing prefix stays failing when
    it grows, so a binary search does); the answer is the first event that task's completion produced."""
    first_completed = next((index for index, event in enumerate(events) if _is(event, WORKFLOW_TASK_COMPLETED)), None)
    if first_completed is None:
        return None
    cuts = [index for index, event in enumerate(events) if _is(event, WORKFLOW_TASK_SCHEDULED)]
    cuts = [*(cut for cut in cuts if cut > first_completed), len(events)]
    low, high = 0, len(cuts) - 1  # cuts[high] (the whole history) fails
    while low < high:
        middle = (low + high) // 2
        if await _replay_failure(replayer, workflow_id, events[: cuts[middle]]) is None:
            low = middle + 1
        else:
            high = middle
    start = cuts[high - 1] if high > 0 else 0
    completed = next((index for index in range(start, cuts[high]) if _is(events[index], WORKFLOW_TASK_COMPLETED)), None)
    divergent = completed + 1 if completed is not None and completed + 1 < cuts[high] else start
    return event_id_of(events[divergent], divergent)


def _is(event: dict[str, Any], event_type: str) -> bool:
    return event.get("eventType") == event_type


def _divergence_message(failure: BaseException) -> str:
    """The core's own message when the SDK wraps it (``Failure { failure: Some(Failure { message: "…" …``)."""
    text = str(failure)
    found = _CORE_MESSAGE.search(text)
    message = found.group(1).replace('\\"', '"') if found else text
    return f"{type(failure).__name__}: {message}"


def _divergence_event_id(text: str) -> int | None:
    found = _EVENT_IN_MESSAGE.search(text)
    if found is None:
        return None
    return int(found.group(1) or found.group(2))
