"""EnforcementHandoffWorkflow: a case handed to the 综合行政执法支队 (办法 第七条), living on after the case.

Started by the case's ``start_handoff`` activity as an independent workflow with id ``handoff-{case_id}``
(REJECT_DUPLICATE), so closing the case never cancels it. Minimal brigade side: ``accept`` within 3 working
days (else escalated), then ``record_decision``: 立案 ``case_opened`` → 处罚决定 ``penalty_decision``, or
不予立案 ``not_opened``. Every step is projected into ``enforcement_handoff`` and fed back into the
originating case's timeline, and the street office is told.

Durable names (workflow, updates, query) are contracts: change them only with a patch and replay tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from workflows.alert_case import ACTIVITY_OPTIONS, RULE_VIOLATION, SYSTEM, Actor, DeadlineState, format_due

with workflow.unsafe.imports_passed_through():
    from activities.calendar import CalendarActivities, ComputeDeadlineInput, DeadlineRule
    from activities.cases import (
        AppendCaseEventsInput,
        CaseActivities,
        HandoffSnapshot,
        NotifyInput,
        ProjectHandoffInput,
        TimelineEvent,
    )
    from activities.handoffs import HANDOFF_WORKFLOW_NAME, HandoffInput, handoff_workflow_id

__all__ = [
    "HANDOFF_WORKFLOW_NAME",
    "AcceptInput",
    "DecisionInput",
    "DecisionKind",
    "EnforcementHandoffWorkflow",
    "HandoffDecision",
    "HandoffInput",
    "HandoffState",
    "HandoffStatus",
    "handoff_workflow_id",
]

UPDATE_ACCEPT = "accept"
UPDATE_RECORD_DECISION = "record_decision"
QUERY_GET_STATE = "get_state"

ACCEPTANCE_WORKING_DAYS = 3
BRIGADE = "brigade_officer"
# The hand-off writes into the originating case's timeline from this seq on, clear of the case's own lines.
CASE_EVENT_SEQ_BASE = 1_000_000


class HandoffStatus(StrEnum):
    awaiting_acceptance = "awaiting_acceptance"  # 待受理
    accepted = "accepted"  # 已受理
    case_opened = "case_opened"  # 已立案
    closed = "closed"  # 已办结


HANDOFF_STATUS_LABELS: dict[HandoffStatus, str] = {
    HandoffStatus.awaiting_acceptance: "待受理",
    HandoffStatus.accepted: "已受理",
    HandoffStatus.case_opened: "已立案",
    HandoffStatus.closed: "已办结",
}


class DecisionKind(StrEnum):
    case_opened = "case_opened"  # 立案
    not_opened = "not_opened"  # 不予立案
    penalty_decision = "penalty_decision"  # 处罚决定


DECISION_LABELS: dict[DecisionKind, str] = {
    DecisionKind.case_opened: "立案",
    DecisionKind.not_opened: "不予立案",
    DecisionKind.penalty_decision: "处罚决定",
}


@dataclass
class AcceptInput:
    actor: Actor
    note: str = ""


@dataclass
class DecisionInput:
    actor: Actor
    kind: DecisionKind
    note: str = ""  # required for not_opened (the reason)
    amount_fen: int | None = None  # penalty_decision: the fine in 分 (exact integer; 0 for 警告 only)
    document_no: str | None = None  # penalty_decision: 行政处罚决定书文号


@dataclass
class HandoffDecision:
    kind: DecisionKind
    by: str
    at: datetime
    note: str = ""
    amount_fen: int | None = None
    document_no: str | None = None


@dataclass
class HandoffState:
    handoff_id: str
    case_id: str
    status: HandoffStatus
    merchant_id: int
    street_office_id: int
    alert_type: str
    reason: str
    transferred_by: str
    transferred_at: datetime
    acceptance_deadline: DeadlineState | None = None
    overdue: bool = False
    accepted_by: str | None = None
    accepted_at: datetime | None = None
    decisions: list[HandoffDecision] = field(default_factory=list)
    version: int = 0
    last_seq: int = CASE_EVENT_SEQ_BASE


class HandoffRuleViolation(ValueError):
    pass


def check_accept(state: HandoffState, request: AcceptInput) -> None:
    if request.actor.role != BRIGADE:
        raise HandoffRuleViolation(f"角色 {request.actor.role} 无权受理移交案件")
    if state.status != HandoffStatus.awaiting_acceptance:
        raise HandoffRuleViolation(f"移交案件当前状态为「{HANDOFF_STATUS_LABELS[state.status]}」，不能受理")


def check_decision(state: HandoffState, request: DecisionInput) -> None:
    if request.actor.role != BRIGADE:
        raise HandoffRuleViolation(f"角色 {request.actor.role} 无权记录执法决定")
    required = HandoffStatus.case_opened if request.kind == DecisionKind.penalty_decision else HandoffStatus.accepted
    if state.status != required:
        raise HandoffRuleViolation(
            f"移交案件当前状态为「{HANDOFF_STATUS_LABELS[state.status]}」，不能记录「{DECISION_LABELS[request.kind]}」"
        )
    if request.kind == DecisionKind.not_opened and not request.note.strip():
        raise HandoffRuleViolation("不予立案须说明理由")
    if request.kind == DecisionKind.penalty_decision:
        if request.amount_fen is None or request.amount_fen < 0:
            raise HandoffRuleViolation("处罚决定须填写罚款金额（分，≥ 0）")
        if not (request.document_no or "").strip():
            raise HandoffRuleViolation("处罚决定须填写决定书文号")


def _refuse(check: Callable[[], None]) -> None:
    try:
        check()
    except HandoffRuleViolation as exc:
        raise ApplicationError(str(exc), type=RULE_VIOLATION, non_retryable=True) from None


@workflow.defn(name=HANDOFF_WORKFLOW_NAME)
class EnforcementHandoffWorkflow:
    @workflow.init
    def __init__(self, request: HandoffInput) -> None:
        self._state = HandoffState(
            handoff_id=handoff_workflow_id(request.case_id), case_id=request.case_id,
            status=HandoffStatus.awaiting_acceptance, merchant_id=request.merchant_id,
            street_office_id=request.street_office_id, alert_type=request.alert_type, reason=request.reason,
            transferred_by=request.transferred_by, transferred_at=request.transferred_at,
        )
        self._lock = asyncio.Lock()
        self._ready = False
        self._pending: list[TimelineEvent] = []

    @workflow.run
    async def run(self, request: HandoffInput) -> HandoffState:
        state = self._state
        async with self._lock:
            computed = await workflow.execute_activity_method(
                CalendarActivities.compute_deadline,
                ComputeDeadlineInput(request.transferred_at, DeadlineRule.working_days, ACCEPTANCE_WORKING_DAYS),
                **ACTIVITY_OPTIONS,
            )
            state.acceptance_deadline = DeadlineState(
                due_at=computed.due_at, rule=DeadlineRule.working_days.value, amount=ACCEPTANCE_WORKING_DAYS,
                calendar_versions=list(computed.calendar_versions), provisional=computed.provisional,
                provenance=f"平台规则：移交后3个工作日内受理; {computed.provenance}",
            )
            self._ready = True
            self._record("handoff_received", SYSTEM,
                         f"执法支队收到移交，受理时限 {format_due(computed.due_at)}",
                         {"handoff_id": state.handoff_id, "reason": request.reason})
            await self._publish()
        remaining = state.acceptance_deadline.due_at - workflow.now()
        try:
            if remaining <= timedelta(0):
                raise TimeoutError
            await workflow.wait_condition(lambda: state.status != HandoffStatus.awaiting_acceptance,
                                          timeout=remaining, timeout_summary="3个工作日受理时限")
        except TimeoutError:
            async with self._lock:
                if state.status == HandoffStatus.awaiting_acceptance:
                    await self._escalate()
        await workflow.wait_condition(lambda: state.status == HandoffStatus.closed)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return state

    @workflow.update(name=UPDATE_ACCEPT)
    async def accept(self, request: AcceptInput) -> HandoffState:
        async with self._transition(lambda: check_accept(self._state, request)):
            state = self._state
            now = workflow.now()
            deadline = state.acceptance_deadline
            if deadline is not None and deadline.met is None:
                deadline.met = now <= deadline.due_at
            state.status = HandoffStatus.accepted
            state.accepted_by = request.actor.username
            state.accepted_at = now
            self._record("handoff_accepted", request.actor.username, f"执法支队已受理（{request.actor.username}）",
                         {"role": request.actor.role, "user_id": request.actor.user_id, "note": request.note})
            await self._publish()
            await self._notify("handoff_accepted", "移交案件已受理",
                               f"执法支队 {request.actor.username} 已受理本案。", street_office=True)
        return self._state

    @accept.validator
    def _validate_accept(self, request: AcceptInput) -> None:
        _refuse(lambda: check_accept(self._state, request))

    @workflow.update(name=UPDATE_RECORD_DECISION)
    async def record_decision(self, request: DecisionInput) -> HandoffState:
        async with self._transition(lambda: check_decision(self._state, request)):
            state = self._state
            decision = HandoffDecision(kind=request.kind, by=request.actor.username, at=workflow.now(),
                                       note=request.note, amount_fen=request.amount_fen,
                                       document_no=request.document_no)
            state.decisions.append(decision)
            state.status = (HandoffStatus.case_opened if request.kind == DecisionKind.case_opened
                            else HandoffStatus.closed)
            label = DECISION_LABELS[request.kind]
            summary = f"执法支队：{label}"
            if request.kind == DecisionKind.penalty_decision:
                summary += f"（{request.document_no}，罚款 {_yuan(request.amount_fen)} 元）"
            elif request.note:
                summary += f"（{request.note[:100]}）"
            self._record(f"handoff_{request.kind.value}", request.actor.username, summary,
                         {"role": request.actor.role, "user_id": request.actor.user_id, **_decision_payload(decision)})
            await self._publish()
            await self._notify(f"handoff_{request.kind.value}", f"执法反馈：{label}", summary, street_office=True)
        return self._state

    @record_decision.validator
    def _validate_record_decision(self, request: DecisionInput) -> None:
        _refuse(lambda: check_decision(self._state, request))

    @workflow.query(name=QUERY_GET_STATE)
    def get_state(self) -> HandoffState:
        return self._state

    # ----- helpers --------------------------------------------------------------------------------------

    @asynccontextmanager
    async def _transition(self, check: Callable[[], None]) -> AsyncIterator[None]:
        await workflow.wait_condition(lambda: self._ready)
        async with self._lock:
            _refuse(check)
            yield

    async def _escalate(self) -> None:
        state = self._state
        if state.acceptance_deadline is not None:
            state.acceptance_deadline.met = False
            due = format_due(state.acceptance_deadline.due_at)
        else:
            due = "—"
        state.overdue = True
        self._record("handoff_overdue", SYSTEM, f"移交超期未受理：受理时限 {due} 已过", {"due_at": due})
        await self._publish()
        await self._notify("handoff_overdue", "移交案件超期未受理", f"移交案件未在 {due} 前受理，请督办。",
                           brigade=True, command_center=True)

    def _record(self, kind: str, actor: str, summary: str, payload: dict[str, Any]) -> None:
        self._state.last_seq += 1
        self._pending.append(TimelineEvent(seq=self._state.last_seq, at=workflow.now(), kind=kind, actor=actor,
                                           summary=summary, payload=payload))

    async def _publish(self) -> None:
        state = self._state
        state.version += 1
        events, self._pending = self._pending, []
        if events:
            await workflow.execute_activity_method(CaseActivities.append_case_events,
                                                   AppendCaseEventsInput(state.case_id, events), **ACTIVITY_OPTIONS)
        latest = state.decisions[-1] if state.decisions else None
        decision = None
        if latest is not None:
            decision = {**_decision_payload(latest), "history": [_decision_payload(d) for d in state.decisions]}
        await workflow.execute_activity_method(
            CaseActivities.project_handoff,
            ProjectHandoffInput(HandoffSnapshot(
                handoff_id=state.handoff_id, version=state.version, case_id=state.case_id,
                merchant_id=state.merchant_id, street_office_id=state.street_office_id, status=state.status.value,
                reason=state.reason, transferred_by=state.transferred_by, transferred_at=state.transferred_at,
                accepted_by=state.accepted_by, accepted_at=state.accepted_at, decision=decision,
                acceptance_due_at=state.acceptance_deadline.due_at if state.acceptance_deadline else None,
                overdue=state.overdue,
            )),
            **ACTIVITY_OPTIONS,
        )

    async def _notify(self, kind: str, title: str, body: str, *, street_office: bool = False,
                      brigade: bool = False, command_center: bool = False) -> None:
        state = self._state
        await workflow.execute_activity_method(
            CaseActivities.notify,
            NotifyInput(dedupe_key=f"{state.handoff_id}:v{state.version}:{kind}", kind=kind, title=title,
                        body=body, case_id=state.case_id,
                        street_office_id=state.street_office_id if street_office else None,
                        brigade=brigade, command_center=command_center),
            **ACTIVITY_OPTIONS,
        )


def _yuan(amount_fen: int | None) -> str:
    if amount_fen is None:
        return "—"
    return f"{amount_fen // 100:,}.{amount_fen % 100:02d}"


def _decision_payload(decision: HandoffDecision) -> dict[str, Any]:
    return {
        "kind": decision.kind.value,
        "by": decision.by,
        "at": decision.at.isoformat(),
        "note": decision.note,
        "amount_fen": decision.amount_fen,
        "document_no": decision.document_no,
    }
