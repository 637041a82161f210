"""POST /api/v1/cases/{case_id}/evidence-bundle on the real database and object store: the ZIP verifies offline
against the published key, the export is in the custody log (with its 事由) and the audit log, a changed byte
fails, and only the people who hand evidence on may export, within their scope."""

from __future__ import annotations

import io
import uuid
import zipfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from api.app import create_app
from domain.audit.models import AuditEvent
from domain.cases.models import Alert
from domain.evidence.models import CollectionMethod, CustodyEvent
from domain.transparency.bundle import verify_bundle
from infra.evidence_store import EvidenceStore
from infra.settings import Settings
from tests.api.conftest import World, api_settings_for, bearer_for
from tests.fixtures.s3 import SeaweedInstance
from tests.integration.test_evidence_store import jpeg, mp4

pytestmark = pytest.mark.integration


@pytest.fixture
def bundle_settings(database_url: str, tmp_path: Path, seaweedfs: SeaweedInstance,
                    evidence_store: EvidenceStore) -> Settings:
    return api_settings_for(database_url, tmp_path, s3_endpoint=seaweedfs.endpoint,
                            s3_access_key=seaweedfs.access_key, s3_secret_key=seaweedfs.secret_key,
                            evidence_bucket=evidence_store.bucket)


@pytest.fixture
def bundle_api(bundle_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(bundle_settings)) as client:
        yield client


def add_alert_with_evidence(engine: Engine, store: EvidenceStore, world: World, case_id: str, merchant: str) -> None:
    snapshot = store.put(jpeg(4000, seed=hash(case_id) % 1000), collection_method=CollectionMethod.ai_capture,
                         actor="system:vision", captured_at=datetime(2026, 11, 29, 1, 0, tzinfo=UTC),
                         source_meta={"camera_id": world.cameras[merchant].id,
                                      "model": {"name": "hats", "version": "1", "sha256": "a" * 64}})
    clip = store.put(mp4(50_000, seed=7), collection_method=CollectionMethod.ai_capture, actor="system:vision")
    shop, camera = world.merchants[merchant], world.cameras[merchant]
    assert shop.id is not None and camera.id is not None
    with Session(engine) as session:
        session.add(Alert(id=uuid.uuid4(), source="system:vision", event_id=f"evt-{case_id}", camera_id=camera.id,
                          merchant_id=shop.id, street_office_id=shop.street_office_id, alert_type="no_hat",
                          captured_at=datetime(2026, 11, 29, 1, 0, tzinfo=UTC), score=0.9,
                          snapshot_evidence_id=snapshot.evidence_id, clip_evidence_id=clip.evidence_id,
                          case_id=case_id))
        session.commit()


def headers(settings: Settings, world: World) -> Callable[[str], dict[str, str]]:
    return lambda username: bearer_for(settings, world.users[username])


def test_a_case_bundle_verifies_offline_and_the_export_is_logged(
    bundle_api: TestClient, bundle_settings: Settings, world: World, db_engine: Engine,
    evidence_store: EvidenceStore, tmp_path: Path,
) -> None:
    add_alert_with_evidence(db_engine, evidence_store, world, "case-m1", "m1")
    as_user = headers(bundle_settings, world)
    response = bundle_api.post("/api/v1/cases/case-m1/evidence-bundle", json={"reason": "移送执法支队立案调查"},
                               headers=as_user("officer1"))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    assert 'filename="evidence-case-m1-' in response.headers["content-disposition"]
    published_key = bundle_api.get("/api/v1/transparency/key").text.strip()

    report = verify_bundle(io.BytesIO(response.content), trusted_key=published_key)
    assert report.ok, [item for item in report.items if not item.ok]
    names = zipfile.ZipFile(io.BytesIO(response.content)).namelist()
    assert sum(name.startswith("evidence/") for name in names) == 2 and "提取笔录.html" in names

    with Session(db_engine) as session:
        exported = session.exec(select(CustodyEvent).where(col(CustodyEvent.action) == "exported")).all()
        audit = session.exec(select(AuditEvent).where(col(AuditEvent.action) == "evidence_exported")).all()
    assert len(exported) == 2 and {event.reason for event in exported} == {"移送执法支队立案调查"}
    assert {event.actor for event in exported} == {"user:officer1"}
    assert [(a.username, a.target, a.reason) for a in audit] == [("officer1", "case-m1", "移送执法支队立案调查")]

    # One changed byte in the clip, and the verifier names the file.
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(io.BytesIO(response.content)) as original, zipfile.ZipFile(tampered, "w") as copy:
        for info in original.infolist():
            data = original.read(info)
            if info.filename.endswith(".mp4"):
                data = data[:100] + bytes([data[100] ^ 1]) + data[101:]
            copy.writestr(info, data)
    failed = verify_bundle(tampered, trusted_key=published_key)
    assert not failed.ok and all(item.name.endswith(".mp4") for item in failed.failures)


def test_an_export_needs_a_reason_and_the_right_role_and_scope(
    bundle_api: TestClient, bundle_settings: Settings, world: World, db_engine: Engine,
    evidence_store: EvidenceStore,
) -> None:
    add_alert_with_evidence(db_engine, evidence_store, world, "case-m1", "m1")
    as_user = headers(bundle_settings, world)
    path = "/api/v1/cases/case-m1/evidence-bundle"
    missing = bundle_api.post(path, json={"reason": "  "}, headers=as_user("officer1"))
    assert missing.status_code == 422 and "reason" in missing.text
    assert bundle_api.post(path, json={"reason": "查看"}, headers=as_user("merchant1")).status_code == 403
    assert bundle_api.post(path, json={"reason": "查看"}, headers=as_user("admin")).status_code == 403
    other_street = bundle_api.post(path, json={"reason": "查看"}, headers=as_user("officer2"))
    assert other_street.status_code == 404
    assert bundle_api.post(path, json={"reason": "查看"}).status_code == 401
    with Session(db_engine) as session:
        assert session.exec(select(CustodyEvent).where(col(CustodyEvent.action) == "exported")).all() == []
    assert bundle_api.post(path, json={"reason": "审计抽查"}, headers=as_user("auditor")).status_code == 200


def test_the_case_page_downloads_the_bundle_with_a_reason(
    bundle_api: TestClient, world: World, db_engine: Engine, evidence_store: EvidenceStore,
) -> None:
    from tests.web.conftest import csrf_of, sign_in

    add_alert_with_evidence(db_engine, evidence_store, world, "case-m1", "m1")
    officer = sign_in(TestClient(bundle_api.app, base_url="http://testserver"), "officer1")
    page = officer.get("/cases/case-m1")
    assert 'action="/cases/case-m1/evidence-bundle"' in page.text
    without_reason = officer.post("/cases/case-m1/evidence-bundle", data={"csrf_token": csrf_of(page.text)})
    assert without_reason.status_code == 422 and "事由" in without_reason.text
    assert officer.post("/cases/case-m1/evidence-bundle", data={"reason": "核查"}).status_code == 403  # no CSRF token
    download = officer.post("/cases/case-m1/evidence-bundle",
                            data={"csrf_token": csrf_of(page.text), "reason": "案件核查"})
    assert download.status_code == 200 and download.headers["content-type"] == "application/zip"
    assert verify_bundle(io.BytesIO(download.content)).ok
    officer.close()


def test_the_auditor_and_the_brigade_download_it_from_their_pages(
    bundle_api: TestClient, world: World, db_engine: Engine, evidence_store: EvidenceStore,
) -> None:
    from tests.web.conftest import csrf_of, sign_in

    add_alert_with_evidence(db_engine, evidence_store, world, "case-m3-transferred", "m3")
    auditor = sign_in(TestClient(bundle_api.app, base_url="http://testserver"), "auditor")
    page = auditor.get("/audit/cases/case-m3-transferred")
    assert 'action="/audit/cases/case-m3-transferred/evidence-bundle"' in page.text
    download = auditor.post("/audit/cases/case-m3-transferred/evidence-bundle",
                            data={"csrf_token": csrf_of(page.text), "reason": "审计抽查"})
    assert download.status_code == 200 and verify_bundle(io.BytesIO(download.content)).ok
    assert auditor.post("/audit/cases/nope/evidence-bundle",
                        data={"csrf_token": csrf_of(page.text), "reason": "x"}).status_code == 404

    brigade = sign_in(TestClient(bundle_api.app, base_url="http://testserver"), "brigade")
    page = brigade.get("/brigade/handoffs/handoff-case-m3-transferred")
    assert 'action="/brigade/handoffs/handoff-case-m3-transferred/evidence-bundle"' in page.text
    download = brigade.post("/brigade/handoffs/handoff-case-m3-transferred/evidence-bundle",
                            data={"csrf_token": csrf_of(page.text), "reason": "立案调查"})
    assert download.status_code == 200 and verify_bundle(io.BytesIO(download.content)).ok
    assert brigade.post("/audit/cases/case-m3-transferred/evidence-bundle",
                        data={"csrf_token": csrf_of(page.text), "reason": "x"}).status_code == 403
    for client in (auditor, brigade):
        client.close()


def test_a_transfer_to_the_brigade_enters_every_item_in_the_custody_log_once(
    world: World, db_engine: Engine, evidence_store: EvidenceStore,
) -> None:
    from activities.cases import record_transfer_custody

    add_alert_with_evidence(db_engine, evidence_store, world, "case-m3-transferred", "m3")
    with Session(db_engine) as session:
        args = {"case_id": "case-m3-transferred", "handoff_id": "handoff-case-m3-transferred",
                "transferred_by": "officer2", "reason": "逾期未整改"}
        assert record_transfer_custody(session, **args) == 2
        assert record_transfer_custody(session, **args) == 0  # the projection applied again
        session.commit()
        rows = session.exec(select(CustodyEvent).where(col(CustodyEvent.action) == "transferred")).all()
    assert {(row.actor, row.unit, row.reason, row.detail["to"]) for row in rows} == {
        ("user:officer2", "machang", "逾期未整改", "brigade")}
