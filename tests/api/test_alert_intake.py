"""POST /api/v1/alerts end to end: real PostgreSQL, SeaweedFS (Object Lock) and a Temporal dev server with a
casework worker. Covers idempotency (repeats, 20 concurrent posts), the merge window, closed cases, every
refusal with nothing written, device scopes, and intake while Temporal is down followed by a retry."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from minio import Minio
from sqlalchemy import Engine, func
from sqlmodel import Session, select
from temporalio import workflow
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from api.app import create_app
from domain.alerts.intake_rules import (
    CapturedAtOutOfRange,
    InvalidAlertMeta,
    check_capture_time,
    load_meta_json,
    may_join_case,
    parse_alert_meta,
)
from domain.alerts.taxonomy import alert_type_info
from domain.base import utcnow
from domain.cases.models import Alert
from domain.devices.service import create_device
from domain.evidence.models import Evidence
from domain.merchants.models import Camera, Merchant, StreetOffice
from infra.components.process import free_port
from infra.evidence_store import EvidenceStore
from infra.intake import AlertIntake, AlertSender, AlertSubmission, EvidenceUpload, TemporalUnavailable
from infra.settings import Settings
from infra.worker import build_casework_worker
from tests.fixtures.database import truncate_all
from tests.fixtures.s3 import SeaweedInstance
from workflows.alert_case import (
    QUERY_GET_STATE,
    UPDATE_ADD_ALERT,
    UPDATE_REVIEW,
    UPDATE_VERIFY,
    WORKFLOW_NAME,
    Actor,
    AddAlertInput,
    AddAlertResult,
    AlertRef,
    OpenCaseInput,
    ReviewDecision,
    ReviewInput,
    VerifyChoice,
    VerifyInput,
)

pytestmark = pytest.mark.integration

BEIJING = timezone(timedelta(hours=8))
MAX_PART_BYTES = 256 * 1024  # small, so that the 413 cases stay cheap
WEBM_HEAD = b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm\x42\x87\x81\x04"
MP4_HEAD = (24).to_bytes(4, "big") + b"ftypisom" + b"\x00\x00\x02\x00" + b"isomiso2"


# ----- The case workflow behind intake -------------------------------------------------------------------
# One line picks it: the real AlertCaseWorkflow as the casework worker runs it (infra.worker), or the small
# STAND-IN below, which keeps intake's tests independent of the case workflow's own progress. The stand-in has
# the same name and add_alert contract (validator refuses closed cases and alerts past the merge window) and a
# test-only signal to close it.
USE_REAL_CASE_WORKFLOW = True


@workflow.defn(name=WORKFLOW_NAME, sandboxed=False)
class StandInAlertCase:
    @workflow.init
    def __init__(self, case: OpenCaseInput) -> None:
        self.case = case
        self.alerts: list[AlertRef] = []
        self.closed = False
        self.finished = False

    @workflow.run
    async def run(self, case: OpenCaseInput) -> None:
        await workflow.wait_condition(lambda: self.finished)

    @workflow.update(name=UPDATE_ADD_ALERT)
    def add_alert(self, request: AddAlertInput) -> AddAlertResult:
        ids = [alert.alert_id for alert in self.alerts]
        if request.alert.alert_id not in ids:
            self.alerts.append(request.alert)
            ids.append(request.alert.alert_id)
        position = ids.index(request.alert.alert_id) + 1
        return AddAlertResult(case_id=self.case.case_id, merged=position > 1, alert_count=len(self.alerts))

    @add_alert.validator
    def check_add_alert(self, request: AddAlertInput) -> None:
        if any(alert.alert_id == request.alert.alert_id for alert in self.alerts):
            return  # a retry: answered with the first result
        if self.closed:
            raise ApplicationError("the case is closed", type="CaseRuleViolation")
        window = alert_type_info(self.case.alert_type).merge_window
        if self.alerts and not may_join_case(
            captured_at=request.alert.captured_at,
            case_last_captured_at=max(alert.captured_at for alert in self.alerts),
            merge_window=window,
        ):
            raise ApplicationError("outside the merge window", type="CaseRuleViolation")

    @workflow.signal(name="stand_in_close")
    def close(self, finish: bool) -> None:
        self.closed = True
        self.finished = finish

    @workflow.query(name=QUERY_GET_STATE)
    def get_state(self) -> dict[str, Any]:
        return {
            "case_id": self.case.case_id,
            "status": "closed" if self.closed else "awaiting_verification",
            "alerts": [{"alert_id": alert.alert_id} for alert in self.alerts],
        }


def casework_worker(client: Client, settings: Settings) -> Worker:
    if USE_REAL_CASE_WORKFLOW:
        return build_casework_worker(client, settings)
    return Worker(client, task_queue=settings.temporal_task_queue, workflows=[StandInAlertCase])


async def close_case(client: Client, case_id: str, *, finish_workflow: bool) -> None:
    """Close the case; ``finish_workflow`` also waits for its run to end (as a closed case's run does)."""
    handle = client.get_workflow_handle(case_id)
    if USE_REAL_CASE_WORKFLOW:  # the shortest real way to closure: the merchant disputes, the officer agrees
        await handle.execute_update(
            UPDATE_VERIFY,
            VerifyInput(
                actor=Actor(username="merchant-m1", role="merchant"),
                choice=VerifyChoice.unsubstantiated,
                reason_code="false_detection",
                note="误报：厨师戴着工作帽",
            ),
        )
        await handle.execute_update(
            UPDATE_REVIEW,
            ReviewInput(actor=Actor(username="officer", role="street_officer"), decision=ReviewDecision.accept_dispute),
        )
    else:
        await handle.signal("stand_in_close", finish_workflow)
    if finish_workflow:
        await handle.result()


async def case_alert_ids(client: Client, case_id: str) -> list[str]:
    state = await client.get_workflow_handle(case_id).query(QUERY_GET_STATE, result_type=dict)
    return [alert["alert_id"] for alert in state["alerts"]]


# ----- A small district ----------------------------------------------------------------------------------


@dataclass
class District:
    cameras: dict[str, int] = field(default_factory=dict)  # "m1", "m2" → camera id
    keys: dict[str, str] = field(default_factory=dict)  # "m1", "m2", "district", "revoked" → device key


@pytest.fixture
def district(db_engine: Engine) -> Iterator[District]:
    world = District()
    with Session(db_engine, expire_on_commit=False) as session:
        office = StreetOffice(code="youyilu", name="友谊路街市场监管所")
        session.add(office)
        session.flush()
        assert office.id is not None
        for key, credit_code in (("m1", "92120103MA05INTK1A"), ("m2", "91120103MA05INTK2B")):
            merchant = Merchant(
                credit_code=credit_code, name=f"商户{key}", address="河西区", street_office_id=office.id
            )
            session.add(merchant)
            session.flush()
            assert merchant.id is not None
            camera = Camera(merchant_id=merchant.id, name=f"{key} 烹饪区", area="cooking", stream_url="rtsp://x/1")
            session.add(camera)
            session.flush()
            assert camera.id is not None
            world.cameras[key] = camera.id
            _, world.keys[key] = create_device(session, name=f"{key} edge box", merchant_credit_code=credit_code)
        _, world.keys["district"] = create_device(session, name="vendor platform", kind="integration")
        revoked, world.keys["revoked"] = create_device(
            session, name="old box", merchant_credit_code="92120103MA05INTK1A"
        )
        revoked.revoked_at = utcnow()
        session.commit()
    yield world
    truncate_all(db_engine)


@pytest.fixture
def intake_settings(
    database_url: str,
    temporal_dev_server: str,
    seaweedfs: SeaweedInstance,
    evidence_store: EvidenceStore,
    tmp_path: Path,
) -> Settings:
    """The app on the same database, Temporal and bucket as the fixtures (the bucket is made by evidence_store)."""
    return Settings(
        database_url=database_url,
        temporal_address=temporal_dev_server,
        temporal_task_queue=f"casework-intake-{uuid.uuid4().hex[:8]}",
        s3_endpoint=seaweedfs.endpoint,
        s3_access_key=seaweedfs.access_key,
        s3_secret_key=seaweedfs.secret_key,
        evidence_bucket=evidence_store.bucket,
        evidence_max_bytes=MAX_PART_BYTES,
        var_dir=tmp_path / "var",
    )


@pytest.fixture
async def temporal(temporal_dev_server: str) -> Client:
    return await Client.connect(temporal_dev_server)


@asynccontextmanager
async def running_api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan, served in this event loop (the worker polls in the same loop)."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sunshine.test") as http:
            yield http


@pytest.fixture
async def api(intake_settings: Settings, temporal: Client, district: District) -> AsyncIterator[httpx.AsyncClient]:
    async with casework_worker(temporal, intake_settings), running_api(intake_settings) as http:
        yield http


# ----- Payloads --------------------------------------------------------------------------------------------


def jpeg(seed: object, size: int = 2048) -> bytes:
    return b"\xff\xd8\xff\xe0" + random.Random(str(seed)).randbytes(size - 4)


def png(seed: object, size: int = 2048) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + random.Random(str(seed)).randbytes(size - 8)


def webm(seed: object, size: int = 4096) -> bytes:
    return WEBM_HEAD + random.Random(str(seed)).randbytes(size - len(WEBM_HEAD))


def mp4(seed: object, size: int = 4096) -> bytes:
    return MP4_HEAD + random.Random(str(seed)).randbytes(size - len(MP4_HEAD))


def meta_for(
    camera_id: int, /, *, event_id: str | None = None, ago: timedelta = timedelta(minutes=1), **overrides: Any
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "event_id": event_id or f"evt-{uuid.uuid4().hex[:12]}",
        "camera_id": camera_id,
        "alert_type": "no_hat",
        "captured_at": (datetime.now(UTC) - ago).astimezone(BEIJING).isoformat(),
        "score": 0.91,
        "boxes": [{"x": 10, "y": 20, "w": 64, "h": 128, "label": "head", "score": 0.9}],
        "model": {"name": "hat-detector", "version": "1.2.0", "sha256": "ab" * 32},
    }
    meta.update(overrides)
    return meta


def multipart(
    meta: dict[str, Any] | str | None,
    *,
    snapshot: bytes | None = None,
    snapshot_type: str = "image/jpeg",
    clip: bytes | None = None,
    clip_type: str = "video/webm",
) -> dict[str, Any]:
    """httpx ``files`` for one POST: meta as a plain form field (no filename), evidence as file parts."""
    files: dict[str, Any] = {}
    if meta is not None:
        files["meta"] = (None, meta if isinstance(meta, str) else json.dumps(meta), "application/json")
    if snapshot is not None:
        files["snapshot"] = ("snapshot.jpg", snapshot, snapshot_type)
    if clip is not None:
        files["clip"] = ("clip.webm", clip, clip_type)
    return {"files": files}


async def post(
    http: httpx.AsyncClient, key: str | None, meta: dict[str, Any] | str | None, **parts: Any
) -> httpx.Response:
    headers = {} if key is None else {"Authorization": f"Bearer {key}"}
    if "snapshot" not in parts and isinstance(meta, dict):
        parts["snapshot"] = jpeg(meta["event_id"])
    return await http.post("/api/v1/alerts", headers=headers, **multipart(meta, **parts))


# ----- What was written ------------------------------------------------------------------------------------


def alert_rows(engine: Engine) -> list[Alert]:
    with Session(engine) as session:
        return list(session.exec(select(Alert)).all())


def evidence_count(engine: Engine) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(Evidence)).one()


def stored_objects(client: Minio, bucket: str) -> list[Any]:
    return list(client.list_objects(bucket, recursive=True, include_version=True))


# ----- Tests -----------------------------------------------------------------------------------------------


async def test_first_post_answers_201_and_repeats_200_with_the_same_body(
    api: httpx.AsyncClient, district: District, temporal: Client, db_engine: Engine
) -> None:
    meta = meta_for(district.cameras["m1"])
    first = await post(api, district.keys["m1"], meta, clip=webm(meta["event_id"]))
    assert first.status_code == 201, first.text
    body = first.json()
    assert set(body) == {"alert_id", "case_id", "merged"}
    assert body["merged"] is False
    assert body["case_id"] == f"case-{body['alert_id']}"

    for _ in range(2):
        again = await post(api, district.keys["m1"], meta, clip=webm(meta["event_id"]))
        assert again.status_code == 200, again.text
        assert again.json() == body

    [row] = alert_rows(db_engine)
    assert str(row.id) == body["alert_id"]
    assert (row.case_id, row.merged) == (body["case_id"], False)
    assert row.source.startswith("device:")
    assert row.delivered_at is not None and row.clip_evidence_id is not None
    assert row.boxes == meta["boxes"] and row.model == meta["model"]
    assert evidence_count(db_engine) == 2  # snapshot and clip, each once despite the repeats
    assert await case_alert_ids(temporal, body["case_id"]) == [body["alert_id"]]


async def test_twenty_concurrent_posts_of_one_event_give_one_alert_and_one_case(
    api: httpx.AsyncClient,
    district: District,
    temporal: Client,
    db_engine: Engine,
    minio_client: Minio,
    intake_settings: Settings,
) -> None:
    meta = meta_for(district.cameras["m1"])
    snapshot = jpeg(meta["event_id"])
    responses = await asyncio.gather(*(post(api, district.keys["m1"], meta, snapshot=snapshot) for _ in range(20)))
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] * 19 + [201], [response.text for response in responses]
    bodies = {response.text for response in responses}
    assert len(bodies) == 1
    body = responses[0].json()

    [row] = alert_rows(db_engine)
    assert (str(row.id), row.case_id) == (body["alert_id"], body["case_id"])
    assert evidence_count(db_engine) == 1
    assert len(stored_objects(minio_client, intake_settings.evidence_bucket)) == 1
    assert await case_alert_ids(temporal, body["case_id"]) == [body["alert_id"]]


async def test_an_alert_within_the_merge_window_joins_the_open_case(
    api: httpx.AsyncClient, district: District, temporal: Client
) -> None:
    camera = district.cameras["m1"]
    first = await post(api, district.keys["m1"], meta_for(camera, ago=timedelta(minutes=90)))
    second = await post(api, district.keys["m1"], meta_for(camera, ago=timedelta(minutes=1)))  # no_hat: 2 h
    other_type = await post(api, district.keys["m1"], meta_for(camera, alert_type="no_mask"))
    assert (first.status_code, second.status_code, other_type.status_code) == (201, 201, 201)
    case_id = first.json()["case_id"]
    assert second.json() == {"alert_id": second.json()["alert_id"], "case_id": case_id, "merged": True}
    assert other_type.json()["case_id"] != case_id and other_type.json()["merged"] is False
    assert await case_alert_ids(temporal, case_id) == [first.json()["alert_id"], second.json()["alert_id"]]


async def test_an_alert_outside_the_merge_window_opens_a_new_case(
    api: httpx.AsyncClient, district: District, temporal: Client
) -> None:
    camera = district.cameras["m1"]
    first = await post(api, district.keys["m1"], meta_for(camera, ago=timedelta(hours=3)))
    second = await post(api, district.keys["m1"], meta_for(camera, ago=timedelta(minutes=1)))
    assert (first.status_code, second.status_code) == (201, 201)
    assert second.json()["case_id"] == f"case-{second.json()['alert_id']}" != first.json()["case_id"]
    assert second.json()["merged"] is False
    assert await case_alert_ids(temporal, first.json()["case_id"]) == [first.json()["alert_id"]]


@pytest.mark.parametrize("finish_workflow", [False, True], ids=["closed-case-running", "closed-case-finished"])
async def test_an_alert_for_a_closed_case_opens_a_new_case(
    api: httpx.AsyncClient, district: District, temporal: Client, db_engine: Engine, finish_workflow: bool
) -> None:
    camera = district.cameras["m1"]
    first = await post(api, district.keys["m1"], meta_for(camera, ago=timedelta(minutes=30)))
    closed_case = first.json()["case_id"]
    await close_case(temporal, closed_case, finish_workflow=finish_workflow)

    later = await post(api, district.keys["m1"], meta_for(camera, ago=timedelta(minutes=1)))
    assert later.status_code == 201, later.text
    assert later.json()["case_id"] == f"case-{later.json()['alert_id']}" != closed_case
    assert later.json()["merged"] is False
    # The next alert of the kind joins the new case, not the closed one.
    third = await post(api, district.keys["m1"], meta_for(camera))
    assert third.json()["case_id"] == later.json()["case_id"] and third.json()["merged"] is True
    assert await case_alert_ids(temporal, closed_case) == [first.json()["alert_id"]]
    rows = {str(row.id): row for row in alert_rows(db_engine)}
    assert rows[later.json()["alert_id"]].case_id == later.json()["case_id"]


async def test_a_district_device_may_post_for_any_camera(api: httpx.AsyncClient, district: District) -> None:
    for merchant in ("m1", "m2"):
        response = await post(api, district.keys["district"], meta_for(district.cameras[merchant]))
        assert response.status_code == 201, response.text


def m1_parts(**parts: Any):
    return lambda d: ("m1", meta_for(d.cameras["m1"]), parts)


def _refusals() -> list[Any]:
    """(id, status, detail fragment, request builder(district) → (key name, meta, parts))."""

    def m1(**overrides: Any):
        return lambda d: ("m1", meta_for(d.cameras["m1"], **overrides), {})

    def raw(key: str | None, meta: Any, **parts: Any):
        return lambda d: (key, meta(d) if callable(meta) else meta, parts)

    return [
        pytest.param(401, "missing device key", raw(None, lambda d: meta_for(d.cameras["m1"])), id="401-no-key"),
        pytest.param(401, "unknown or revoked", raw("bogus", lambda d: meta_for(d.cameras["m1"])), id="401-unknown"),
        pytest.param(401, "unknown or revoked", raw("revoked", lambda d: meta_for(d.cameras["m1"])), id="401-revoked"),
        pytest.param(403, "does not belong", raw("m2", lambda d: meta_for(d.cameras["m1"])), id="403-foreign"),
        pytest.param(404, "no camera with id 999999", m1(camera_id=999_999), id="404-camera"),
        pytest.param(422, "meta.alert_type: unknown alert type 'no_apron'", m1(alert_type="no_apron"), id="422-type"),
        pytest.param(422, "meta: is not valid JSON", raw("m1", "{not json", snapshot=jpeg(1)), id="422-json"),
        pytest.param(422, "meta: must be a JSON object", raw("m1", "[1, 2]", snapshot=jpeg(1)), id="422-list"),
        pytest.param(422, "meta.score: is required", m1(score=None), id="422-no-score"),
        pytest.param(422, "meta.score: must be between 0 and 1", m1(score=1.5), id="422-score"),
        pytest.param(422, "meta.colour: unknown field", m1(colour="red"), id="422-unknown-field"),
        pytest.param(422, "meta.event_id", m1(event_id="has spaces"), id="422-event-id"),
        pytest.param(422, "meta.boxes[0].w", m1(boxes=[{"x": 1, "y": 2, "h": 3}]), id="422-box"),
        pytest.param(
            422, "meta.model.sha256", m1(model={"name": "m", "version": "1", "sha256": "xyz"}), id="422-model"
        ),
        pytest.param(
            422,
            "meta.captured_at: '2026-03-02T11:30:00' has no UTC offset",
            m1(captured_at="2026-03-02T11:30:00"),
            id="422-naive-time",
        ),
        pytest.param(422, "minutes ahead", m1(ago=-timedelta(minutes=15)), id="422-future"),
        pytest.param(422, "days old", m1(ago=timedelta(days=8)), id="422-too-old"),
        pytest.param(422, "part 'meta' is missing", raw("m1", None, snapshot=jpeg(1)), id="422-no-meta"),
        pytest.param(
            422,
            "part 'snapshot' is missing",
            raw("m1", lambda d: json.dumps(meta_for(d.cameras["m1"]))),
            id="422-no-snapshot",
        ),
        pytest.param(
            413, "snapshot is larger than the limit", m1_parts(snapshot=jpeg(1, MAX_PART_BYTES + 1)), id="413-snapshot"
        ),
        pytest.param(
            413,
            "the request body is larger than",
            m1_parts(snapshot=jpeg(1), clip=webm(1, 3 * MAX_PART_BYTES)),
            id="413-body",
        ),
        pytest.param(
            415,
            "snapshot must be a JPEG, PNG or WebP image; the bytes are video/webm",
            m1_parts(snapshot=webm(1), snapshot_type="video/webm"),
            id="415-webm-snapshot",
        ),
        pytest.param(
            415,
            "declared content type 'image/png' but the bytes are image/jpeg",
            m1_parts(snapshot=jpeg(1), snapshot_type="image/png"),
            id="415-mislabelled",
        ),
        pytest.param(
            415, "clip must be a WebM or MP4 video", m1_parts(clip=jpeg(2), clip_type="image/jpeg"), id="415-image-clip"
        ),
        pytest.param(
            415,
            "not an accepted evidence format",
            m1_parts(snapshot=b"%PDF-1.7\n" + bytes(200), snapshot_type="application/pdf"),
            id="415-pdf",
        ),
    ]


@pytest.mark.parametrize(("status", "detail", "build"), _refusals())
async def test_refusals_name_the_problem_and_write_nothing(
    api: httpx.AsyncClient,
    district: District,
    db_engine: Engine,
    minio_client: Minio,
    intake_settings: Settings,
    status: int,
    detail: str,
    build: Any,
) -> None:
    key_name, meta, parts = build(district)
    key = district.keys.get(key_name, key_name) if key_name is not None else None
    response = await post(api, key, meta, **parts)
    assert response.status_code == status, response.text
    assert detail in response.json()["detail"]
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert alert_rows(db_engine) == []
    assert evidence_count(db_engine) == 0
    assert stored_objects(minio_client, intake_settings.evidence_bucket) == []


async def test_a_body_that_is_not_multipart_is_refused(api: httpx.AsyncClient, district: District) -> None:
    response = await api.post(
        "/api/v1/alerts",
        headers={"Authorization": f"Bearer {district.keys['m1']}"},
        json=meta_for(district.cameras["m1"]),
    )
    assert response.status_code == 415
    assert "multipart/form-data" in response.json()["detail"]


async def test_png_snapshot_and_mp4_clip_are_accepted(api: httpx.AsyncClient, district: District) -> None:
    meta = meta_for(district.cameras["m1"])
    response = await post(
        api,
        district.keys["m1"],
        meta,
        snapshot=png(meta["event_id"]),
        snapshot_type="image/png",
        clip=mp4(meta["event_id"]),
        clip_type="application/octet-stream",
    )
    assert response.status_code == 201, response.text


async def test_intake_while_temporal_is_down_keeps_the_alert_and_a_retry_completes_it(
    intake_settings: Settings, district: District, temporal: Client, db_engine: Engine, minio_client: Minio
) -> None:
    meta = meta_for(district.cameras["m1"])
    parts = {"snapshot": jpeg(meta["event_id"]), "clip": webm(meta["event_id"])}
    down = intake_settings.model_copy(update={"temporal_address": f"127.0.0.1:{free_port()}"})  # nothing listens
    async with running_api(down) as http:
        refused = await post(http, district.keys["m1"], meta, **parts)
        assert refused.status_code == 503, refused.text
        assert int(refused.headers["Retry-After"]) > 0
        assert "post the same event_id again" in refused.json()["detail"]

    [pending] = alert_rows(db_engine)
    assert pending.delivered_at is None and pending.case_id is None
    assert evidence_count(db_engine) == 2
    assert len(stored_objects(minio_client, intake_settings.evidence_bucket)) == 2

    async with casework_worker(temporal, intake_settings), running_api(intake_settings) as http:
        delivered = await post(http, district.keys["m1"], meta, **parts)
        assert delivered.status_code == 201, delivered.text
        body = delivered.json()
        assert body == {"alert_id": str(pending.id), "case_id": f"case-{pending.id}", "merged": False}
        again = await post(http, district.keys["m1"], meta, **parts)
        assert (again.status_code, again.json()) == (200, body)
        assert await case_alert_ids(temporal, body["case_id"]) == [body["alert_id"]]
    [row] = alert_rows(db_engine)
    assert row.delivered_at is not None and row.case_id == body["case_id"]
    assert evidence_count(db_engine) == 2


async def test_system_sources_take_the_same_path_and_pending_alerts_can_be_swept(
    intake_settings: Settings, district: District, temporal: Client, db_engine: Engine
) -> None:
    """The vision worker calls AlertIntake directly; deliver_pending completes what an outage left behind."""
    from infra.clients import make_minio_client

    store = EvidenceStore(
        make_minio_client(intake_settings),
        db_engine,
        bucket=intake_settings.evidence_bucket,
        retention_days=1,
        max_bytes=MAX_PART_BYTES,
        presign_seconds=60,
    )

    def intake(connect: Any) -> AlertIntake:
        return AlertIntake(
            engine=db_engine,
            evidence_store=store,
            temporal_client_factory=connect,
            task_queue=intake_settings.temporal_task_queue,
        )

    async def unreachable() -> Client:
        raise RuntimeError("Failed client connect: connection refused")

    async def reachable() -> Client:
        return temporal

    meta = meta_for(district.cameras["m2"], alert_type="pest")
    submission = AlertSubmission(
        sender=AlertSender(source="system:vision", role="system"),
        meta=meta,
        snapshot=EvidenceUpload(content=jpeg(meta["event_id"])),
    )
    with pytest.raises(TemporalUnavailable) as raised:
        await intake(unreachable).receive(submission)
    [pending] = alert_rows(db_engine)
    assert raised.value.alert_id == pending.id and pending.delivered_at is None

    async with casework_worker(temporal, intake_settings):
        swept = await intake(reachable).deliver_pending(received_before=utcnow() + timedelta(seconds=1))
        assert [(result.alert_id, result.created) for result in swept] == [(pending.id, True)]
        repeat = await intake(reachable).receive(submission)
    assert (repeat.alert_id, repeat.case_id, repeat.created) == (pending.id, swept[0].case_id, False)
    [row] = alert_rows(db_engine)
    assert row.source == "system:vision" and row.delivered_at is not None


async def test_meta_may_also_come_as_a_file_part(api: httpx.AsyncClient, district: District) -> None:
    """``curl -F meta=@meta.json -F snapshot=@frame.jpg``: meta arrives with a filename."""
    meta = meta_for(district.cameras["m1"])
    files = {
        "meta": ("meta.json", json.dumps(meta).encode(), "application/json"),
        "snapshot": ("frame.jpg", jpeg(meta["event_id"]), "image/jpeg"),
    }
    response = await api.post("/api/v1/alerts", headers={"Authorization": f"Bearer {district.keys['m1']}"}, files=files)
    assert response.status_code == 201, response.text


# ----- The pure rules at their boundaries ----------------------------------------------------------------


def test_capture_time_window_boundaries() -> None:
    now = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    check_capture_time(captured_at=now + timedelta(minutes=10), received_at=now)
    check_capture_time(captured_at=now - timedelta(days=7), received_at=now)
    with pytest.raises(CapturedAtOutOfRange, match="minutes ahead"):
        check_capture_time(captured_at=now + timedelta(minutes=10, seconds=1), received_at=now)
    with pytest.raises(CapturedAtOutOfRange, match="days old"):
        check_capture_time(captured_at=now - timedelta(days=7, seconds=1), received_at=now)


def test_merge_window_boundaries() -> None:
    last = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    window = alert_type_info("no_hat").merge_window
    assert may_join_case(captured_at=last + window, case_last_captured_at=last, merge_window=window)
    assert not may_join_case(
        captured_at=last + window + timedelta(seconds=1), case_last_captured_at=last, merge_window=window
    )
    assert may_join_case(captured_at=last - timedelta(days=1), case_last_captured_at=last, merge_window=window)


def test_meta_is_normalised() -> None:
    meta = parse_alert_meta(
        {
            "event_id": "box-7:2026-12-01T09:00:00Z/1",
            "camera_id": 3,
            "alert_type": "smoking",
            "captured_at": "2026-12-01T17:00:00+08:00",
            "score": 1,
            "model": {"name": " smoke ", "version": "2", "sha256": "AB" * 32},
        }
    )
    assert meta.captured_at == datetime(2026, 12, 1, 9, 0, tzinfo=UTC) and meta.captured_at.tzinfo is UTC
    assert meta.model is not None and (meta.model.name, meta.model.sha256) == ("smoke", "ab" * 32)
    assert (meta.score, meta.boxes, meta.detail) == (1.0, (), None)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{"score": NaN}', "meta: is not valid JSON"),
        ("", "meta: is not valid JSON"),
        ('"x"', "meta: must be a JSON object, not a string"),
        ("x" * 70_000, "meta: is larger than"),
    ],
)
def test_meta_json_that_is_not_an_object_is_refused(text: str, problem: str) -> None:
    with pytest.raises(InvalidAlertMeta, match=problem):
        load_meta_json(text)
