"""Case actions: who may act (403), on which cases (404), malformed bodies (422), the actor taken from the
token, validator refusals (409), Temporal down (503); evidence uploads that actions refer to.

The workflow side is a stand-in registered under the real workflow's name with the same update names and
payload types: it records what the API sends, and its ``review`` validator refuses like the real one does
on a case that is still awaiting verification. (tests/api/test_casework_end_to_end.py runs the real one.)
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session
from temporalio import workflow
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from api.app import create_app
from infra.settings import Settings
from tests.api.conftest import World, add_case, api_settings_for, bearer_for
from workflows.alert_case import (
    QUERY_GET_STATE,
    UPDATE_ADD_COMMENT,
    UPDATE_REVIEW,
    UPDATE_VERIFY,
    CaseState,
    CaseStatus,
    CommentInput,
    OpenCaseInput,
    ReviewInput,
    VerifyInput,
)

pytestmark = pytest.mark.integration

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x00" * 64
STANDIN_REFUSAL = "案件当前状态为「待核实」，不能执行「审核整改」"

VALID_BODIES: dict[str, dict[str, Any]] = {
    "verify": {"choice": "needs_time", "proposed_deadline": "2026-12-03T18:00:00+08:00"},
    "submit_rectification": {"photo_evidence_id": str(uuid.uuid4())},
    "set_deadline": {"working_days": 2},
    "review": {"decision": "approve_rectification"},
    "transfer": {"reason": "逾期未整改"},
    "comment": {"text": "已电话联系商户"},
}
ALLOWED = {
    "verify": {"merchant1"},
    "submit_rectification": {"merchant1"},
    "set_deadline": {"officer1", "command"},
    "review": {"officer1", "command"},
    "transfer": {"officer1", "command"},
    "comment": {"merchant1", "officer1", "command", "brigade"},
}
EVERYONE = ("merchant1", "officer1", "brigade", "command", "auditor", "admin")


@workflow.defn(name="AlertCaseWorkflow", sandboxed=False)
class StandInCaseWorkflow:
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
        self._received: list[dict[str, Any]] = []

    @workflow.run
    async def run(self, request: OpenCaseInput) -> None:
        await workflow.wait_condition(lambda: self._state.status == CaseStatus.closed)

    @workflow.update(name=UPDATE_VERIFY)
    async def verify(self, request: VerifyInput) -> CaseState:
        self._received.append({"update": UPDATE_VERIFY, **asdict(request)})
        self._state.verification = request
        self._state.status = CaseStatus.awaiting_review
        self._state.version += 1
        return self._state

    @workflow.update(name=UPDATE_ADD_COMMENT)
    async def add_comment(self, request: CommentInput) -> CaseState:
        self._received.append({"update": UPDATE_ADD_COMMENT, **asdict(request)})
        self._state.version += 1
        return self._state

    @workflow.update(name=UPDATE_REVIEW)
    async def review(self, request: ReviewInput) -> CaseState:
        self._received.append({"update": UPDATE_REVIEW, **asdict(request)})
        return self._state

    @review.validator
    def _refuse_review(self, request: ReviewInput) -> None:
        raise ApplicationError(STANDIN_REFUSAL, type="CaseRuleViolation", non_retryable=True)

    @workflow.query(name=QUERY_GET_STATE)
    def get_state(self) -> CaseState:
        return self._state

    @workflow.query(name="received")
    def received(self) -> list[dict[str, Any]]:
        return self._received


# Without Temporal: permissions and bodies are settled before any workflow is asked.


@pytest.mark.parametrize("action", sorted(VALID_BODIES))
def test_only_the_roles_of_an_action_may_take_it(api: TestClient, as_user, action: str) -> None:
    for username in EVERYONE:
        response = api.post(f"/api/v1/cases/case-m1/{action}", headers=as_user(username), json=VALID_BODIES[action])
        if username in ALLOWED[action]:
            # Past the permission check: the brigade finds no such case among the transferred ones, the made-up
            # photo id is refused, and everything else reaches for Temporal, which is down.
            expected = 404 if username == "brigade" else 422 if action == "submit_rectification" else 503
            assert response.status_code == expected, (action, username, response.text)
        else:
            assert response.status_code == 403, (action, username, response.text)
    assert "auditor" not in set().union(*ALLOWED.values())


def test_acting_outside_ones_scope_is_404(api: TestClient, as_user) -> None:
    for username, action in (("merchant2", "verify"), ("officer2", "review"), ("brigade", "comment")):
        response = api.post(f"/api/v1/cases/case-m1/{action}", headers=as_user(username), json=VALID_BODIES[action])
        assert response.status_code == 404, (username, action)
        assert response.json() == {"detail": "no case 'case-m1'"}
    assert api.post("/api/v1/cases/nope/comment", headers=as_user("command"), json={"text": "x"}).status_code == 404


@pytest.mark.parametrize(
    ("action", "body"),
    [
        ("verify", {}),
        ("verify", {"choice": "maybe"}),
        ("verify", {"choice": "rectified_now"}),  # needs the photo
        ("verify", {"choice": "needs_time", "proposed_deadline": "2026-12-03T18:00:00"}),  # no offset
        ("verify", {"choice": "unsubstantiated", "reason_code": "not_our_staff"}),  # needs the explanation
        ("set_deadline", {"working_days": 4}),
        ("set_deadline", {"working_days": "three"}),
        ("review", {"decision": "approve_rectification", "working_days": 0}),
        ("transfer", {"reason": ""}),
        ("comment", {}),
        ("submit_rectification", {"photo_evidence_id": "not-a-uuid"}),
    ],
)
def test_malformed_bodies_are_422(api: TestClient, as_user, action: str, body: dict[str, Any]) -> None:
    username = next(iter(sorted(ALLOWED[action] - {"brigade"})))
    response = api.post(f"/api/v1/cases/case-m1/{action}", headers=as_user(username), json=body)
    assert response.status_code == 422, response.text


def test_temporal_down_is_503_with_retry_after(api: TestClient, as_user) -> None:
    response = api.post("/api/v1/cases/case-m1/comment", headers=as_user("officer1"), json={"text": "hello"})
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) > 0
    # Reading still works from the projection alone.
    detail = api.get("/api/v1/cases/case-m1", headers=as_user("officer1"))
    assert detail.status_code == 200 and detail.json()["state"]["source"] == "projection"


# With a Temporal dev server and the stand-in workflow.


@asynccontextmanager
async def stand_in_cases(temporal_dev_server: str) -> AsyncIterator[tuple[Client, str]]:
    client = await Client.connect(temporal_dev_server)
    task_queue = f"api-tests-{uuid.uuid4().hex[:8]}"
    async with Worker(client, task_queue=task_queue, workflows=[StandInCaseWorkflow]):
        yield client, task_queue


async def open_case(client: Client, task_queue: str, db_engine: Engine, world: World, *, merchant: str) -> str:
    """A projection row and a running stand-in workflow under a fresh id (the dev server outlives tests)."""
    case_id = f"case-{uuid.uuid4().hex[:12]}"
    with Session(db_engine, expire_on_commit=False) as session:
        case = add_case(session, world, case_id, merchant=merchant)
        session.commit()
    await client.start_workflow(
        StandInCaseWorkflow.run,
        OpenCaseInput(case_id, case.merchant_id, case.street_office_id, case.camera_id, case.alert_type),
        id=case_id,
        task_queue=task_queue,
    )
    return case_id


@contextmanager
def app_client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


async def received(client: Client, case_id: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = await client.get_workflow_handle(case_id).query("received")
    return result


async def test_the_actor_comes_from_the_token_never_from_the_body(
    temporal_dev_server: str, database_url: str, tmp_path: Path, db_engine: Engine, world: World
) -> None:
    settings = api_settings_for(database_url, tmp_path, temporal_address=temporal_dev_server)
    async with stand_in_cases(temporal_dev_server) as (client, task_queue):
        case_id = await open_case(client, task_queue, db_engine, world, merchant="m1")
        with app_client(settings) as http:
            forged = {"username": "command", "role": "command_center", "user_id": 1, "unit": "command_center"}
            response = await asyncio.to_thread(
                http.post,
                f"/api/v1/cases/{case_id}/comment",
                headers=bearer_for(settings, world.users["officer1"]),
                json={"text": "已电话联系商户", "actor": forged},
            )
            assert response.status_code == 200, response.text
            assert response.json()["case_id"] == case_id
            assert response.json()["status"] == "awaiting_verification"
            assert response.json()["status_label"] == "待核实"

            [comment] = await received(client, case_id)
            assert comment["actor"] == {
                "username": "officer1",
                "role": "street_officer",
                "user_id": world.users["officer1"].id,
                "unit": "youyilu",
            }
            assert comment["text"] == "已电话联系商户"

            # With Temporal up, the detail carries the workflow's live state.
            detail = await asyncio.to_thread(
                http.get, f"/api/v1/cases/{case_id}", headers=bearer_for(settings, world.users["officer1"])
            )
            assert detail.status_code == 200
            assert detail.json()["state"]["source"] == "workflow"
            assert detail.json()["live"]["case_id"] == case_id
        await client.get_workflow_handle(case_id).terminate("test over")


async def test_a_validator_refusal_is_409_with_its_reason_and_leaves_no_trace(
    temporal_dev_server: str, database_url: str, tmp_path: Path, db_engine: Engine, world: World
) -> None:
    settings = api_settings_for(database_url, tmp_path, temporal_address=temporal_dev_server)
    async with stand_in_cases(temporal_dev_server) as (client, task_queue):
        case_id = await open_case(client, task_queue, db_engine, world, merchant="m1")
        with app_client(settings) as http:
            response = await asyncio.to_thread(
                http.post,
                f"/api/v1/cases/{case_id}/review",
                headers=bearer_for(settings, world.users["officer1"]),
                json={"decision": "approve_rectification"},
            )
            assert response.status_code == 409, response.text
            assert response.json() == {"detail": STANDIN_REFUSAL}
            assert await received(client, case_id) == []

            # A case whose workflow is gone (finished) takes no more actions: 409, not 500.
            await client.get_workflow_handle(case_id).terminate("closed elsewhere")
            gone = await asyncio.to_thread(
                http.post,
                f"/api/v1/cases/{case_id}/comment",
                headers=bearer_for(settings, world.users["officer1"]),
                json={"text": "still there?"},
            )
            assert gone.status_code == 409, gone.text


# Evidence uploads, and actions that refer to them.


@pytest.fixture
def evidence_settings(database_url: str, tmp_path: Path, seaweedfs, temporal_dev_server: str) -> Settings:
    return api_settings_for(
        database_url,
        tmp_path,
        temporal_address=temporal_dev_server,
        s3_endpoint=seaweedfs.endpoint,
        s3_access_key=seaweedfs.access_key,
        s3_secret_key=seaweedfs.secret_key,
        evidence_bucket=f"api-evidence-{uuid.uuid4().hex[:8]}",
        evidence_retention_days=1,
        evidence_max_bytes=64 * 1024,
    )


def upload(http: TestClient, headers: dict[str, str], content: bytes, content_type: str = "image/jpeg") -> Any:
    return http.post("/api/v1/evidence", headers=headers, files={"file": ("photo.jpg", content, content_type)})


async def test_evidence_upload_and_its_use_by_the_uploader_only(
    evidence_settings: Settings, temporal_dev_server: str, db_engine: Engine, world: World
) -> None:
    settings = evidence_settings
    merchant1 = bearer_for(settings, world.users["merchant1"])
    merchant2 = bearer_for(settings, world.users["merchant2"])
    async with stand_in_cases(temporal_dev_server) as (client, task_queue):
        case_m1 = await open_case(client, task_queue, db_engine, world, merchant="m1")
        case_m2 = await open_case(client, task_queue, db_engine, world, merchant="m2")
        with app_client(settings) as http:
            await asyncio.to_thread(http.app.state.evidence_store.ensure_bucket)  # type: ignore[attr-defined]
            photo = JPEG + uuid.uuid4().bytes
            uploaded = await asyncio.to_thread(upload, http, merchant1, photo)
            assert uploaded.status_code == 201, uploaded.text
            evidence = uploaded.json()
            assert len(evidence["sha256"]) == 64 and len(evidence["sm3"]) == 64
            assert evidence["content_type"] == "image/jpeg" and evidence["size"] == len(photo)

            # Someone else's upload, or an id that does not exist, cannot be attached.
            for headers, case_id, evidence_id in (
                (merchant2, case_m2, evidence["evidence_id"]),
                (merchant1, case_m1, str(uuid.uuid4())),
            ):
                refused = await asyncio.to_thread(
                    http.post,
                    f"/api/v1/cases/{case_id}/verify",
                    headers=headers,
                    json={"choice": "rectified_now", "rectification_photo_evidence_id": evidence_id},
                )
                assert refused.status_code == 422, refused.text
            assert await received(client, case_m2) == []

            verified = await asyncio.to_thread(
                http.post,
                f"/api/v1/cases/{case_m1}/verify",
                headers=merchant1,
                json={"choice": "rectified_now", "rectification_photo_evidence_id": evidence["evidence_id"]},
            )
            assert verified.status_code == 200, verified.text
            assert verified.json()["status"] == "awaiting_review"
            [sent] = await received(client, case_m1)
            photo_ref = sent["rectification_photo"]
            assert photo_ref["evidence_id"] == evidence["evidence_id"]
            assert (photo_ref["sha256"], photo_ref["sm3"]) == (evidence["sha256"], evidence["sm3"])
            assert sent["actor"]["unit"] == "92120103MA05TEST1A"

            # Refusals of the store: not an image or video, lying about its type, too big, no file at all.
            assert (
                await asyncio.to_thread(upload, http, merchant1, b"just some text" * 10, "text/plain")
            ).status_code == 415
            assert (await asyncio.to_thread(upload, http, merchant1, JPEG, "image/png")).status_code == 415
            too_big = JPEG + b"\x00" * (64 * 1024)
            assert (await asyncio.to_thread(upload, http, merchant1, too_big)).status_code == 413
            misnamed = await asyncio.to_thread(
                http.post, "/api/v1/evidence", headers=merchant1, files={"photo": ("a.jpg", photo, "image/jpeg")}
            )
            assert misnamed.status_code == 422
            not_multipart = await asyncio.to_thread(http.post, "/api/v1/evidence", headers=merchant1, content=photo)
            assert not_multipart.status_code == 415
            # Announced too big: refused before a byte of the body is read.
            huge = {**merchant1, "Content-Length": str(10 << 30), "Content-Type": "multipart/form-data; boundary=x"}
            assert (
                await asyncio.to_thread(http.post, "/api/v1/evidence", headers=huge, content=b"")
            ).status_code == 413
            anonymous = await asyncio.to_thread(
                http.post, "/api/v1/evidence", files={"file": ("a.jpg", photo, "image/jpeg")}
            )
            assert anonymous.status_code == 401
            for username in ("auditor", "admin"):
                headers = bearer_for(settings, world.users[username])
                assert (await asyncio.to_thread(upload, http, headers, photo)).status_code == 403
        for case_id in (case_m1, case_m2):
            await client.get_workflow_handle(case_id).terminate("test over")
