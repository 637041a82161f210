"""The casework worker serves compute_deadline on a real Temporal dev server, reading official data."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from temporalio import workflow
from temporalio.client import Client
from temporalio.worker import Worker

from activities.calendar import ComputeDeadlineInput, ComputeDeadlineOutput, DeadlineRule
from domain.calendar import service as calendar_service
from domain.calendar.rules import BEIJING, validate_official_calendar
from infra.db import session_scope
from infra.settings import Settings
from infra.worker import build_casework_worker

pytestmark = pytest.mark.integration


@workflow.defn(name="DeadlineProbe", sandboxed=False)
class DeadlineProbe:
    """A stand-in caller: real workflows call compute_deadline exactly like this."""

    @workflow.run
    async def run(self, request: ComputeDeadlineInput) -> ComputeDeadlineOutput:
        return await workflow.execute_activity(
            "compute_deadline", request, result_type=ComputeDeadlineOutput,
            task_queue=workflow.info().task_queue.removesuffix("-probe"),
            start_to_close_timeout=timedelta(seconds=30),
        )


async def test_compute_deadline_through_the_worker(
    temporal_dev_server: str, database_url: str, db_engine: Engine, tmp_path: Path
) -> None:
    settings = Settings(database_url=database_url, temporal_address=temporal_dev_server,  # type: ignore[arg-type]
                        temporal_task_queue=f"casework-{uuid.uuid4().hex[:8]}", var_dir=tmp_path / "var")
    client = await Client.connect(temporal_dev_server)
    worker = build_casework_worker(client, settings)
    # Its own queue: the casework worker already polls workflow tasks on the casework queue.
    probe = Worker(client, task_queue=f"{settings.temporal_task_queue}-probe", workflows=[DeadlineProbe])

    async def compute(started: datetime, rule: DeadlineRule, amount: int) -> ComputeDeadlineOutput:
        return await client.execute_workflow(
            DeadlineProbe.run, ComputeDeadlineInput(started, rule, amount),
            id=f"probe-{uuid.uuid4()}", task_queue=f"{settings.temporal_task_queue}-probe",
        )

    async with worker, probe:
        national_day = await compute(datetime(2026, 9, 30, 15, 0, tzinfo=BEIJING), DeadlineRule.working_days, 3)
        assert national_day.due_at == datetime(2026, 10, 11, 0, 0, tzinfo=BEIJING)
        assert national_day.counted_days == ["2026-10-08", "2026-10-09", "2026-10-10"]
        assert not national_day.provisional

        into_2027 = await compute(datetime(2026, 12, 30, 10, 0, tzinfo=BEIJING), DeadlineRule.working_days, 3)
        assert into_2027.provisional

        # An official 2027 notice loaded by an administrator is used by the next computation.
        with session_scope(db_engine) as session:
            data = validate_official_calendar({
                "year": 2027, "source": {"doc_no": "国办发明电〔2026〕测试号"},
                "rest_days": ["2027-01-01", "2027-01-04"], "working_days": [],
            })
            calendar_service.load_official_year(session, data=data, loaded_by="test")
        official = await compute(datetime(2026, 12, 30, 10, 0, tzinfo=BEIJING), DeadlineRule.working_days, 3)
        assert not official.provisional
        assert official.counted_days == ["2026-12-31", "2027-01-05", "2027-01-06"]
        assert any(version.startswith("official:2027") for version in official.calendar_versions)

        hours = await compute(datetime(2026, 10, 1, 9, 0, tzinfo=BEIJING), DeadlineRule.clock_hours, 24)
        assert hours.due_at == datetime(2026, 10, 2, 9, 0, tzinfo=BEIJING)
    from tests.fixtures.database import truncate_all

    truncate_all(db_engine)
