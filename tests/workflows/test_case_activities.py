"""The projection activities are idempotent and never let a stale write win; start_handoff starts once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.cases import (
    AppendCaseEventsInput,
    CaseActivities,
    CaseSnapshot,
    ProjectCaseInput,
    TimelineEvent,
)
from activities.handoffs import HandoffActivities, HandoffInput, StartHandoffInput
from domain.cases.models import AlertCase
from infra.settings import Settings
from infra.worker import build_casework_worker
from tests.workflows.conftest import Casework, World, accepted_update_ids, build_worker, evidence
from workflows.alert_case import (
    AlertCaseWorkflow,
    CaseStatus,
    ReviewDecision,
    ReviewInput,
    TransferInput,
    VerifyChoice,
    VerifyInput,
)
from workflows.enforcement_handoff import AcceptInput, EnforcementHandoffWorkflow, HandoffStatus

pytestmark = pytest.mark.integration

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def snapshot(world: World, version: int, status: str) -> CaseSnapshot:
    return CaseSnapshot(case_id="case-activity-test", version=version, merchant_id=world.merchant_id,
                        street_office_id=world.street_office_id, camera_id=world.camera_id, alert_type="no_hat",
                        status=status, opened_at=T0, last_alert_at=T0, alert_count=version,
                        deadlines={"verification": {"due_at": (T0 + timedelta(hours=24)).isoformat()}})


def test_project_case_applies_only_newer_versions(db_engine: Engine, world: World) -> None:
    activities = CaseActivities(lambda: Session(db_engine))
    env = ActivityEnvironment()
    assert env.run(activities.project_case, ProjectCaseInput(snapshot(world, 1, "awaiting_verification"))).applied
    assert env.run(activities.project_case, ProjectCaseInput(snapshot(world, 3, "awaiting_review"))).applied
    # A retry of version 3 and a late version 2 change nothing.
    assert not env.run(activities.project_case, ProjectCaseInput(snapshot(world, 3, "awaiting_review"))).applied
    assert not env.run(activities.project_case, ProjectCaseInput(snapshot(world, 2, "rectifying"))).applied
    with Session(db_engine) as session:
        row = session.get(AlertCase, "case-activity-test")
        assert row is not None
        assert (row.version, row.status, row.alert_count, row.category) == (3, "awaiting_review", 3, "dress")
        assert "未戴工作帽" in row.summary


def test_append_case_events_is_idempotent(db_engine: Engine, world: World) -> None:
    activities = CaseActivities(lambda: Session(db_engine))
    env = ActivityEnvironment()
    env.run(activities.project_case, ProjectCaseInput(snapshot(world, 1, "awaiting_verification")))
    events = [TimelineEvent(seq=seq, at=T0, kind="comment", actor="x", summary=f"line {seq}") for seq in (1, 2)]
    request = AppendCaseEventsInput(case_id="case-activity-test", events=events)
    assert env.run(activities.append_case_events, request).inserted == 2
    assert env.run(activities.append_case_events, request).inserted == 0  # a retry


async def test_start_handoff_is_idempotent(env: WorkflowEnvironment, db_engine: Engine, world: World) -> None:
    task_queue = "handoff-start-test"
    handoff = HandoffInput(case_id="case-handoff-start", merchant_id=world.merchant_id,
                           street_office_id=world.street_office_id, camera_id=world.camera_id,
                           alert_type="no_hat", reason="测试", transferred_by="officer",
                           transferred_by_role="street_officer", transferred_at=await env.get_current_time())
    activities = HandoffActivities(env.client)
    request = StartHandoffInput(handoff=handoff, task_queue=task_queue)
    async with build_worker(env.client, db_engine, task_queue):
        first = await ActivityEnvironment().run(activities.start_handoff, request)
        again = await ActivityEnvironment().run(activities.start_handoff, request)
        assert first.handoff_id == again.handoff_id == "handoff-case-handoff-start"
        assert (first.already_started, again.already_started) == (False, True)
        await env.client.get_workflow_handle(first.handoff_id).terminate("end of test")


async def test_the_casework_worker_runs_a_case(env: WorkflowEnvironment, database_url: str, db_engine: Engine,
                                               world: World, tmp_path: Path) -> None:
    """build_casework_worker (what `sunshine up` runs) registers both workflows and every activity."""
    settings = Settings(database_url=database_url, temporal_task_queue="casework-built",  # type: ignore[arg-type]
                        var_dir=tmp_path / "var")  # the worker makes its signer key there
    casework = Casework(env=env, engine=db_engine, world=world, task_queue=settings.temporal_task_queue)
    async with build_casework_worker(env.client, settings):
        handle, _ = await casework.open_case("no_hat")
        await handle.execute_update(AlertCaseWorkflow.verify, VerifyInput(
            actor=world.merchant, choice=VerifyChoice.rectified_now, rectification_photo=evidence("photo")))
        state = await handle.execute_update(AlertCaseWorkflow.transfer, TransferInput(
            actor=world.officer, reason="测试移交"))
        assert state.status == CaseStatus.closed and state.handoff_id is not None
        handoff = env.client.get_workflow_handle(state.handoff_id)
        accepted = await handoff.execute_update(EnforcementHandoffWorkflow.accept, AcceptInput(actor=world.brigade))
        assert accepted.status == HandoffStatus.accepted
        await casework.terminate_leftovers()


async def test_a_case_on_the_real_dev_server(temporal_dev_server: str, db_engine: Engine, world: World) -> None:
    """The semantics the intake relies on, on a real server: update-with-start dedupes by update id, a refused
    update leaves no event, a closed case refuses to restart (WorkflowAlreadyStartedError)."""
    client = await Client.connect(temporal_dev_server)
    casework = Casework(env=WorkflowEnvironment(client), engine=db_engine, world=world,
                        task_queue=f"casework-dev-{uuid.uuid4().hex[:8]}")
    async with build_worker(client, db_engine, casework.task_queue):
        handle, opened = await casework.open_case("no_hat")
        first = (await casework.state(handle)).alerts[0]
        _, again = await casework.deliver(opened.case_id, first)
        assert again == opened
        with pytest.raises(WorkflowUpdateFailedError):
            await handle.execute_update(AlertCaseWorkflow.review, ReviewInput(
                actor=world.officer, decision=ReviewDecision.approve_rectification), id="too-early")
        await handle.execute_update(AlertCaseWorkflow.verify, VerifyInput(
            actor=world.merchant, choice=VerifyChoice.rectified_now, rectification_photo=evidence("photo")))
        state = await handle.execute_update(AlertCaseWorkflow.review, ReviewInput(
            actor=world.officer, decision=ReviewDecision.approve_rectification, harm="none"))
        assert state.status == CaseStatus.closed
        await casework.closed(handle)
        assert "too-early" not in await accepted_update_ids(handle)
        assert (await accepted_update_ids(handle)).count(first.alert_id) == 1
        late = casework.alert("no_hat", captured_at=first.captured_at + timedelta(minutes=5))
        with pytest.raises(WorkflowAlreadyStartedError):
            await casework.deliver(opened.case_id, late)
