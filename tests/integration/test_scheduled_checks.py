"""The daily certificate check and the pending-alert sweep on the real stack: PostgreSQL, SeaweedFS (Object
Lock), a Temporal dev server and the casework worker as ``infra.worker`` builds it. Certificate alerts go
through AlertIntake (the path of POST /api/v1/alerts): one alert per certificate problem however often the
check runs, cases in the projection, the notice card stored as evidence with both digests. The schedules exist
after ``ensure_schedules``, which may run any number of times."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select
from temporalio.client import Client, ScheduleActionStartWorkflow, ScheduleOverlapPolicy, ScheduleRange
from temporalio.worker import Worker

from activities.scheduled_checks import RaiseCertificateAlertsInput, ScheduledCheckActivities
from domain.alerts.taxonomy import AlertType
from domain.cases.models import Alert, AlertCase
from domain.certificates.expiry import certificate_event_id
from domain.certificates.notice_image import NOTICE_KEYWORD, NoticeFacts, read_png_text, render_notice_png
from domain.evidence.models import Evidence
from domain.evidence.refs import EvidenceRef
from domain.merchants.models import Camera, Certificate, CertificateKind, Merchant, StreetOffice
from infra.evidence_store import EvidenceStore
from infra.intake import AlertIntake
from infra.schedules import ensure_schedules
from infra.settings import Settings
from infra.worker import build_casework_worker
from tests.fixtures.database import truncate_all
from tests.fixtures.s3 import SeaweedInstance
from workflows.scheduled_checks import (
    DailyCertificateCheckInput,
    DailyCertificateCheckWorkflow,
    PendingAlertSweepInput,
    PendingAlertSweepWorkflow,
)

pytestmark = pytest.mark.integration

BEIJING = timezone(timedelta(hours=8))
SENDER = "system:certificate-check"
DEADLINE_SECONDS = 30.0


def beijing_today() -> date:
    return datetime.now(BEIJING).date()


# ----- The world: a shop with cameras and certificate problems, a shop without a camera -------------------


@dataclass
class Shops:
    today: date
    merchant_id: int
    credit_code: str
    notice_camera_id: int  # the first *enabled* camera (a disabled one has a lower id)
    no_camera_credit_code: str
    certificates: dict[str, Certificate] = field(default_factory=dict)

    def expected_event_ids(self) -> set[str]:
        problems = {"health_lapsed": AlertType.health_cert_expired, "health_lapsed_2": AlertType.health_cert_expired,
                    "food_licence_expiring": AlertType.licence_expiring}
        return {certificate_event_id(self.certificates[key].id or 0, alert_type,
                                     self.certificates[key].valid_until or date.min)
                for key, alert_type in problems.items()}


@pytest.fixture
def shops(db_engine: Engine) -> Iterator[Shops]:
    today = beijing_today()
    tag = uuid.uuid4().hex[:6].upper()
    with Session(db_engine, expire_on_commit=False) as session:
        office = StreetOffice(code=f"so{tag}", name="友谊路街市场监管所")
        session.add(office)
        session.flush()
        assert office.id is not None
        shop = Merchant(credit_code=f"92120103MA{tag}1A"[:18], name="津味小馆", address="河西区友谊路1号",
                        street_office_id=office.id)
        bare = Merchant(credit_code=f"91120103MA{tag}2B"[:18], name="无摄像头小吃", address="河西区友谊路2号",
                        street_office_id=office.id)
        session.add_all([shop, bare])
        session.flush()
        assert shop.id is not None and bare.id is not None
        disabled = Camera(merchant_id=shop.id, name="旧仓储", area="storage", stream_url="rtsp://x/0", enabled=False)
        session.add(disabled)
        session.flush()
        enabled = Camera(merchant_id=shop.id, name="后厨烹饪区", area="cooking", stream_url="rtsp://x/1")
        later = Camera(merchant_id=shop.id, name="洗消间", area="washing", stream_url="rtsp://x/2")
        session.add_all([enabled, later])
        session.flush()
        assert enabled.id is not None

        def add(key: str, merchant_id: int, kind: CertificateKind, days: int | None, *, holder: str | None = None,
                number: str | None = None) -> None:
            until = None if days is None else today + timedelta(days=days)
            certificate = Certificate(
                merchant_id=merchant_id, kind=kind.value, number=number or f"{key.upper()}-{tag}",
                holder_name=holder, valid_from=(until or today) - timedelta(days=365), valid_until=until,
            )
            session.add(certificate)
            shops.certificates[key] = certificate

        shops = Shops(today=today, merchant_id=shop.id, credit_code=shop.credit_code, notice_camera_id=enabled.id,
                      no_camera_credit_code=bare.credit_code)
        add("business_licence", shop.id, CertificateKind.business_licence, None, number=shop.credit_code)
        add("food_licence_expiring", shop.id, CertificateKind.food_business_licence, 12, number=f"JY1120103{tag}")
        add("health_lapsed", shop.id, CertificateKind.health_certificate, -3, holder="王芳")
        add("health_lapsed_2", shop.id, CertificateKind.health_certificate, -1, holder="李雷")
        add("health_valid", shop.id, CertificateKind.health_certificate, 200, holder="韩梅梅")
        add("bare_licence_lapsed", bare.id, CertificateKind.vendor_registration, -5)
        session.commit()
    yield shops
    truncate_all(db_engine)


# ----- The stack: settings on the fixtures' components, the casework worker ------------------------------


@pytest.fixture
def settings(database_url: str, temporal_dev_server: str, seaweedfs: SeaweedInstance,
             evidence_store: EvidenceStore, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        temporal_address=temporal_dev_server,
        temporal_task_queue=f"casework-checks-{uuid.uuid4().hex[:8]}",
        s3_endpoint=seaweedfs.endpoint,
        s3_access_key=seaweedfs.access_key,
        s3_secret_key=seaweedfs.secret_key,
        evidence_bucket=evidence_store.bucket,
        evidence_retention_days=1,
        var_dir=tmp_path / "var",
    )


@pytest.fixture
async def temporal(temporal_dev_server: str) -> Client:
    return await Client.connect(temporal_dev_server)


@pytest.fixture
async def worker(temporal: Client, settings: Settings) -> AsyncIterator[Worker]:
    async with build_casework_worker(temporal, settings) as running:
        yield running


async def run_check(temporal: Client, settings: Settings, as_of: date | None) -> Any:
    return await temporal.execute_workflow(
        DailyCertificateCheckWorkflow.run,
        DailyCertificateCheckInput(as_of_date=None if as_of is None else as_of.isoformat()),
        id=f"test-certificate-check-{uuid.uuid4().hex[:8]}",
        task_queue=settings.temporal_task_queue,
    )


async def eventually(check: Callable[[], Any], what: str, timeout: float = DEADLINE_SECONDS) -> Any:
    """Poll until ``check()`` is truthy; fail after the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not (result := check()):
        if loop.time() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.05)
    return result


def certificate_alerts(engine: Engine) -> list[Alert]:
    with Session(engine) as session:
        return list(session.exec(select(Alert).where(Alert.source == SENDER)).all())


def cases(engine: Engine, case_ids: set[str]) -> list[AlertCase]:
    with Session(engine) as session:
        return list(session.exec(select(AlertCase).where(col(AlertCase.case_id).in_(case_ids))).all())


def evidence_rows(engine: Engine) -> list[Evidence]:
    with Session(engine) as session:
        return list(session.exec(select(Evidence)).all())


# ----- Tests -----------------------------------------------------------------------------------------------


async def test_the_daily_check_raises_one_alert_per_problem_however_often_it_runs(
    worker: Worker, temporal: Client, settings: Settings, shops: Shops, db_engine: Engine,
    evidence_store: EvidenceStore,
) -> None:
    first = await run_check(temporal, settings, shops.today)
    assert (first.raised, first.merged, first.already_known, first.pending) == (2, 1, 0, 0)
    assert (first.skipped_without_camera, first.merchants_without_camera) == (1, [shops.no_camera_credit_code])
    assert first.as_of_date == shops.today.isoformat()

    again = await run_check(temporal, settings, shops.today)
    later = await run_check(temporal, settings, shops.today + timedelta(days=1))  # tomorrow: the same problems
    for repeat in (again, later):
        assert (repeat.raised, repeat.merged, repeat.already_known, repeat.skipped_without_camera) == (0, 0, 3, 1)

    alerts = certificate_alerts(db_engine)
    assert {alert.event_id for alert in alerts} == shops.expected_event_ids()
    assert all(alert.delivered_at is not None and alert.case_id for alert in alerts)
    assert {alert.camera_id for alert in alerts} == {shops.notice_camera_id}
    assert {alert.merchant_id for alert in alerts} == {shops.merchant_id}
    by_type: dict[str, list[Alert]] = {}
    for alert in alerts:
        by_type.setdefault(alert.alert_type, []).append(alert)
    assert sorted((t, len(a)) for t, a in by_type.items()) == [("health_cert_expired", 2), ("licence_expiring", 1)]
    health_cases = {alert.case_id for alert in by_type["health_cert_expired"]}
    assert len(health_cases) == 1, "two lapsed health certificates of one shop within 7 days share a case"
    assert sorted(alert.merged for alert in by_type["health_cert_expired"]) == [False, True]
    licence = by_type["licence_expiring"][0]
    assert licence.detail["certificate_number"] == shops.certificates["food_licence_expiring"].number
    assert licence.detail["days_left"] == 12 and licence.score == 1.0

    # The cases are in the projection (the queue people see), opened by the case workflow.
    case_ids = {alert.case_id for alert in alerts if alert.case_id}
    rows = await eventually(lambda: (found := cases(db_engine, case_ids)) and len(found) == 2 and found,
                            "both certificate cases projected")
    assert {(row.alert_type, row.category, row.camera_id) for row in rows} == {
        ("health_cert_expired", "certificate", shops.notice_camera_id),
        ("licence_expiring", "certificate", shops.notice_camera_id),
    }
    [health_case] = health_cases
    await eventually(lambda: cases(db_engine, {health_case})[0].alert_count == 2, "the merged alert projected")

    # The notice card is the snapshot: stored once per problem, with both digests, exactly the rendered bytes.
    evidence = {row.id: row for row in evidence_rows(db_engine)}
    assert len(evidence) == 3  # the repeated checks stored nothing more
    for alert in alerts:
        record = evidence[alert.snapshot_evidence_id]
        assert record.content_type == "image/png" and record.collection_method == "platform_extraction"
        assert len(record.sha256) == 64 and len(record.sm3) == 64
        with evidence_store.open(EvidenceRef.from_record(record)) as reader:
            stored = b"".join(reader)
        assert hashlib.sha256(stored).hexdigest() == record.sha256
        assert hashlib.new("sm3", stored).hexdigest() == record.sm3
        facts = json.loads(read_png_text(stored)[NOTICE_KEYWORD])
        assert facts["merchant_credit_code"] == shops.credit_code and facts["checked_on"] == shops.today.isoformat()
        certificate = next(c for c in shops.certificates.values() if c.number == facts["certificate_number"])
        assert stored == render_notice_png(NoticeFacts(
            alert_type=AlertType(alert.alert_type), merchant_credit_code=shops.credit_code,
            certificate_kind=CertificateKind(certificate.kind), certificate_number=certificate.number,
            holder_name=certificate.holder_name, valid_until=certificate.valid_until or date.min,
            checked_on=shops.today,
        ))

    # The case carries the evidence references with both digests.
    state = await temporal.get_workflow_handle(health_case).query("get_state", result_type=dict)
    snapshots = [alert["snapshot"] for alert in state["alerts"]]
    assert len(snapshots) == 2
    assert {(s["sha256"], s["sm3"]) for s in snapshots} == {
        (evidence[a.snapshot_evidence_id].sha256, evidence[a.snapshot_evidence_id].sm3)
        for a in by_type["health_cert_expired"]
    }


async def test_alerts_stored_while_temporal_is_down_are_delivered_by_the_sweep(
    worker: Worker, temporal: Client, settings: Settings, shops: Shops, db_engine: Engine,
    evidence_store: EvidenceStore,
) -> None:
    async def unreachable() -> Client:
        raise RuntimeError("Failed client connect: connection refused")

    down = AlertIntake(engine=db_engine, evidence_store=evidence_store, temporal_client_factory=unreachable,
                       task_queue=settings.temporal_task_queue)
    checks = ScheduledCheckActivities(lambda: Session(db_engine), down)
    stored = await checks.raise_certificate_alerts(RaiseCertificateAlertsInput(as_of_date=shops.today.isoformat()))
    assert (stored.pending, stored.raised, stored.merged, stored.already_known) == (3, 0, 0, 0)
    assert stored.skipped_without_camera == 1
    assert all(alert.delivered_at is None for alert in certificate_alerts(db_engine))
    assert len(evidence_rows(db_engine)) == 3  # evidence first: kept for the retry

    swept = await temporal.execute_workflow(
        PendingAlertSweepWorkflow.run, PendingAlertSweepInput(older_than_seconds=0),
        id=f"test-sweep-{uuid.uuid4().hex[:8]}", task_queue=settings.temporal_task_queue,
    )
    assert (swept.delivered, swept.still_pending) == (3, 0)
    assert all(alert.delivered_at is not None for alert in certificate_alerts(db_engine))

    again = await run_check(temporal, settings, shops.today)
    assert (again.raised, again.merged, again.already_known, again.pending) == (0, 0, 3, 0)
    nothing = await temporal.execute_workflow(
        PendingAlertSweepWorkflow.run, PendingAlertSweepInput(older_than_seconds=0),
        id=f"test-sweep-{uuid.uuid4().hex[:8]}", task_queue=settings.temporal_task_queue,
    )
    assert (nothing.delivered, nothing.still_pending) == (0, 0)
    assert len(evidence_rows(db_engine)) == 3


async def test_the_schedules_exist_idempotently_and_the_daily_one_runs_the_check(
    worker: Worker, temporal: Client, settings: Settings, shops: Shops, db_engine: Engine
) -> None:
    prefix = f"test-{uuid.uuid4().hex[:8]}-"
    ids = await ensure_schedules(temporal, settings.temporal_task_queue, id_prefix=prefix)
    try:
        assert await ensure_schedules(temporal, settings.temporal_task_queue, id_prefix=prefix) == ids
        check_id, sweep_id = f"{prefix}certificate-check-daily", f"{prefix}pending-alert-sweep"
        assert sorted(ids) == sorted([check_id, sweep_id, f"{prefix}history-export-recent",
                                      f"{prefix}history-export-nightly", f"{prefix}transparency-checkpoint"])

        check = await temporal.get_schedule_handle(check_id).describe()
        assert check.schedule.spec.time_zone_name == "Asia/Shanghai"
        [calendar] = check.schedule.spec.calendars
        assert (list(calendar.hour), list(calendar.minute)) == ([ScheduleRange(6)], [ScheduleRange(0)])
        next_run = check.info.next_action_times[0].astimezone(BEIJING)
        assert (next_run.hour, next_run.minute, next_run.second) == (6, 0, 0)
        assert check.schedule.policy.overlap == ScheduleOverlapPolicy.SKIP
        action = check.schedule.action
        assert isinstance(action, ScheduleActionStartWorkflow)
        assert (action.workflow, action.task_queue) == ("DailyCertificateCheckWorkflow", settings.temporal_task_queue)

        sweep = await temporal.get_schedule_handle(sweep_id).describe()
        assert [interval.every for interval in sweep.schedule.spec.intervals] == [timedelta(minutes=5)]
        sweep_action = sweep.schedule.action
        assert isinstance(sweep_action, ScheduleActionStartWorkflow)
        assert sweep_action.workflow == "PendingAlertSweepWorkflow"

        # An operator's pause survives the next worker start; a changed definition is applied.
        await temporal.get_schedule_handle(sweep_id).pause(note="维护中")
        await ensure_schedules(temporal, "another-queue", id_prefix=prefix)
        paused = await temporal.get_schedule_handle(sweep_id).describe()
        assert paused.schedule.state.paused and paused.schedule.state.note == "维护中"
        moved = paused.schedule.action
        assert isinstance(moved, ScheduleActionStartWorkflow) and moved.task_queue == "another-queue"
        await ensure_schedules(temporal, settings.temporal_task_queue, id_prefix=prefix)

        # Triggered now, the daily schedule starts the check for today's Beijing date on the worker.
        await temporal.get_schedule_handle(check_id).trigger()

        async def started() -> str | None:
            actions = (await temporal.get_schedule_handle(check_id).describe()).info.recent_actions
            return actions[0].action.workflow_id if actions else None

        loop = asyncio.get_running_loop()
        deadline = loop.time() + DEADLINE_SECONDS
        while (workflow_id := await started()) is None:
            assert loop.time() < deadline, "the triggered schedule started no workflow"
            await asyncio.sleep(0.05)
        assert workflow_id.startswith(check_id)
        result = await temporal.get_workflow_handle(workflow_id).result()
        assert result["as_of_date"] in {shops.today.isoformat(), beijing_today().isoformat()}
        assert (result["raised"], result["merged"], result["skipped_without_camera"]) == (2, 1, 1)
        assert len(certificate_alerts(db_engine)) == 3
    finally:
        for schedule_id in ids:
            await temporal.get_schedule_handle(schedule_id).delete()
