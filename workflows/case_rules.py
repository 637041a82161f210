"""Which action on an alert case is legal, when, and by whom: pure checks behind the update validators.

Each ``check_*`` raises :class:`CaseRuleViolation` with a zh-CN reason (the API answers 409 with it) and
returns nothing. The workflow runs the same check in the validator (a rejection leaves no trace in
history) and again inside the handler under its lock (the state may have moved in between).

Authorisation of *which* merchant or street office may act is the API's job (it needs the database);
the role checks here are a second line that needs no I/O. Compared by value so this module does not
import the workflow module (which imports it).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workflows.alert_case_types import (
        Actor,
        AlertRef,
        CaseState,
        CommentInput,
        RemindInput,
        ReviewInput,
        SetDeadlineInput,
        SubmitRectificationInput,
        TransferInput,
        VerifyInput,
    )

MERCHANT = "merchant"
OFFICERS = frozenset({"street_officer", "command_center"})  # the command center may act for a street office
NO_COMMENT = frozenset({"auditor", "admin"})  # read-only roles; the admin reads no case content

MIN_WORKING_DAYS = 1
MAX_WORKING_DAYS = 3  # 办法 第十八条
MAX_TEXT = 1000
EVIDENCE_KEYS = ("key", "sha256", "sm3")

OPEN = ("awaiting_verification", "awaiting_dispute_review", "rectifying", "awaiting_review")
STATUS_LABELS = {
    "awaiting_verification": "待核实",
    "awaiting_dispute_review": "待复核",
    "rectifying": "整改中",
    "awaiting_review": "待审核",
    "closed": "已办结",
}
CLOSING_OUTCOMES = ("rectified", "no_penalty", "penalised")
HARM_LEVELS = ("none", "minor", "actual")  # domain.disposition.Harm


class CaseRuleViolation(ValueError):
    """An illegal action on a case; the message is shown to the user."""


def _fail(reason: str) -> None:
    raise CaseRuleViolation(reason)


def _require_role(actor: Actor, allowed: frozenset[str], action: str) -> None:
    if actor.role not in allowed:
        _fail(f"角色 {actor.role} 无权执行「{action}」")


def _require_status(state: CaseState, allowed: tuple[str, ...], action: str) -> None:
    if state.status not in allowed:
        label = STATUS_LABELS.get(state.status, state.status)
        _fail(f"案件当前状态为「{label}」，不能执行「{action}」")


def _require_text(value: str | None, what: str) -> None:
    if value is None or not value.strip():
        _fail(f"请填写{what}")
    elif len(value) > MAX_TEXT:
        _fail(f"{what}不能超过 {MAX_TEXT} 字")


def _require_evidence(payload: dict[str, Any] | None, what: str) -> None:
    if not payload or any(not payload.get(key) for key in EVIDENCE_KEYS):
        _fail(f"请上传{what}（须含存储位置与 SHA-256、SM3 摘要）")


def _require_working_days(days: int) -> None:
    if not MIN_WORKING_DAYS <= days <= MAX_WORKING_DAYS:
        _fail(f"整改期限须为 {MIN_WORKING_DAYS}–{MAX_WORKING_DAYS} 个工作日（办法第十八条），收到 {days}")


def find_alert(state: CaseState, alert_id: str) -> int | None:
    """Position of an alert already in the case (1-based), for idempotent add_alert."""
    for position, known in enumerate(state.alerts, start=1):
        if known.alert_id == alert_id:
            return position
    return None


def check_add_alert(state: CaseState, alert: AlertRef, merge_window: timedelta) -> None:
    if find_alert(state, alert.alert_id) is not None:
        return  # a retry: answered with the first result
    if state.status == "closed":
        _fail("案件已办结，新预警须另立新案")
    if alert.alert_type != state.alert_type:
        _fail(f"预警类型 {alert.alert_type} 与本案类型 {state.alert_type} 不同")
    if alert.captured_at.tzinfo is None:
        _fail("预警时间须带时区")
    if state.alerts:
        last = max(known.captured_at for known in state.alerts)
        if alert.captured_at > last + merge_window:
            _fail(f"预警时间超出合并时限（{merge_window} 内），须另立新案")


def check_verify(state: CaseState, request: VerifyInput, now: datetime) -> None:
    _require_role(request.actor, frozenset({MERCHANT}), "核实")
    _require_status(state, ("awaiting_verification",), "核实")
    if request.choice == "rectified_now":
        _require_evidence(request.rectification_photo, "整改照片")
    elif request.choice == "needs_time":
        if request.proposed_deadline is None:
            _fail("请填写拟完成整改的时间")
        elif request.proposed_deadline.tzinfo is None:
            _fail("拟完成整改的时间须带时区")
        elif request.proposed_deadline <= now:
            _fail("拟完成整改的时间须晚于当前时间")
    elif request.choice == "unsubstantiated":
        _require_text(request.reason_code, "不属实的原因类别")
        _require_text(request.note, "不属实的情况说明")
    else:
        _fail(f"未知的核实结论 {request.choice}")


def check_submit_rectification(state: CaseState, request: SubmitRectificationInput) -> None:
    _require_role(request.actor, frozenset({MERCHANT}), "提交整改")
    _require_status(state, ("rectifying",), "提交整改")
    _require_evidence(request.photo, "整改照片")


def check_set_deadline(state: CaseState, request: SetDeadlineInput) -> None:
    _require_role(request.actor, OFFICERS, "设定整改期限")
    # After 核实超期 the office may order rectification without the merchant's answer.
    silent = state.status == "awaiting_verification" and "verification" in state.overdue
    if not silent:
        _require_status(state, ("rectifying",), "设定整改期限")
    _require_working_days(request.working_days)


def check_review(state: CaseState, request: ReviewInput) -> None:
    _require_role(request.actor, OFFICERS, "审核")
    decision = request.decision
    if decision in ("approve_rectification", "reject_rectification"):
        _require_status(state, ("awaiting_review",), "审核整改")
    elif decision in ("accept_dispute", "reject_dispute"):
        _require_status(state, ("awaiting_dispute_review",), "复核申诉")
    else:
        _fail(f"未知的审核结论 {decision}")
    if decision in ("reject_rectification", "reject_dispute"):
        _require_text(request.note, "不通过的理由")
        if request.working_days is not None:
            _require_working_days(request.working_days)
    if request.harm is not None and request.harm not in HARM_LEVELS:
        _fail(f"危害后果须为 {', '.join(HARM_LEVELS)} 之一")
    if request.outcome is not None:
        if decision != "approve_rectification":
            _fail("只有通过整改时可以记录办结结果")
        elif request.outcome not in CLOSING_OUTCOMES:
            _fail(f"通过整改的办结结果须为 {', '.join(CLOSING_OUTCOMES)} 之一")


def check_transfer(state: CaseState, request: TransferInput) -> None:
    _require_role(request.actor, OFFICERS, "移交执法")
    _require_status(state, OPEN, "移交执法")
    _require_text(request.reason, "移交理由")


# Only what waits on the merchant can be chased; the rest waits on the office itself.
MERCHANT_TURN = ("awaiting_verification", "rectifying")


def check_remind(state: CaseState, request: RemindInput) -> None:
    _require_role(request.actor, OFFICERS, "催办")
    _require_status(state, MERCHANT_TURN, "催办")


def check_comment(state: CaseState, request: CommentInput) -> None:
    if request.actor.role in NO_COMMENT:
        _fail(f"角色 {request.actor.role} 只读，不能留言")
    _require_status(state, OPEN, "留言")
    _require_text(request.text, "留言内容")
