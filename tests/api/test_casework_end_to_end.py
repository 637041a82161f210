"""The case API against the real AlertCaseWorkflow on a real casework worker (infra.worker) and a Temporal
dev server: the projection the activities write is what the API lists, a validator refusal of the real
workflow answers 409 with its reason, and an accepted action returns the workflow's new state."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from api.app import create_app
from infra.worker import build_casework_worker
from tests.api.conftest import World, api_settings_for, bearer_for
from workflows.alert_case import (
    UPDATE_ADD_ALERT,
    WORKFLOW_NAME,
    AddAlertInput,
    AddAlertResult,
    AlertRef,
    OpenCaseInput,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def snapshot_ref(name: str) -> dict[str, Any]:
    digest = uuid.uuid5(uuid.NAMESPACE_URL, name).hex
    return {
        "evidence_id": str(uuid.uuid5(uuid.NAMESPACE_DNS, name)),
        "bucket": "sunshine-evidence",
        "key": f"sha256/{digest * 2}",
        "version_id": None,
        "sha256": digest * 2,
        "sm3": digest[::-1] * 2,
        "size": 1234,
        "content_type": "image/jpeg",
        "stored_at": "2026-01-01T00:00:00+00:00",
    }


async def open_real_case(client: Client, task_queue: str, world: World) -> str:
    """What intake does: update-with-start on the case id with the first alert."""
    merchant, camera = world.merchants["m1"], world.cameras["m1"]
    assert merchant.id is not None and camera.id is not None
    alert_id = str(uuid.uuid4())
    case_id = f"case-{alert_id}"
    operation: WithStartWorkflowOperation[Any, Any] = WithStartWorkflowOperation(
        WORKFLOW_NAME,
        OpenCaseInput(
            case_id=case_id,
            merchant_id=merchant.id,
            street_office_id=merchant.street_office_id,
            camera_id=camera.id,
            alert_type="no_hat",
        ),
        id=case_id,
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
    )
    alert = AlertRef(
        alert_id=alert_id,
        event_id=f"evt-{alert_id[:8]}",
        alert_type="no_hat",
        captured_at=datetime.now(UTC),
        score=0.9,
        snapshot=snapshot_ref(alert_id),
    )
    await client.execute_update_with_start_workflow(
        UPDATE_ADD_ALERT,
        AddAlertInput(alert),
        start_workflow_operation=operation,
        id=alert_id,
        result_type=AddAlertResult,
    )
    return case_id


async def wait_for_listing(http: TestClient, headers: dict[str, str], case_id: str, timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        response = await asyncio.to_thread(http.get, f"/api/v1/cases/{case_id}", headers=headers)
        if response.status_code == 200 and response.json()["state"]["deadlines"].get("verification"):
            return
        if loop.time() > deadline:
            raise AssertionError(f"case {case_id} not projected within {timeout} s: {response.text}")
        await asyncio.sleep(0.1)


async def test_actions_on_the_real_workflow(
    temporal_dev_server: str, database_url: str, tmp_path: Path, db_engine: Engine, world: World
) -> None:
    settings = api_settings_for(
        database_url,
        tmp_path,
        temporal_address=temporal_dev_server,
        temporal_task_queue=f"casework-api-{uuid.uuid4().hex[:8]}",
    )
    officer = bearer_for(settings, world.users["officer1"])
    merchant = bearer_for(settings, world.users["merchant1"])
    client = await Client.connect(temporal_dev_server)
    async with build_casework_worker(client, settings):
        case_id = await open_real_case(client, settings.temporal_task_queue, world)
        with TestClient(create_app(settings)) as http:
            await wait_for_listing(http, officer, case_id)
            listed = await asyncio.to_thread(http.get, "/api/v1/cases", headers=officer)
            assert case_id in [item["case_id"] for item in listed.json()["items"]]
            # The merchant of another shop cannot see it.
            other = bearer_for(settings, world.users["merchant2"])
            assert (await asyncio.to_thread(http.get, f"/api/v1/cases/{case_id}", headers=other)).status_code == 404

            # Nothing to review yet: the real validator refuses, and the API passes its reason on.
            refused = await asyncio.to_thread(
                http.post,
                f"/api/v1/cases/{case_id}/review",
                headers=officer,
                json={"decision": "approve_rectification"},
            )
            assert refused.status_code == 409, refused.text
            assert "待核实" in refused.json()["detail"]

            proposed = (datetime.now(UTC) + timedelta(hours=6)).isoformat()
            verified = await asyncio.to_thread(
                http.post,
                f"/api/v1/cases/{case_id}/verify",
                headers=merchant,
                json={"choice": "needs_time", "proposed_deadline": proposed, "note": "今天下班前整改"},
            )
            assert verified.status_code == 200, verified.text
            assert verified.json()["status"] == "rectifying"
            assert verified.json()["verification"]["actor"]["username"] == "merchant1"

            # A second answer is refused by the workflow: the case is no longer awaiting verification.
            again = await asyncio.to_thread(
                http.post,
                f"/api/v1/cases/{case_id}/verify",
                headers=merchant,
                json={"choice": "needs_time", "proposed_deadline": proposed},
            )
            assert again.status_code == 409, again.text

            detail = (await asyncio.to_thread(http.get, f"/api/v1/cases/{case_id}", headers=officer)).json()
            assert detail["state"]["source"] == "workflow"
            assert detail["state"]["status"] == "rectifying"
            assert detail["state"]["deadlines"]["rectification"]["provenance"]
            assert detail["case"]["status"] == "rectifying"  # the projection the handler wrote before answering
            assert any(event["actor"] == "merchant1" for event in detail["timeline"])
        await client.get_workflow_handle(case_id).terminate("test over")


async def test_closed_loop_through_the_api_records_the_officers_findings_in_the_advice(
    temporal_dev_server: str, database_url: str, tmp_path: Path, db_engine: Engine, world: World, seaweedfs
) -> None:
    """Merchant answers with a photo, the officer approves and records 危害后果: the advice uses that finding."""
    from infra.evidence_store import EvidenceStore

    settings = api_settings_for(
        database_url, tmp_path, temporal_address=temporal_dev_server,
        temporal_task_queue=f"casework-api-{uuid.uuid4().hex[:8]}",
        s3_endpoint=seaweedfs.endpoint, s3_access_key=seaweedfs.access_key, s3_secret_key=seaweedfs.secret_key,
        evidence_bucket=f"api-loop-{uuid.uuid4().hex[:8]}", evidence_retention_days=1,
    )
    EvidenceStore.from_settings(settings, db_engine).ensure_bucket()
    officer = bearer_for(settings, world.users["officer1"])
    merchant = bearer_for(settings, world.users["merchant1"])
    photo = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + uuid.uuid4().bytes * 4
    client = await Client.connect(temporal_dev_server)
    async with build_casework_worker(client, settings):
        case_id = await open_real_case(client, settings.temporal_task_queue, world)
        with TestClient(create_app(settings)) as http:
            uploaded = await asyncio.to_thread(
                http.post, "/api/v1/evidence", headers=merchant, files={"file": ("fix.jpg", photo, "image/jpeg")}
            )
            assert uploaded.status_code in (200, 201), uploaded.text
            verified = await asyncio.to_thread(
                http.post, f"/api/v1/cases/{case_id}/verify", headers=merchant,
                json={"choice": "rectified_now", "rectification_photo_evidence_id": uploaded.json()["evidence_id"]},
            )
            assert verified.status_code == 200, verified.text
            reviewed = await asyncio.to_thread(
                http.post, f"/api/v1/cases/{case_id}/review", headers=officer,
                json={"decision": "approve_rectification", "note": "照片核实", "harm": "none"},
            )
            assert reviewed.status_code == 200, reviewed.text
            state = reviewed.json()
            assert (state["status"], state["outcome"]) == ("closed", "rectified")
            advice = state["disposition"]
            assert advice["facts"]["harm"] == "none"
            assert advice["recommendation"] in ("no_penalty", "first_offence_no_penalty")
            assert advice["label"] == "建议，由执法人员决定"
            bad_harm = await asyncio.to_thread(
                http.post, f"/api/v1/cases/{case_id}/review", headers=officer,
                json={"decision": "approve_rectification", "harm": "catastrophic"},
            )
            assert bad_harm.status_code == 422
