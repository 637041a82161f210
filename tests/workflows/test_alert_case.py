"""AlertCaseWorkflow on the time-skipping test server, with the real activities against PostgreSQL.

One test per timer path (办法 第十六、十八、十九条), plus merging, the hand-off and refused actions. Expected
deadlines are computed from the times the workflow recorded, with the same calendar service the activity uses:
the server's clock starts at the real time and only moves forward.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlmodel import Session
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError

from domain.calendar import service as calendar_service
from tests.workflows.conftest import Casework, accepted_update_ids, evidence, export_history
from workflows.alert_case import (
    RULE_VIOLATION,
    AddAlertInput,
    AlertCaseWorkflow,
    CaseOutcome,
    CaseState,
    CaseStatus,
    CommentInput,
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
from workflows.enforcement_handoff import (
    AcceptInput,
    DecisionInput,
    DecisionKind,
    EnforcementHandoffWorkflow,
    HandoffState,
    HandoffStatus,
)

pytestmark = pytest.mark.integration

Handle = WorkflowHandle[Any, Any]


def working_days_after(casework: Casework, start: datetime, days: int) -> datetime:
    with Session(casework.engine) as session:
        return calendar_service.working_calendar(session).add_working_days(start, days).due_at


async def verify_rectified_now(casework: Casework, handle: Handle) -> CaseState:
    return await handle.execute_update(AlertCaseWorkflow.verify, VerifyInput(
        actor=casework.world.merchant, choice=VerifyChoice.rectified_now, note="已戴好帽子",
        rectification_photo=evidence("fixed-photo")))


async def verify_needs_time(casework: Casework, handle: Handle, proposed: datetime) -> CaseState:
    return await handle.execute_update(AlertCaseWorkflow.verify, VerifyInput(
        actor=casework.world.merchant, choice=VerifyChoice.needs_time, note="需请灭虫公司", proposed_deadline=proposed))


async def submit(casework: Casework, handle: Handle) -> CaseState:
    return await handle.execute_update(AlertCaseWorkflow.submit_rectification, SubmitRectificationInput(
        actor=casework.world.merchant, photo=evidence("after-photo"), note="已整改"))


async def review(casework: Casework, handle: Handle, decision: ReviewDecision, **extra: Any) -> CaseState:
    return await handle.execute_update(AlertCaseWorkflow.review, ReviewInput(
        actor=casework.world.officer, decision=decision, **extra))


async def refused(call: Any) -> ApplicationError:
    with pytest.raises(WorkflowUpdateFailedError) as caught:
        await call
    cause = caught.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == RULE_VIOLATION
    return cause


# ---------------------------------------------------------------------------------------------------------
# 24 h verification


async def test_silence_escalates_to_the_street_office(casework: Casework) -> None:
    handle, opened = await casework.open_case("no_hat")
    assert opened.merged is False and opened.alert_count == 1
    state = await casework.state(handle)
    verification = state.deadlines["verification"]
    assert verification.due_at == state.opened_at + timedelta(hours=24)
    assert verification.rule == "clock_hours" and "第十六条" in verification.provenance
    await casework.eventually(lambda: casework.inbox_kinds("merchant", state.case_id) == ["case_opened"])

    await casework.skip_past(verification.due_at)
    state = await casework.until(handle, lambda s: "verification" in s.overdue)

    assert state.status == CaseStatus.awaiting_verification
    assert state.deadlines["verification"].met is False
    assert state.flags["verified_in_time"] is False and state.flags["escalated"] is True
    assert state.disposition is not None and state.disposition["label"] == "建议，由执法人员决定"
    await casework.notified("officer", "verification_overdue", state.case_id)
    row = casework.case_row(state.case_id)
    assert row.overdue is True and row.flags["verified_in_time"] is False and row.disposition is not None
    assert row.version == state.version
    assert casework.event_kinds(state.case_id) == ["case_opened", "verification_overdue"]
    overdue_event = casework.events(state.case_id)[-1]
    assert "核实超期" in overdue_event.summary

    # After 核实超期 the office may order rectification without the merchant's answer.
    state = await handle.execute_update(AlertCaseWorkflow.set_deadline, SetDeadlineInput(
        actor=casework.world.officer, working_days=1, note="责令限期整改"))
    assert state.status == CaseStatus.rectifying
    assert state.deadlines["rectification"].due_at == working_days_after(casework, await casework.now(), 1)
    await casework.notified("merchant", "deadline_set", state.case_id)
    await export_history(handle, "silence_then_deadline")


# ---------------------------------------------------------------------------------------------------------
# Immediate rectification (办法 第十八条): fixed within 24 h, records and review within 3 working days


async def test_immediate_fix_reviewed_within_three_working_days(casework: Casework) -> None:
    handle, _ = await casework.open_case("no_hat")
    opened = await casework.state(handle)
    await casework.env.sleep(timedelta(hours=2))

    state = await verify_rectified_now(casework, handle)
    assert state.status == CaseStatus.awaiting_review
    assert state.flags == {"verified_in_time": True, "rectified_in_time": True}
    review_deadline = state.deadlines["review"]
    # Counted from the push, not from the answer: the next day after opening, 24:00 of the 3rd working day.
    assert review_deadline.due_at == working_days_after(casework, opened.opened_at, 3)
    assert review_deadline.rule == "working_days" and review_deadline.calendar_versions
    await casework.notified("officer", "verified_rectified_now", state.case_id)

    await casework.skip_past(review_deadline.due_at - timedelta(hours=2), margin=timedelta(0))
    state = await review(casework, handle, ReviewDecision.approve_rectification, note="照片清晰，已整改",
                         harm="none")
    assert state.status == CaseStatus.closed and state.outcome == CaseOutcome.rectified
    assert state.flags == {"verified_in_time": True, "rectified_in_time": True, "reviewed_in_time": True}
    assert state.overdue == []
    assert state.disposition is not None
    assert state.disposition["recommendation"] in ("no_penalty", "first_offence_no_penalty")
    await casework.closed(handle)
    row = casework.case_row(state.case_id)
    assert row.status == "closed" and row.outcome == "rectified" and row.closed_at is not None
    assert row.overdue is False and row.next_due_at is None
    assert casework.event_kinds(state.case_id) == [
        "case_opened", "verified_rectified_now", "review_approved", "closed"]
    await casework.notified("merchant", "review_approve_rectification", state.case_id)
    await export_history(handle, "rectified_now_reviewed")


async def test_rectified_now_too_late_and_review_too_late(casework: Casework) -> None:
    handle, _ = await casework.open_case("no_mask")
    opened = await casework.state(handle)
    await casework.skip_past(opened.deadlines["verification"].due_at, margin=timedelta(hours=3))
    await casework.until(handle, lambda s: "verification" in s.overdue)

    state = await verify_rectified_now(casework, handle)
    assert state.status == CaseStatus.awaiting_review
    assert state.flags["verified_in_time"] is False and state.flags["rectified_in_time"] is False
    review_due = state.deadlines["review"].due_at
    assert review_due == working_days_after(casework, opened.opened_at, 3)

    await casework.skip_past(review_due)
    state = await casework.until(handle, lambda s: "review" in s.overdue)
    assert state.flags["reviewed_in_time"] is False
    assert state.overdue == ["verification", "review"]
    await casework.notified("officer", "review_overdue", state.case_id)
    await casework.notified("command", "review_overdue", state.case_id)
    assert casework.case_row(state.case_id).overdue is True

    state = await review(casework, handle, ReviewDecision.approve_rectification, outcome=CaseOutcome.no_penalty)
    assert state.outcome == CaseOutcome.no_penalty and state.flags["reviewed_in_time"] is False
    await casework.closed(handle)
    assert casework.event_kinds(state.case_id) == [
        "case_opened", "verification_overdue", "verified_rectified_now", "review_overdue", "review_approved",
        "closed"]


async def test_immediate_problem_not_fixed_within_24_hours_of_verification(casework: Casework) -> None:
    handle, _ = await casework.open_case("smoking")
    now = await casework.now()
    state = await verify_needs_time(casework, handle, proposed=now + timedelta(days=5))
    assert state.status == CaseStatus.rectifying
    rectification = state.deadlines["rectification"]
    # An immediately rectifiable problem: 24 clock hours from the answer, whatever the merchant proposed.
    assert rectification.rule == "clock_hours" and rectification.amount == 24
    assert abs(rectification.due_at - (now + timedelta(hours=24))) < timedelta(minutes=1)

    await casework.skip_past(rectification.due_at)
    state = await casework.until(handle, lambda s: "rectification" in s.overdue)
    assert state.flags["rectified_in_time"] is False
    assert state.disposition is not None and state.disposition["facts"]["deadline_missed"] is True
    assert state.disposition["recommendation"] == "penalty"
    await casework.notified("officer", "rectification_overdue", state.case_id)
    await casework.notified("merchant", "rectification_overdue", state.case_id)

    state = await submit(casework, handle)  # late, still accepted: the office reviews it
    assert state.status == CaseStatus.awaiting_review and state.flags["rectified_in_time"] is False
    await export_history(handle, "immediate_fix_too_late")


# ---------------------------------------------------------------------------------------------------------
# Deferred rectification: an officer-set deadline of at most 3 working days


async def test_deferred_deadline_met(casework: Casework) -> None:
    handle, _ = await casework.open_case("pest")
    now = await casework.now()
    state = await verify_needs_time(casework, handle, proposed=now + timedelta(days=30))
    cap = state.deadlines["rectification"]
    assert cap.due_at == working_days_after(casework, now, 3)  # the proposal is capped at 3 working days

    state = await handle.execute_update(AlertCaseWorkflow.set_deadline, SetDeadlineInput(
        actor=casework.world.officer, working_days=2))
    set_at = await casework.now()
    due = state.deadlines["rectification"].due_at
    assert due == working_days_after(casework, set_at, 2)
    assert "街所设定" in state.deadlines["rectification"].provenance

    await casework.skip_past(due - timedelta(hours=1), margin=timedelta(0))
    state = await submit(casework, handle)
    assert state.status == CaseStatus.awaiting_review and state.flags["rectified_in_time"] is True
    assert state.deadlines["rectification"].met is True
    await casework.notified("officer", "rectification_submitted", state.case_id)

    state = await review(casework, handle, ReviewDecision.approve_rectification)
    assert state.status == CaseStatus.closed and state.outcome == CaseOutcome.rectified
    assert state.flags == {"verified_in_time": True, "rectified_in_time": True, "reviewed_in_time": True}
    await casework.closed(handle)
    await export_history(handle, "needs_time_met")


async def test_deferred_deadline_missed(casework: Casework) -> None:
    handle, _ = await casework.open_case("pest")
    now = await casework.now()
    await verify_needs_time(casework, handle, proposed=now + timedelta(days=2))
    state = await handle.execute_update(AlertCaseWorkflow.set_deadline, SetDeadlineInput(
        actor=casework.world.command, working_days=1, note="指挥中心代街所设定"))
    due = state.deadlines["rectification"].due_at

    await casework.skip_past(due)
    state = await casework.until(handle, lambda s: "rectification" in s.overdue)
    assert state.status == CaseStatus.rectifying
    assert state.flags["rectified_in_time"] is False
    assert state.disposition is not None and state.disposition["recommendation"] == "penalty"
    assert "第十九条第三款" in " ".join(state.disposition["articles"])
    row = casework.case_row(state.case_id)
    assert row.overdue is True and row.disposition == state.disposition
    assert "rectification_overdue" in casework.event_kinds(state.case_id)
    await export_history(handle, "needs_time_missed")


# ---------------------------------------------------------------------------------------------------------
# Disputes (不属实)


async def test_dispute_accepted_closes_as_false_alarm(casework: Casework) -> None:
    handle, _ = await casework.open_case("phone_use")
    state = await handle.execute_update(AlertCaseWorkflow.verify, VerifyInput(
        actor=casework.world.merchant, choice=VerifyChoice.unsubstantiated, reason_code="misdetection",
        note="画面中是温度计，不是手机"))
    assert state.status == CaseStatus.awaiting_dispute_review
    assert "review" in state.deadlines
    await casework.notified("officer", "verified_unsubstantiated", state.case_id)

    state = await review(casework, handle, ReviewDecision.accept_dispute, note="核实为误报")
    assert state.status == CaseStatus.closed and state.outcome == CaseOutcome.false_alarm
    assert state.disposition is not None and state.disposition["rule"] == "false_alarm"
    await casework.closed(handle)
    assert casework.case_row(state.case_id).outcome == "false_alarm"
    assert casework.event_kinds(state.case_id)[-2:] == ["dispute_accepted", "closed"]
    await export_history(handle, "dispute_accepted")


async def test_dispute_rejected_then_rectified(casework: Casework) -> None:
    handle, _ = await casework.open_case("trash_can_open")
    await handle.execute_update(AlertCaseWorkflow.verify, VerifyInput(
        actor=casework.world.merchant, choice=VerifyChoice.unsubstantiated, reason_code="other", note="当时在倒垃圾"))
    state = await review(casework, handle, ReviewDecision.reject_dispute, note="视频显示桶盖长时间打开",
                         working_days=2)
    assert state.status == CaseStatus.rectifying
    assert state.deadlines["rectification"].amount == 2
    await casework.notified("merchant", "review_reject_dispute", state.case_id)

    state = await submit(casework, handle)
    assert state.status == CaseStatus.awaiting_review
    state = await review(casework, handle, ReviewDecision.reject_rectification, note="照片看不清")
    assert state.status == CaseStatus.rectifying
    # No working days given for an immediately rectifiable problem: 24 clock hours again.
    assert state.deadlines["rectification"].rule == "clock_hours"
    await submit(casework, handle)
    state = await review(casework, handle, ReviewDecision.approve_rectification)
    assert state.status == CaseStatus.closed and state.outcome == CaseOutcome.rectified
    await casework.closed(handle)
    assert casework.event_kinds(state.case_id) == [
        "case_opened", "disputed", "dispute_rejected", "rectification_submitted", "review_rejected",
        "rectification_submitted", "review_approved", "closed"]


# ---------------------------------------------------------------------------------------------------------
# Repeat after rectification (办法 第十九条第三款)


async def test_repeat_of_the_same_type_after_closure_is_advised_penalty(casework: Casework) -> None:
    first, _ = await casework.open_case("no_uniform")
    await verify_rectified_now(casework, first)
    closed_first = await review(casework, first, ReviewDecision.approve_rectification, harm="none")
    assert closed_first.disposition is not None
    assert closed_first.disposition["recommendation"] in ("no_penalty", "first_offence_no_penalty")
    await casework.closed(first)

    await casework.env.sleep(timedelta(days=3))
    second, opened = await casework.open_case("no_uniform")
    assert opened.merged is False and opened.case_id != closed_first.case_id
    await verify_rectified_now(casework, second)
    state = await review(casework, second, ReviewDecision.approve_rectification, harm="none")
    assert state.disposition is not None
    assert state.disposition["recommendation"] == "penalty"  # 依法处罚
    assert state.disposition["facts"]["repeat_after_rectification"] is True
    assert state.disposition["facts"]["prior_same_type_24m"] == 1
    assert casework.case_row(state.case_id).disposition == state.disposition


# ---------------------------------------------------------------------------------------------------------
# Transfer: the hand-off outlives the case


async def test_transfer_starts_a_handoff_that_outlives_the_case(casework: Casework) -> None:
    handle, _ = await casework.open_case("health_cert_expired")
    state = await handle.execute_update(AlertCaseWorkflow.transfer, TransferInput(
        actor=casework.world.officer, reason="健康证过期且拒不整改"))
    assert state.status == CaseStatus.closed and state.outcome == CaseOutcome.transferred
    assert state.handoff_id == f"handoff-{state.case_id}"
    assert state.disposition is not None
    await casework.closed(handle)
    await casework.notified("brigade", "transferred", state.case_id)

    handoff = casework.client.get_workflow_handle(state.handoff_id)
    handoff_state: HandoffState = await casework.until(
        handoff, lambda s: s.acceptance_deadline is not None and s.version >= 1,
        query=EnforcementHandoffWorkflow.get_state)
    assert handoff_state.status == HandoffStatus.awaiting_acceptance
    assert (await handoff.describe()).status.name == "RUNNING"  # type: ignore[union-attr]

    # The case is closed; the brigade still accepts and decides on the hand-off.
    await refused(handoff.execute_update(EnforcementHandoffWorkflow.accept, AcceptInput(actor=casework.world.officer)))
    accepted = await handoff.execute_update(EnforcementHandoffWorkflow.accept, AcceptInput(
        actor=casework.world.brigade, note="已受理"))
    assert accepted.status == HandoffStatus.accepted and accepted.acceptance_deadline is not None
    assert accepted.acceptance_deadline.met is True
    await refused(handoff.execute_update(EnforcementHandoffWorkflow.record_decision, DecisionInput(
        actor=casework.world.brigade, kind=DecisionKind.penalty_decision, amount_fen=500_000, document_no="X")))
    await handoff.execute_update(EnforcementHandoffWorkflow.record_decision, DecisionInput(
        actor=casework.world.brigade, kind=DecisionKind.case_opened, note="立案调查"))
    decided = await handoff.execute_update(EnforcementHandoffWorkflow.record_decision, DecisionInput(
        actor=casework.world.brigade, kind=DecisionKind.penalty_decision, amount_fen=500_000,
        document_no="津河市监罚〔2026〕1号"))
    assert decided.status == HandoffStatus.closed
    await casework.closed(handoff)

    row = casework.handoff_row(state.handoff_id)
    assert row.status == "closed" and row.accepted_by == casework.world.brigade.username
    assert row.decision is not None and row.decision["kind"] == "penalty_decision"
    assert [entry["kind"] for entry in row.decision["history"]] == ["case_opened", "penalty_decision"]
    kinds = casework.event_kinds(state.case_id)
    assert kinds[:3] == ["case_opened", "transferred", "closed"]
    assert kinds[3:] == ["handoff_received", "handoff_accepted", "handoff_case_opened", "handoff_penalty_decision"]
    await casework.notified("officer", "handoff_penalty_decision", state.case_id)
    assert casework.case_row(state.case_id).handoff_id == state.handoff_id
    await export_history(handle, "transfer_case")
    await export_history(handoff, "transfer_handoff")


async def test_handoff_not_accepted_within_three_working_days_escalates(casework: Casework) -> None:
    handle, _ = await casework.open_case("licence_expired")
    state = await handle.execute_update(AlertCaseWorkflow.transfer, TransferInput(
        actor=casework.world.command, reason="许可证过期，无证经营"))
    assert state.handoff_id is not None
    handoff = casework.client.get_workflow_handle(state.handoff_id)
    pending: HandoffState = await casework.until(
        handoff, lambda s: s.acceptance_deadline is not None, query=EnforcementHandoffWorkflow.get_state)
    assert pending.acceptance_deadline is not None
    assert pending.acceptance_deadline.due_at == working_days_after(casework, pending.transferred_at, 3)

    await casework.skip_past(pending.acceptance_deadline.due_at)
    overdue: HandoffState = await casework.until(handoff, lambda s: s.overdue,
                                                 query=EnforcementHandoffWorkflow.get_state)
    assert overdue.acceptance_deadline is not None and overdue.acceptance_deadline.met is False
    assert "handoff_overdue" in casework.event_kinds(state.case_id)
    await casework.notified("command", "handoff_overdue", state.case_id)
    # The brigade inbox reads the deadline and the overdue flag from the projection.
    deadline = time.monotonic() + 10
    while not casework.handoff_row(state.handoff_id).overdue:
        assert time.monotonic() < deadline, "the overdue hand-off was not projected"
        await asyncio.sleep(0.05)
    assert casework.handoff_row(state.handoff_id).acceptance_due_at == pending.acceptance_deadline.due_at
    accepted = await handoff.execute_update(EnforcementHandoffWorkflow.accept, AcceptInput(
        actor=casework.world.brigade))
    assert accepted.status == HandoffStatus.accepted
    await handoff.execute_update(EnforcementHandoffWorkflow.record_decision, DecisionInput(
        actor=casework.world.brigade, kind=DecisionKind.not_opened, note="已补办许可证"))
    await casework.closed(handoff)
    assert casework.handoff_row(state.handoff_id).status == "closed"


# ---------------------------------------------------------------------------------------------------------
# Merging alerts into an open case


async def test_alerts_within_the_merge_window_join_the_open_case(casework: Casework) -> None:
    handle, opened = await casework.open_case("no_hat")
    first = (await casework.state(handle)).alerts[0]

    later = casework.alert("no_hat", captured_at=first.captured_at + timedelta(minutes=30))
    _, merged = await casework.deliver(opened.case_id, later)
    assert merged.merged is True and merged.alert_count == 2
    # The intake retries with the same update id (= alert id): applied once, same answer.
    _, again = await casework.deliver(opened.case_id, later)
    assert again == merged
    await handle.signal(AlertCaseWorkflow.add_alert_signal, AddAlertInput(later))  # a machine repeat: ignored
    # A machine event through the signal joins too.
    by_signal = casework.alert("no_hat", captured_at=first.captured_at + timedelta(minutes=90))
    await handle.signal(AlertCaseWorkflow.add_alert_signal, AddAlertInput(by_signal))
    state = await casework.until(handle, lambda s: len(s.alerts) == 3 and s.last_seq == 3)
    assert [alert.alert_id for alert in state.alerts] == [first.alert_id, later.alert_id, by_signal.alert_id]

    # Outside the window (2 h after the last alert for no_hat): refused, the intake opens a new case.
    too_late = casework.alert("no_hat", captured_at=by_signal.captured_at + timedelta(hours=2, minutes=1))
    await refused(handle.execute_update(AlertCaseWorkflow.add_alert, AddAlertInput(too_late), id=too_late.alert_id))
    other_type = casework.alert("smoking", captured_at=by_signal.captured_at)
    await refused(handle.execute_update(AlertCaseWorkflow.add_alert, AddAlertInput(other_type),
                                        id=other_type.alert_id))

    accepted = await accepted_update_ids(handle)
    assert accepted.count(later.alert_id) == 1
    assert too_late.alert_id not in accepted and other_type.alert_id not in accepted
    row = await casework.eventually(lambda: (r := casework.case_row(opened.case_id)).alert_count == 3 and r)
    assert row.last_alert_at == by_signal.captured_at
    assert casework.event_kinds(opened.case_id) == ["case_opened", "alert_merged", "alert_merged"]

    # Closed: the case takes no more alerts, even within the window (the intake opens a new case).
    await verify_rectified_now(casework, handle)
    await review(casework, handle, ReviewDecision.approve_rectification)
    await casework.closed(handle)
    fresh = casework.alert("no_hat", captured_at=by_signal.captured_at + timedelta(minutes=1))
    # Update-with-start as the intake does it: REJECT_DUPLICATE refuses to restart the closed case. (A real server
    # answers WorkflowAlreadyStartedError; the v1 test server a bare ALREADY_EXISTS.)
    with pytest.raises((WorkflowAlreadyStartedError, RPCError)) as refused_start:
        await casework.deliver(opened.case_id, fresh)
    assert isinstance(refused_start.value, WorkflowAlreadyStartedError) or "ALREADY_EXISTS" in str(refused_start.value)
    await export_history(handle, "merged_alerts")


# ---------------------------------------------------------------------------------------------------------
# Refused actions leave no trace in history


async def test_illegal_actions_are_refused_by_validators_without_history(casework: Casework) -> None:
    world = casework.world
    handle, _ = await casework.open_case("no_hat")
    attempts: dict[str, Any] = {
        "review-before-verification": handle.execute_update(
            AlertCaseWorkflow.review, ReviewInput(actor=world.officer, decision=ReviewDecision.approve_rectification),
            id="review-before-verification"),
        "verify-by-officer": handle.execute_update(
            AlertCaseWorkflow.verify, VerifyInput(actor=world.officer, choice=VerifyChoice.rectified_now,
                                                  rectification_photo=evidence("p")), id="verify-by-officer"),
        "verify-without-photo": handle.execute_update(
            AlertCaseWorkflow.verify, VerifyInput(actor=world.merchant, choice=VerifyChoice.rectified_now),
            id="verify-without-photo"),
        "dispute-without-reason": handle.execute_update(
            AlertCaseWorkflow.verify, VerifyInput(actor=world.merchant, choice=VerifyChoice.unsubstantiated,
                                                  note="不是我们"), id="dispute-without-reason"),
        "set-deadline-before-verification": handle.execute_update(
            AlertCaseWorkflow.set_deadline, SetDeadlineInput(actor=world.officer, working_days=2),
            id="set-deadline-before-verification"),
        "comment-by-auditor": handle.execute_update(
            AlertCaseWorkflow.add_comment, CommentInput(actor=world.auditor, text="看看"), id="comment-by-auditor"),
        "transfer-by-merchant": handle.execute_update(
            AlertCaseWorkflow.transfer, TransferInput(actor=world.merchant, reason="?"), id="transfer-by-merchant"),
    }
    for name, call in attempts.items():
        cause = await refused(call)
        assert cause.message, name

    await handle.execute_update(AlertCaseWorkflow.verify, VerifyInput(
        actor=world.merchant, choice=VerifyChoice.needs_time, proposed_deadline=await casework.now() + timedelta(
            hours=5)), id="verify-ok")
    four_days = await refused(handle.execute_update(
        AlertCaseWorkflow.set_deadline, SetDeadlineInput(actor=world.officer, working_days=4), id="four-days"))
    assert "1–3" in four_days.message
    await refused(handle.execute_update(
        AlertCaseWorkflow.set_deadline, SetDeadlineInput(actor=world.merchant, working_days=2), id="by-merchant"))
    await handle.execute_update(AlertCaseWorkflow.add_comment, CommentInput(actor=world.brigade, text="关注"),
                                id="comment-ok")

    accepted = await accepted_update_ids(handle)
    assert set(accepted) - {(await casework.state(handle)).alerts[0].alert_id} == {"verify-ok", "comment-ok"}
    assert casework.event_kinds((await casework.state(handle)).case_id) == [
        "case_opened", "verified_needs_time", "comment"]


async def test_a_case_started_without_an_alert_ends_after_an_hour(casework: Casework) -> None:
    world = casework.world
    case_id = f"case-{uuid.uuid4()}"
    handle = await casework.client.start_workflow(
        AlertCaseWorkflow.run, OpenCaseInput(case_id=case_id, merchant_id=world.merchant_id,
                                             street_office_id=world.street_office_id, camera_id=world.camera_id,
                                             alert_type="no_hat"),
        id=case_id, task_queue=casework.task_queue)
    casework.case_ids.append(case_id)
    await casework.env.sleep(timedelta(hours=1, minutes=1))
    await casework.closed(handle)
    state = await casework.state(handle)
    assert state.alerts == [] and state.version == 0


# ---------------------------------------------------------------------------------------------------------
# 催办


async def test_the_office_reminds_the_merchant_while_it_is_the_merchants_turn(casework: Casework) -> None:
    handle, _ = await casework.open_case("no_hat")
    state = await handle.execute_update(AlertCaseWorkflow.remind, RemindInput(
        actor=casework.world.officer, note="请今天内核实"))
    assert state.status == CaseStatus.awaiting_verification
    await casework.notified("merchant", "reminded", state.case_id)
    assert casework.event_kinds(state.case_id)[-1] == "reminded"
    assert "请今天内核实" in casework.events(state.case_id)[-1].summary

    cause = await refused(handle.execute_update(AlertCaseWorkflow.remind, RemindInput(
        actor=casework.world.merchant)))
    assert "催办" in cause.message
    await verify_rectified_now(casework, handle)
    cause = await refused(handle.execute_update(AlertCaseWorkflow.remind, RemindInput(
        actor=casework.world.officer)))
    assert "待审核" in cause.message
