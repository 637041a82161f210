"""The contract of AlertCaseWorkflow: durable names, states, and the payload dataclasses of its messages.

Kept apart from the workflow module on purpose: the workflow module is re-imported inside Temporal's sandbox,
where ``datetime.datetime`` is a restricted proxy and the default converter cannot decode a dataclass field
typed with it ("Unserializable type during conversion: <class 'datetime.datetime'>"). The workflow imports
this module through ``imports_passed_through`` so these classes are the real ones everywhere.
``workflows.alert_case`` re-exports every name here: import them from there.

Durable names (workflow, updates, signal, query) are contracts: change them only with a patch and replay tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

WORKFLOW_NAME = "AlertCaseWorkflow"
TASK_QUEUE = "casework"

# Update, signal and query names (the API calls them by these names).
UPDATE_ADD_ALERT = "add_alert"
UPDATE_VERIFY = "verify"
UPDATE_SUBMIT_RECTIFICATION = "submit_rectification"
UPDATE_SET_DEADLINE = "set_deadline"
UPDATE_REVIEW = "review"
UPDATE_TRANSFER = "transfer"
UPDATE_ADD_COMMENT = "add_comment"
UPDATE_REMIND = "remind"
SIGNAL_ADD_ALERT = "add_alert_signal"
QUERY_GET_STATE = "get_state"


class CaseStatus(StrEnum):
    awaiting_verification = "awaiting_verification"  # 待核实
    awaiting_dispute_review = "awaiting_dispute_review"  # 待复核
    rectifying = "rectifying"  # 整改中
    awaiting_review = "awaiting_review"  # 待审核
    closed = "closed"  # 已办结


CASE_STATUS_LABELS: dict[CaseStatus, str] = {
    CaseStatus.awaiting_verification: "待核实",
    CaseStatus.awaiting_dispute_review: "待复核",
    CaseStatus.rectifying: "整改中",
    CaseStatus.awaiting_review: "待审核",
    CaseStatus.closed: "已办结",
}


class CaseOutcome(StrEnum):
    rectified = "rectified"
    false_alarm = "false_alarm"
    transferred = "transferred"
    no_penalty = "no_penalty"
    penalised = "penalised"


class VerifyChoice(StrEnum):
    rectified_now = "rectified_now"  # 属实，已立即整改 (photo)
    needs_time = "needs_time"  # 属实，需限期整改 (proposed deadline)
    unsubstantiated = "unsubstantiated"  # 不属实 (reason code + text)


class ReviewDecision(StrEnum):
    approve_rectification = "approve_rectification"
    reject_rectification = "reject_rectification"
    accept_dispute = "accept_dispute"
    reject_dispute = "reject_dispute"


@dataclass
class Actor:
    """Who acts, set by the API from the authenticated session, never from the request body."""

    username: str
    role: str
    user_id: int | None = None
    unit: str | None = None  # street office code, merchant credit code, "brigade", "system"


@dataclass
class AlertRef:
    alert_id: str
    event_id: str
    alert_type: str
    captured_at: datetime
    score: float
    snapshot: dict[str, Any]  # EvidenceRef.to_payload()
    clip: dict[str, Any] | None = None


@dataclass
class OpenCaseInput:
    case_id: str
    merchant_id: int
    street_office_id: int
    camera_id: int
    alert_type: str


@dataclass
class AddAlertInput:
    alert: AlertRef


@dataclass
class AddAlertResult:
    case_id: str
    merged: bool  # False for the alert that opened the case
    alert_count: int


@dataclass
class VerifyInput:
    actor: Actor
    choice: VerifyChoice
    note: str = ""
    rectification_photo: dict[str, Any] | None = None  # EvidenceRef payload; required for rectified_now
    proposed_deadline: datetime | None = None  # for needs_time
    reason_code: str | None = None  # for unsubstantiated


@dataclass
class SubmitRectificationInput:
    actor: Actor
    photo: dict[str, Any]  # EvidenceRef payload
    note: str = ""


@dataclass
class SetDeadlineInput:
    actor: Actor
    working_days: int  # 1–3 (办法 第十八条)
    note: str = ""


@dataclass
class ReviewInput:
    actor: Actor
    decision: ReviewDecision
    note: str = ""  # required when rejecting
    # approve_rectification: what the officer records at closure (default rectified).
    outcome: CaseOutcome | None = None
    # reject_rectification / reject_dispute: the new deadline, 1–3 working days (default: 24 clock hours for an
    # immediately rectifiable problem, else 3 working days).
    working_days: int | None = None
    # 危害后果 as the officer found it: "none" | "minor" | "actual" (unknown otherwise; the advice lists it as
    # missing and cannot recommend leniency without it).
    harm: str | None = None


@dataclass
class TransferInput:
    actor: Actor
    reason: str


@dataclass
class CommentInput:
    actor: Actor
    text: str


@dataclass
class RemindInput:
    """催办: the street office reminds the merchant of what is due."""

    actor: Actor
    note: str = ""


@dataclass
class DeadlineState:
    due_at: datetime
    rule: str  # "clock_hours" | "working_days"
    amount: int
    calendar_versions: list[str]
    provisional: bool
    provenance: str
    met: bool | None = None  # None while running


@dataclass
class CaseState:
    """What get_state answers and every update returns."""

    case_id: str
    status: CaseStatus
    merchant_id: int
    street_office_id: int
    camera_id: int
    alert_type: str
    opened_at: datetime
    alerts: list[AlertRef] = field(default_factory=list)
    outcome: CaseOutcome | None = None
    deadlines: dict[str, DeadlineState] = field(default_factory=dict)  # "verification", "rectification", "review"
    overdue: list[str] = field(default_factory=list)  # names of missed deadlines
    verification: VerifyInput | None = None
    rectification_photos: list[dict[str, Any]] = field(default_factory=list)
    disposition: dict[str, Any] | None = None
    handoff_id: str | None = None
    version: int = 0
    # KPI flags (办法 第二十一条): verified_in_time, rectified_in_time, reviewed_in_time (None: not yet known),
    # escalated (some deadline was missed).
    flags: dict[str, Any] = field(default_factory=dict)
    closed_at: datetime | None = None
    harm: str | None = None  # 危害后果 recorded by the officer at review
    last_seq: int = 0  # seq of the last timeline event written to case_event
