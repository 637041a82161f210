"""AlertCaseWorkflow: the closed loop of one problem (办法 第十六—十九条), one workflow per case.

The contract (durable names, states, payload dataclasses) is defined in ``workflows.alert_case_types`` — see its
docstring for why — and re-exported here: import every name from this module.

Durable names (workflow, updates, signal, query) are contracts: change them only with a patch and replay tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.calendar import CalendarActivities, ComputeDeadlineInput, DeadlineRule
    from activities.cases import (
        AdviseDispositionInput,
        CaseActivities,
        CaseSnapshot,
        NotifyInput,
        RecordTransitionInput,
        TimelineEvent,
    )
    from activities.handoffs import HandoffActivities, HandoffInput, StartHandoffInput
    from domain.alerts.taxonomy import AlertCategory, AlertTypeInfo, alert_type_info
    from workflows import case_rules as rules
    from workflows.alert_case_types import (
        CASE_STATUS_LABELS,
        QUERY_GET_STATE,
        SIGNAL_ADD_ALERT,
        TASK_QUEUE,
        UPDATE_ADD_ALERT,
        UPDATE_ADD_COMMENT,
        UPDATE_REMIND,
        UPDATE_REVIEW,
        UPDATE_SET_DEADLINE,
        UPDATE_SUBMIT_RECTIFICATION,
        UPDATE_TRANSFER,
        UPDATE_VERIFY,
        WORKFLOW_NAME,
        Actor,
        AddAlertInput,
        AddAlertResult,
        AlertRef,
        CaseOutcome,
        CaseState,
        CaseStatus,
        CommentInput,
        DeadlineState,
        OpenCaseInput,
        RemindInput,
        ReviewDecision,
        ReviewInput,
        SetDeadlineInput,
        SubmitRectificationInput,
        TransferInput,
        VerifyChoice,
        VerifyInput,
    )

__all__ = [
    "CASE_STATUS_LABELS",
    "QUERY_GET_STATE",
    "RULE_VIOLATION",
    "SIGNAL_ADD_ALERT",
    "TASK_QUEUE",
    "UPDATE_ADD_ALERT",
    "UPDATE_ADD_COMMENT",
    "UPDATE_REMIND",
    "UPDATE_REVIEW",
    "UPDATE_SET_DEADLINE",
    "UPDATE_SUBMIT_RECTIFICATION",
    "UPDATE_TRANSFER",
    "UPDATE_VERIFY",
    "WORKFLOW_NAME",
    "Actor",
    "AddAlertInput",
    "AddAlertResult",
    "AlertCaseWorkflow",
    "AlertRef",
    "CaseOutcome",
    "CaseState",
    "CaseStatus",
    "CommentInput",
    "DeadlineState",
    "OpenCaseInput",
    "RemindInput",
    "ReviewDecision",
    "ReviewInput",
    "SetDeadlineInput",
    "SubmitRectificationInput",
    "TransferInput",
    "VerifyChoice",
    "VerifyInput",
    "format_due",
]


# ---------------------------------------------------------------------------------------------------------
# The workflow

_T = TypeVar("_T")
CST = timezone(timedelta(hours=8))  # never ZoneInfo inside a workflow (sandbox); China has no DST
SYSTEM = "system"
RULE_VIOLATION = "CaseRuleViolation"  # ApplicationError.type of every refused action; the API answers 409

FIRST_ALERT_TIMEOUT = timedelta(hours=1)
VERIFICATION_HOURS = 24  # 办法 第十六条
IMMEDIATE_RECTIFICATION_HOURS = 24  # 办法 第十八条
REVIEW_WORKING_DAYS = 3  # 办法 第十八条 (录入、审核); the platform applies it to every review
MAX_RECTIFICATION_WORKING_DAYS = 3  # 办法 第十八条

ACTIVITY_OPTIONS: dict[str, Any] = {
    "start_to_close_timeout": timedelta(seconds=30),
    "retry_policy": RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1)),
}
# Short, idempotent database work (the transition record, the working-day calendar, the advice) runs as LOCAL
# activities: in the worker that runs the workflow task, with no task-queue round trip and one marker event (the
# result, replayed from history) instead of three events and a workflow task each. As before, they retry until
# they succeed (no schedule-to-close limit: a failed projection must never fail the case); past the local retry
# threshold the SDK backs off with a durable timer.
LOCAL_ACTIVITY_OPTIONS: dict[str, Any] = {
    "start_to_close_timeout": timedelta(seconds=10),
    "retry_policy": RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(minutes=1)),
    "local_retry_threshold": timedelta(seconds=30),
}
CLOCK_HOURS_PROVENANCE = "calendar not consulted (clock hours)"  # as domain.calendar's Deadline.provenance() says

# The deadline the case waits on in each open status.
WATCHED_DEADLINE = {
    CaseStatus.awaiting_verification: "verification",
    CaseStatus.rectifying: "rectification",
    CaseStatus.awaiting_review: "review",
    CaseStatus.awaiting_dispute_review: "review",
}
KPI_FLAGS = {"verification": "verified_in_time", "rectification": "rectified_in_time", "review": "reviewed_in_time"}
OVERDUE_LABELS = {"verification": "核实超期", "rectification": "整改超期", "review": "审核超期"}
OUTCOME_LABELS = {
    CaseOutcome.rectified: "已整改",
    CaseOutcome.false_alarm: "误报",
    CaseOutcome.transferred: "已移交执法",
    CaseOutcome.no_penalty: "不予处罚",
    CaseOutcome.penalised: "已处罚",
}
CLOSED_SUBSTANTIATED = (CaseOutcome.rectified, CaseOutcome.no_penalty, CaseOutcome.penalised)


def format_due(instant: datetime) -> str:
    """Beijing wall time for notices; midnight is written as 24:00 of the day before (民法典 第二百零三条)."""
    local = instant.astimezone(CST)
    if (local.hour, local.minute, local.second) == (0, 0, 0):
        return f"{(local - timedelta(days=1)).date().isoformat()} 24:00"
    return local.strftime("%Y-%m-%d %H:%M")


def _deadline_payload(deadline: DeadlineState) -> dict[str, Any]:
    return {
        "due_at": deadline.due_at.isoformat(),
        "rule": deadline.rule,
        "amount": deadline.amount,
        "calendar_versions": list(deadline.calendar_versions),
        "provisional": deadline.provisional,
        "provenance": deadline.provenance,
        "met": deadline.met,
    }


def _timer_summary(name: str, deadline: DeadlineState) -> str:
    if deadline.rule == DeadlineRule.clock_hours:
        return f"{deadline.amount}h{'核查' if name == 'verification' else '整改'}时限"
    return f"{deadline.amount}个工作日{'整改期限' if name == 'rectification' else '审核时限'}"


def _checked(value: _T | None) -> _T:
    """A field the rule already required (narrows the type without an assert, which would fail the task)."""
    if value is None:
        raise ApplicationError("missing field the rule requires", type=RULE_VIOLATION, non_retryable=True)
    return value


def _refuse(check: Callable[[], None]) -> None:
    """Run a rule check; a violation becomes an ApplicationError (rejects the update, fails the handler)."""
    try:
        check()
    except rules.CaseRuleViolation as exc:
        raise ApplicationError(str(exc), type=RULE_VIOLATION, non_retryable=True) from None


@workflow.defn(name=WORKFLOW_NAME)
class AlertCaseWorkflow:
    """One case: waits for its first alert, then runs the 24 h / working-day clocks until it is closed.

    Handlers change state only while holding ``_lock`` and after re-checking the rule that their validator
    checked; every change bumps ``_phase`` so that the main loop re-arms the timer of the current deadline.
    """

    @workflow.init
    def __init__(self, request: OpenCaseInput) -> None:
        self._state = CaseState(
            case_id=request.case_id,
            status=CaseStatus.awaiting_verification,
            merchant_id=request.merchant_id,
            street_office_id=request.street_office_id,
            camera_id=request.camera_id,
            alert_type=request.alert_type,
            opened_at=workflow.now(),
        )
        self._lock = asyncio.Lock()
        self._phase = 0
        self._opened = False
        self._pending: list[TimelineEvent] = []
        self._type: AlertTypeInfo | None
        try:
            self._type = alert_type_info(request.alert_type)
        except ValueError:
            self._type = None

    # ----- main loop ------------------------------------------------------------------------------------

    @workflow.run
    async def run(self, request: OpenCaseInput) -> CaseState:
        if self._type is None:
            raise ApplicationError(f"unknown alert type {request.alert_type!r}", type=RULE_VIOLATION,
                                   non_retryable=True)
        # Lazy initialisation: the case exists for its first alert (update-with-start or signal-with-start). A start
        # whose first alert was refused leaves nothing to do: end rather than wait forever.
        try:
            await workflow.wait_condition(lambda: bool(self._state.alerts), timeout=FIRST_ALERT_TIMEOUT,
                                          timeout_summary="等待首条预警")
        except TimeoutError:
            workflow.logger.warning("case %s started without an alert; ending", request.case_id)
            return self._state
        async with self._lock:
            await self._open()
        while self._state.status != CaseStatus.closed:
            await self._wait_for_change_or_deadline()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._state

    async def _wait_for_change_or_deadline(self) -> None:
        phase = self._phase
        name = WATCHED_DEADLINE.get(self._state.status)
        deadline = self._state.deadlines.get(name) if name else None
        if name is None or deadline is None or deadline.met is not None:
            await workflow.wait_condition(lambda: self._phase != phase)
            return
        remaining = deadline.due_at - workflow.now()
        if remaining > timedelta(0):
            try:
                await workflow.wait_condition(lambda: self._phase != phase, timeout=remaining,
                                              timeout_summary=_timer_summary(name, deadline))
                return
            except TimeoutError:
                pass
        async with self._lock:
            if self._phase == phase:  # nothing happened while we waited for the lock
                await self._escalate(name)

    async def _open(self) -> None:
        state = self._state
        state.opened_at = workflow.now()
        verification = await self._deadline(state.opened_at, DeadlineRule.clock_hours, VERIFICATION_HOURS,
                                            "办法第十六条：推送后24小时内核实")
        state.deadlines["verification"] = verification
        self._opened = True
        self._changed()
        due = format_due(verification.due_at)
        first = state.alerts[0]
        self._record("case_opened", SYSTEM, f"{self._label}预警立案，待商户于 {due} 前核实",
                     {"alert_id": first.alert_id, "captured_at": first.captured_at.isoformat(), "due_at": due})
        await self._publish(self._notice("case_opened", f"新预警待核实：{self._label}",
                                         f"请于 {due} 前核实并反馈（属实请立即整改或申请限期整改，不属实请说明理由）。",
                                         merchant=True, street_office=True))

    # ----- alerts ---------------------------------------------------------------------------------------

    @workflow.update(name=UPDATE_ADD_ALERT)
    async def add_alert(self, request: AddAlertInput) -> AddAlertResult:
        position = self._add(request.alert)
        if position is not None and position > 1:
            await self._publish_merged(request.alert, position)
        return self._alert_result(request.alert.alert_id)

    @add_alert.validator
    def _validate_add_alert(self, request: AddAlertInput) -> None:
        _refuse(lambda: rules.check_add_alert(self._state, request.alert, self._merge_window))

    @workflow.signal(name=SIGNAL_ADD_ALERT)
    async def add_alert_signal(self, request: AddAlertInput) -> None:
        try:
            rules.check_add_alert(self._state, request.alert, self._merge_window)
        except rules.CaseRuleViolation as exc:
            workflow.logger.warning("alert %s not added to case %s: %s", request.alert.alert_id,
                                    self._state.case_id, exc)
            return
        position = self._add(request.alert)
        if position is not None and position > 1:
            await self._publish_merged(request.alert, position)

    def _add(self, alert: AlertRef) -> int | None:
        """Appends a new alert at once (so the next validator sees it); None for a repeat."""
        if rules.find_alert(self._state, alert.alert_id) is not None:
            return None
        self._state.alerts.append(alert)
        return len(self._state.alerts)

    def _alert_result(self, alert_id: str) -> AddAlertResult:
        position = rules.find_alert(self._state, alert_id) or 1
        return AddAlertResult(case_id=self._state.case_id, merged=position > 1,
                              alert_count=len(self._state.alerts))

    async def _publish_merged(self, alert: AlertRef, position: int) -> None:
        await workflow.wait_condition(lambda: self._opened)
        async with self._lock:
            self._record("alert_merged", SYSTEM, f"同类预警并入本案（第 {position} 条）",
                         {"alert_id": alert.alert_id, "event_id": alert.event_id,
                          "captured_at": alert.captured_at.isoformat(), "score": alert.score})
            await self._publish()

    # ----- merchant -------------------------------------------------------------------------------------

    @workflow.update(name=UPDATE_VERIFY)
    async def verify(self, request: VerifyInput) -> CaseState:
        async with self._transition(lambda: rules.check_verify(self._state, request, workflow.now())):
            state = self._state
            await self._settle("verification")
            state.verification = request
            if request.choice == VerifyChoice.rectified_now:
                state.rectification_photos.append(_checked(request.rectification_photo))
                # Put right at once: in time exactly when the answer itself was in time.
                state.flags["rectified_in_time"] = state.deadlines["verification"].met is True
                state.status = CaseStatus.awaiting_review
                review = await self._deadline(state.opened_at, DeadlineRule.working_days, REVIEW_WORKING_DAYS,
                                              "办法第十八条：立即整改的，3个工作日内完成录入、审核")
                state.deadlines["review"] = review
                self._record("verified_rectified_now", self._who(request.actor), "商户核实属实，已立即整改",
                             {**self._actor(request.actor), "photo": request.rectification_photo,
                              "note": request.note})
                next_step = ("street_office", "商户已立即整改，待审核",
                             f"请于 {format_due(review.due_at)} 前完成录入、审核。")
            elif request.choice == VerifyChoice.needs_time:
                proposed = _checked(request.proposed_deadline)
                state.status = CaseStatus.rectifying
                rectification = await self._merchant_rectification_deadline(proposed)
                state.deadlines["rectification"] = rectification
                due = format_due(rectification.due_at)
                self._record("verified_needs_time", self._who(request.actor), f"商户核实属实，申请限期整改至 {due}",
                             {**self._actor(request.actor), "proposed_deadline": proposed.isoformat(),
                              "due_at": due, "note": request.note})
                next_step = ("both", "商户申请限期整改", f"整改期限：{due} 前。街所可调整期限（不超过3个工作日）。")
            else:
                state.status = CaseStatus.awaiting_dispute_review
                review = await self._deadline(workflow.now(), DeadlineRule.working_days, REVIEW_WORKING_DAYS,
                                              "平台规则：申诉后3个工作日内复核")
                state.deadlines["review"] = review
                self._record("disputed", self._who(request.actor), f"商户申诉预警不属实（{request.reason_code}）",
                             {**self._actor(request.actor), "reason_code": request.reason_code,
                              "note": request.note})
                next_step = ("street_office", "商户申诉预警不属实，待复核",
                             f"原因：{request.reason_code}。请于 {format_due(review.due_at)} 前复核。")
            self._changed()
            who, title, body = next_step
            await self._publish(self._notice(f"verified_{request.choice}", title, body,
                                             merchant=who == "both", street_office=True))
        return self._state

    @verify.validator
    def _validate_verify(self, request: VerifyInput) -> None:
        _refuse(lambda: rules.check_verify(self._state, request, workflow.now()))

    @workflow.update(name=UPDATE_SUBMIT_RECTIFICATION)
    async def submit_rectification(self, request: SubmitRectificationInput) -> CaseState:
        async with self._transition(lambda: rules.check_submit_rectification(self._state, request)):
            state = self._state
            await self._settle("rectification")
            state.rectification_photos.append(request.photo)
            state.status = CaseStatus.awaiting_review
            review = await self._deadline(workflow.now(), DeadlineRule.working_days, REVIEW_WORKING_DAYS,
                                          "平台规则：提交整改后3个工作日内审核")
            state.deadlines["review"] = review
            self._record("rectification_submitted", self._who(request.actor), "商户提交整改材料",
                         {**self._actor(request.actor), "photo": request.photo, "note": request.note})
            self._changed()
            await self._publish(self._notice("rectification_submitted", "商户已提交整改，待审核",
                                             f"请于 {format_due(review.due_at)} 前完成审核。", street_office=True))
        return self._state

    @submit_rectification.validator
    def _validate_submit_rectification(self, request: SubmitRectificationInput) -> None:
        _refuse(lambda: rules.check_submit_rectification(self._state, request))

    # ----- street office --------------------------------------------------------------------------------

    @workflow.update(name=UPDATE_SET_DEADLINE)
    async def set_deadline(self, request: SetDeadlineInput) -> CaseState:
        async with self._transition(lambda: rules.check_set_deadline(self._state, request)):
            state = self._state
            previous = state.deadlines.get("rectification")
            rectification = await self._deadline(workflow.now(), DeadlineRule.working_days, request.working_days,
                                                 f"街所设定：{request.working_days}个工作日（办法第十八条）")
            state.deadlines["rectification"] = rectification
            state.status = CaseStatus.rectifying
            due = format_due(rectification.due_at)
            self._record("deadline_set", self._who(request.actor), f"街所设定整改期限：{due} 前",
                         {**self._actor(request.actor), "working_days": request.working_days, "due_at": due,
                          "replaces": _deadline_payload(previous) if previous else None, "note": request.note})
            self._changed()
            await self._publish(self._notice("deadline_set", "整改期限已设定",
                                             f"请于 {due} 前完成整改并上传整改照片。", merchant=True))
        return self._state

    @set_deadline.validator
    def _validate_set_deadline(self, request: SetDeadlineInput) -> None:
        _refuse(lambda: rules.check_set_deadline(self._state, request))

    @workflow.update(name=UPDATE_REVIEW)
    async def review(self, request: ReviewInput) -> CaseState:
        async with self._transition(lambda: rules.check_review(self._state, request)):
            state = self._state
            await self._settle("review")
            if request.harm is not None:
                state.harm = request.harm
            who = self._who(request.actor)
            payload = {**self._actor(request.actor), "decision": request.decision.value, "note": request.note,
                       "harm": request.harm}
            decision = request.decision
            if decision == ReviewDecision.approve_rectification:
                self._record("review_approved", who, "整改审核通过", payload)
                await self._close(request.outcome or CaseOutcome.rectified)
                title, body = "整改已通过审核", "案件已办结。"
            elif decision == ReviewDecision.accept_dispute:
                self._record("dispute_accepted", who, "申诉成立，预警不属实", payload)
                await self._close(CaseOutcome.false_alarm)
                title, body = "申诉已采纳", "预警经复核不属实，案件已办结。"
            else:
                state.status = CaseStatus.rectifying
                rectification = await self._officer_rectification_deadline(request.working_days)
                state.deadlines["rectification"] = rectification
                due = format_due(rectification.due_at)
                rejected_rectification = decision == ReviewDecision.reject_rectification
                kind, summary = (("review_rejected", "整改审核未通过") if rejected_rectification
                                 else ("dispute_rejected", "申诉不成立"))
                self._record(kind, who, f"{summary}，重新整改至 {due}", {**payload, "due_at": due})
                title, body = summary, f"理由：{request.note}。请于 {due} 前完成整改并上传整改照片。"
            self._changed()
            await self._publish(self._notice(f"review_{decision.value}", title, body, merchant=True))
        return self._state

    @review.validator
    def _validate_review(self, request: ReviewInput) -> None:
        _refuse(lambda: rules.check_review(self._state, request))

    @workflow.update(name=UPDATE_TRANSFER)
    async def transfer(self, request: TransferInput) -> CaseState:
        async with self._transition(lambda: rules.check_transfer(self._state, request)):
            state = self._state
            if state.status in (CaseStatus.awaiting_review, CaseStatus.awaiting_dispute_review):
                await self._settle("review")
            advice = await self._advise()
            started = await workflow.execute_activity_method(
                HandoffActivities.start_handoff,
                StartHandoffInput(HandoffInput(
                    case_id=state.case_id, merchant_id=state.merchant_id, street_office_id=state.street_office_id,
                    camera_id=state.camera_id, alert_type=state.alert_type, reason=request.reason,
                    transferred_by=request.actor.username, transferred_by_role=request.actor.role,
                    transferred_by_user_id=request.actor.user_id, transferred_at=workflow.now(),
                    disposition=advice,
                    evidence=[alert.snapshot for alert in state.alerts] + list(state.rectification_photos),
                )),
                **ACTIVITY_OPTIONS,
            )
            state.handoff_id = started.handoff_id
            self._record("transferred", self._who(request.actor), "移交综合行政执法支队",
                         {**self._actor(request.actor), "reason": request.reason, "handoff_id": started.handoff_id})
            await self._close(CaseOutcome.transferred, advice)
            self._changed()
            await self._publish(
                self._notice("transferred", f"新移交案件：{self._label}",
                             f"移交理由：{request.reason}。请于3个工作日内受理。", brigade=True),
                self._notice("transferred_merchant", "案件已移交执法", "本案已移交综合行政执法支队依法处理。",
                             merchant=True),
            )
        return self._state

    @transfer.validator
    def _validate_transfer(self, request: TransferInput) -> None:
        _refuse(lambda: rules.check_transfer(self._state, request))

    # ----- everyone -------------------------------------------------------------------------------------

    @workflow.update(name=UPDATE_ADD_COMMENT)
    async def add_comment(self, request: CommentInput) -> CaseState:
        async with self._transition(lambda: rules.check_comment(self._state, request)):
            self._record("comment", self._who(request.actor), request.text[:200],
                         {**self._actor(request.actor), "text": request.text})
            await self._publish()
        return self._state

    @add_comment.validator
    def _validate_add_comment(self, request: CommentInput) -> None:
        _refuse(lambda: rules.check_comment(self._state, request))

    # Added after the first histories were recorded: a new handler changes no existing history, so no patch.
    @workflow.update(name=UPDATE_REMIND)
    async def remind(self, request: RemindInput) -> CaseState:
        async with self._transition(lambda: rules.check_remind(self._state, request)):
            note = request.note.strip()
            summary = "街道所催办" + (f"：{note[:100]}" if note else "")
            self._record("reminded", self._who(request.actor), summary, {**self._actor(request.actor), "note": note})
            await self._publish(self._notice("reminded", f"催办：{self._label}",
                                             note or "街道市场监管所提醒您尽快处理本预警。", merchant=True))
        return self._state

    @remind.validator
    def _validate_remind(self, request: RemindInput) -> None:
        _refuse(lambda: rules.check_remind(self._state, request))

    @workflow.query(name=QUERY_GET_STATE)
    def get_state(self) -> CaseState:
        return self._state

    # ----- helpers --------------------------------------------------------------------------------------

    @asynccontextmanager
    async def _transition(self, check: Callable[[], None]) -> AsyncIterator[None]:
        """Hold the lock for a whole transition; re-check its rule, the state may have moved since validation."""
        await workflow.wait_condition(lambda: self._opened)
        async with self._lock:
            _refuse(check)
            yield

    @property
    def _label(self) -> str:
        return self._type.label_zh if self._type else self._state.alert_type

    @property
    def _merge_window(self) -> timedelta:
        return self._type.merge_window if self._type else timedelta(0)

    def _changed(self) -> None:
        self._phase += 1

    @staticmethod
    def _who(actor: Actor) -> str:
        return actor.username

    @staticmethod
    def _actor(actor: Actor) -> dict[str, Any]:
        return {"role": actor.role, "user_id": actor.user_id, "unit": actor.unit}

    def _record(self, kind: str, actor: str, summary: str, payload: dict[str, Any] | None = None) -> None:
        self._state.last_seq += 1
        self._pending.append(TimelineEvent(seq=self._state.last_seq, at=workflow.now(), kind=kind, actor=actor,
                                           summary=summary, payload=payload or {}))

    async def _publish(self, *notices: NotifyInput) -> None:
        """New version: its timeline lines, the case row and its notices, in one transaction (one local activity;
        lines before the row, so the row never refers to missing lines). Each notice's dedupe key names the
        version, so a retry or a replay delivers it once."""
        state = self._state
        state.version += 1
        events, self._pending = self._pending, []
        for notice in notices:
            notice.dedupe_key = f"{state.case_id}:v{state.version}:{notice.kind}"
        await workflow.execute_local_activity_method(
            CaseActivities.record_transition,
            RecordTransitionInput(snapshot=self._snapshot(), events=events, notifications=list(notices)),
            **LOCAL_ACTIVITY_OPTIONS,
        )

    def _notice(self, kind: str, title: str, body: str, *, merchant: bool = False, street_office: bool = False,
                brigade: bool = False, command_center: bool = False) -> NotifyInput:
        """A notice for the next ``_publish`` (which sets its dedupe key)."""
        state = self._state
        return NotifyInput(
            dedupe_key="", kind=kind, title=title, body=body, case_id=state.case_id,
            merchant_id=state.merchant_id if merchant else None,
            street_office_id=state.street_office_id if street_office else None,
            brigade=brigade, command_center=command_center,
        )

    async def _deadline(self, started_at: datetime, rule: DeadlineRule, amount: int, basis: str) -> DeadlineState:
        """Clock hours are plain arithmetic (民法典 第二百零一条 第二款: start + hours, no calendar), computed here;
        working days need the 调休 calendar, read by ``compute_deadline`` (a local activity: its result, with the
        calendar versions it used, lands in history as the marker)."""
        if rule == DeadlineRule.clock_hours:
            return DeadlineState(due_at=started_at.astimezone(CST) + timedelta(hours=amount), rule=rule.value,
                                 amount=amount, calendar_versions=[], provisional=False,
                                 provenance=f"{basis}; {CLOCK_HOURS_PROVENANCE}")
        computed = await workflow.execute_local_activity_method(
            CalendarActivities.compute_deadline, ComputeDeadlineInput(started_at, rule, amount),
            **LOCAL_ACTIVITY_OPTIONS,
        )
        return DeadlineState(due_at=computed.due_at, rule=rule.value, amount=amount,
                             calendar_versions=list(computed.calendar_versions), provisional=computed.provisional,
                             provenance=f"{basis}; {computed.provenance}")

    async def _merchant_rectification_deadline(self, proposed: datetime) -> DeadlineState:
        """The merchant's proposal, capped at 24 h (immediately rectifiable) or 3 working days; the office may
        set another deadline at any time."""
        now = workflow.now()
        if self._type is not None and self._type.immediate_rectification:
            cap = await self._deadline(now, DeadlineRule.clock_hours, IMMEDIATE_RECTIFICATION_HOURS,
                                       "办法第十八条：可立即整改的问题，核实后24小时内整改")
        else:
            cap = await self._deadline(now, DeadlineRule.working_days, MAX_RECTIFICATION_WORKING_DAYS,
                                       "办法第十八条：限期整改不超过3个工作日")
        if proposed < cap.due_at:
            cap.provenance = f"商户提议 {format_due(proposed)}（上限 {format_due(cap.due_at)}）; {cap.provenance}"
            cap.due_at = proposed.astimezone(CST)
        return cap

    async def _officer_rectification_deadline(self, working_days: int | None) -> DeadlineState:
        now = workflow.now()
        if working_days is not None:
            return await self._deadline(now, DeadlineRule.working_days, working_days,
                                        f"街所设定：{working_days}个工作日（办法第十八条）")
        if self._type is not None and self._type.immediate_rectification:
            return await self._deadline(now, DeadlineRule.clock_hours, IMMEDIATE_RECTIFICATION_HOURS,
                                        "办法第十八条：可立即整改的问题，24小时内整改")
        return await self._deadline(now, DeadlineRule.working_days, MAX_RECTIFICATION_WORKING_DAYS,
                                    "办法第十八条：限期整改不超过3个工作日")

    async def _settle(self, name: str) -> None:
        """The action a deadline waits for happened now: met, or missed if its timer has not fired yet."""
        deadline = self._state.deadlines.get(name)
        if deadline is None or deadline.met is not None:
            return
        if workflow.now() <= deadline.due_at:
            deadline.met = True
            if self._state.flags.get(KPI_FLAGS[name]) is not False:
                self._state.flags[KPI_FLAGS[name]] = True
        else:
            await self._escalate(name)

    async def _escalate(self, name: str) -> None:
        """A deadline passed: mark it, flag the KPI, attach advice, write the timeline, tell who must act."""
        state = self._state
        deadline = state.deadlines[name]
        deadline.met = False
        if name not in state.overdue:
            state.overdue.append(name)
        state.flags[KPI_FLAGS[name]] = False
        state.flags["escalated"] = True
        state.disposition = await self._advise()
        label = OVERDUE_LABELS[name]
        due = format_due(deadline.due_at)
        self._record(f"{name}_overdue", SYSTEM, f"{label}：时限 {due} 已过",
                     {"deadline": name, "due_at": due, "disposition": _advice_digest(state.disposition)})
        self._changed()
        body = {
            "verification": f"商户未在 {due} 前核实{self._label}预警，请街所跟进处置。",
            "rectification": f"商户未在 {due} 前完成整改，请街所依法处置。",
            "review": f"街所未在 {due} 前完成录入、审核，请督办。",
        }[name]
        await self._publish(self._notice(f"{name}_overdue", f"{label}：{self._label}", body, street_office=True,
                                         merchant=name != "review", command_center=name == "review"))

    async def _advise(self, closing_as: CaseOutcome | None = None) -> dict[str, Any]:
        state = self._state
        outcome = closing_as or state.outcome
        rectified = outcome in CLOSED_SUBSTANTIATED or (
            outcome is None and state.status == CaseStatus.awaiting_review)
        substantiated: bool | None = True
        if outcome == CaseOutcome.false_alarm:
            substantiated = False
        elif state.status == CaseStatus.awaiting_dispute_review or state.verification is None:
            substantiated = None  # disputed and not yet reviewed, or the merchant never answered
        result = await workflow.execute_local_activity_method(
            CaseActivities.advise_disposition,
            AdviseDispositionInput(
                case_id=state.case_id, merchant_id=state.merchant_id, alert_type=state.alert_type,
                as_of=workflow.now(), rectified=rectified,
                rectified_within_deadline=state.flags.get("rectified_in_time") if rectified else None,
                deadline_missed="rectification" in state.overdue, substantiated=substantiated, harm=state.harm,
                # What the case itself shows: a merchant who answered through the platform did not refuse the
                # inspection; only camera alerts can be a deliberate cut or turn (办法 第十二条).
                refused_inspection=False if state.verification is not None else None,
                deliberate_tampering=None if _is_camera_alert(state.alert_type) else False,
            ),
            **LOCAL_ACTIVITY_OPTIONS,
        )
        return result.advice

    async def _close(self, outcome: CaseOutcome, advice: dict[str, Any] | None = None) -> None:
        state = self._state
        state.disposition = advice if advice is not None else await self._advise(closing_as=outcome)
        state.status = CaseStatus.closed
        state.outcome = outcome
        state.closed_at = workflow.now()
        self._record("closed", SYSTEM, f"已办结：{OUTCOME_LABELS[outcome]}",
                     {"outcome": outcome.value, "disposition": _advice_digest(state.disposition)})

    def _snapshot(self) -> CaseSnapshot:
        state = self._state
        is_open = state.status != CaseStatus.closed
        pending = [deadline.due_at for deadline in state.deadlines.values() if deadline.met is None]
        return CaseSnapshot(
            case_id=state.case_id, version=state.version, merchant_id=state.merchant_id,
            street_office_id=state.street_office_id, camera_id=state.camera_id, alert_type=state.alert_type,
            status=state.status.value, opened_at=state.opened_at,
            last_alert_at=max((alert.captured_at for alert in state.alerts), default=state.opened_at),
            alert_count=len(state.alerts), outcome=state.outcome.value if state.outcome else None,
            closed_at=state.closed_at, next_due_at=min(pending) if pending and is_open else None,
            deadlines={name: _deadline_payload(deadline) for name, deadline in state.deadlines.items()},
            overdue=bool(state.overdue) and is_open, flags=dict(state.flags), disposition=state.disposition,
            handoff_id=state.handoff_id,
        )


def _advice_digest(advice: dict[str, Any] | None) -> dict[str, Any] | None:
    """The headline of a disposition advice for a timeline line (the full advice is on the case)."""
    if not advice:
        return None
    return {key: advice[key] for key in ("recommendation", "recommendation_label", "label") if key in advice} or None


def _is_camera_alert(alert_type: str) -> bool:
    return alert_type_info(alert_type).category is AlertCategory.camera
