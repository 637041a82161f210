"""A human timeline of an exported Temporal history (proto JSON events), for auditors (pure).

Workflow-task bookkeeping is left out; what remains is what happened to the case: its start, each accepted
update with its name and the actor (username and role from the update's own payload: Temporal's ``identity``
is a process, not a person), signals, timers with their summaries, activities (local ones are markers) with
their name and the SHA-256 of their result payload, and the close. Times are Beijing time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from domain.audit.history_chain import event_id_of

BEIJING = timezone(timedelta(hours=8))  # China has no DST; a fixed offset needs no tz database
EVENT_TYPE_PREFIX = "EVENT_TYPE_"
JSON_ENCODING = "json/plain"
LOCAL_ACTIVITY_MARKER = "core_local_activity"
PATCH_MARKER = "core_patch"
SKIPPED = frozenset({
    "WORKFLOW_TASK_SCHEDULED", "WORKFLOW_TASK_STARTED", "WORKFLOW_TASK_COMPLETED", "ACTIVITY_TASK_STARTED",
})


@dataclass(frozen=True)
class TimelineLine:
    event_id: int
    at: datetime | None
    kind: str  # the event type without its EVENT_TYPE_ prefix
    text: str

    def render(self) -> str:
        when = self.at.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S") if self.at else "?"
        return f"{self.event_id:>5}  {when}  {self.kind:<40} {self.text}".rstrip()


def decode_payload(payload: Any) -> Any:
    """The value of a JSON payload; for another encoding, a note saying which (never the raw bytes)."""
    if not isinstance(payload, dict):
        return None
    metadata = payload.get("metadata") or {}
    try:
        encoding = base64.b64decode(metadata.get("encoding", "")).decode("utf-8")
        data = base64.b64decode(payload.get("data", ""))
    except (binascii.Error, ValueError, TypeError):
        return "<undecodable payload>"
    if encoding == "binary/null":
        return None
    if encoding != JSON_ENCODING:
        return f"<{encoding} payload, {len(data)} bytes>"
    try:
        return json.loads(data)
    except ValueError:
        return "<malformed JSON payload>"


def payload_digest(payloads: Any) -> str:
    """SHA-256 of the payload bytes (the result as it was recorded), or "-" when there is none."""
    items = (payloads.get("payloads") or []) if isinstance(payloads, dict) else []
    if not items:
        return "-"
    digest = hashlib.sha256()
    for item in items:
        try:
            digest.update(base64.b64decode(item.get("data", "")))
        except (binascii.Error, ValueError, TypeError, AttributeError):
            return "<undecodable>"
    return digest.hexdigest()


def timeline(events: Sequence[dict[str, Any]]) -> list[TimelineLine]:
    builder = _Builder()
    return [line for index, event in enumerate(events) if (line := builder.line(index, event)) is not None]


class _Builder:
    """Walks the events in order, remembering update names and activity names for the events that close them."""

    def __init__(self) -> None:
        self._update_names: dict[str, str] = {}
        self._activity_names: dict[str, str] = {}
        self._timer_summaries: dict[str, str] = {}

    def line(self, index: int, event: dict[str, Any]) -> TimelineLine | None:
        kind = str(event.get("eventType", "")).removeprefix(EVENT_TYPE_PREFIX)
        if kind in SKIPPED:
            return None
        attributes: Any = next((value for key, value in event.items() if key.endswith("EventAttributes")), {})
        text = self._describe(kind, attributes if isinstance(attributes, dict) else {}, event)
        return TimelineLine(event_id=event_id_of(event, index), at=_time(event.get("eventTime")), kind=kind,
                            text=text)

    def _describe(self, kind: str, attributes: dict[str, Any], event: dict[str, Any]) -> str:
        event_id = str(event.get("eventId", ""))
        summary = _summary(event)
        match kind:
            case "WORKFLOW_EXECUTION_STARTED":
                arguments = _first(attributes.get("input"))
                return f"{_name(attributes.get('workflowType'))} started" + _case_of(arguments)
            case "WORKFLOW_EXECUTION_UPDATE_ACCEPTED":
                request = attributes.get("acceptedRequest") or {}
                update = request.get("input") or {}
                name = str(update.get("name", "?"))
                self._update_names[str((request.get("meta") or {}).get("updateId", ""))] = name
                return f"update {name}{_actor_of(_first(update.get('args')))}"
            case "WORKFLOW_EXECUTION_UPDATE_COMPLETED":
                update_id = str((attributes.get("meta") or {}).get("updateId", ""))
                outcome = attributes.get("outcome") or {}
                result = "refused: " + _failure(outcome["failure"]) if "failure" in outcome else "done"
                return f"update {self._update_names.get(update_id, update_id)} {result}"
            case "WORKFLOW_EXECUTION_SIGNALED":
                return f"signal {attributes.get('signalName', '?')}{_actor_of(_first(attributes.get('input')))}"
            case "TIMER_STARTED":
                self._timer_summaries[str(attributes.get("timerId", ""))] = summary
                return f"timer {attributes.get('startToFireTimeout', '?')}" + (f" «{summary}»" if summary else "")
            case "TIMER_FIRED" | "TIMER_CANCELED":
                label = self._timer_summaries.get(str(attributes.get("timerId", "")), "")
                return ("fired" if kind == "TIMER_FIRED" else "cancelled") + (f" «{label}»" if label else "")
            case "ACTIVITY_TASK_SCHEDULED":
                name = _name(attributes.get("activityType"))
                self._activity_names[event_id] = name
                return f"activity {name}" + (f" «{summary}»" if summary else "")
            case "ACTIVITY_TASK_COMPLETED":
                name = self._activity_names.get(str(attributes.get("scheduledEventId", "")), "?")
                return f"activity {name} completed, result sha256 {payload_digest(attributes.get('result'))}"
            case "ACTIVITY_TASK_FAILED" | "ACTIVITY_TASK_TIMED_OUT":
                name = self._activity_names.get(str(attributes.get("scheduledEventId", "")), "?")
                return f"activity {name} {'failed' if kind.endswith('FAILED') else 'timed out'}"
            case "MARKER_RECORDED":
                return _marker(attributes)
            case "WORKFLOW_EXECUTION_COMPLETED":
                return f"completed, result sha256 {payload_digest(attributes.get('result'))}"
            case "WORKFLOW_EXECUTION_FAILED":
                return "failed: " + _failure(attributes.get("failure"))
            case "WORKFLOW_EXECUTION_TERMINATED":
                return f"terminated: {attributes.get('reason', '')}".rstrip(": ")
            case "WORKFLOW_EXECUTION_CONTINUED_AS_NEW":
                return f"continued as new run {attributes.get('newExecutionRunId', '?')}"
            case "WORKFLOW_TASK_FAILED":
                return f"workflow task failed ({attributes.get('cause', '?')}): " + _failure(attributes.get("failure"))
        return summary


def _marker(attributes: dict[str, Any]) -> str:
    name = attributes.get("markerName", "?")
    details = attributes.get("details") or {}
    if name == LOCAL_ACTIVITY_MARKER:
        data = _first(details.get("data"))
        activity = data.get("activity_type", "?") if isinstance(data, dict) else "?"
        return f"local activity {activity}, result sha256 {payload_digest(details.get('result'))}"
    if name == PATCH_MARKER:
        patch = _first(details.get("patch_data"))
        patch_id = patch.get("id", "?") if isinstance(patch, dict) else "?"
        return f"patch {patch_id}"
    return f"marker {name}"


def _first(payloads: Any) -> Any:
    items = payloads.get("payloads") if isinstance(payloads, dict) else None
    return decode_payload(items[0]) if items else None


def _summary(event: dict[str, Any]) -> str:
    summary = decode_payload((event.get("userMetadata") or {}).get("summary"))
    return summary if isinstance(summary, str) else ""


def _name(value: Any) -> str:
    return str(value.get("name", "?")) if isinstance(value, dict) else "?"


def _actor_of(arguments: Any) -> str:
    actor = arguments.get("actor") if isinstance(arguments, dict) else None
    if isinstance(actor, dict):
        return f" by {actor.get('username', '?')} ({actor.get('role', '?')})"
    alert = arguments.get("alert") if isinstance(arguments, dict) else None
    if isinstance(alert, dict):
        return f": alert {alert.get('alert_type', '?')} {alert.get('alert_id', '?')}"
    return ""


def _case_of(arguments: Any) -> str:
    if isinstance(arguments, dict) and arguments.get("case_id"):
        return f" for case {arguments['case_id']}"
    return ""


def _failure(failure: Any) -> str:
    return str(failure.get("message", "")) if isinstance(failure, dict) else ""


def _time(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
