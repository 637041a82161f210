"""The auditor's case page: the exported workflow history with its last verification, "Verify now" (CSRF-checked,
audited, replays against the running code) and the downloads of the history and its signed manifest (audited);
nobody but the auditor reaches them. The app talks to a real SeaweedFS bucket; Temporal stays down throughout,
which verification does not need."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from minio import Minio
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from domain.audit.models import AuditEvent, WorkflowHistoryExport
from infra.evidence_store import EvidenceStore
from infra.history_export import HistoryArchive
from infra.settings import Settings
from infra.transparency_key import ensure_signer_key, load_signer
from tests.api.conftest import T0, World, api_settings_for
from tests.fixtures.s3 import SeaweedInstance
from tests.web.conftest import csrf_of

pytestmark = pytest.mark.integration

CASE_ID = "case-m3-transferred"  # closed in the seeded district
RECORDED = Path(__file__).resolve().parents[1] / "replay" / "histories" / "rectified_now_reviewed.json"


@pytest.fixture
def api_settings(database_url: str, tmp_path: Path, seaweedfs: SeaweedInstance,
                 evidence_store: EvidenceStore) -> Settings:
    """The page tests' settings, with the evidence bucket on the test SeaweedFS (created with Object Lock)."""
    return api_settings_for(database_url, tmp_path, s3_endpoint=seaweedfs.endpoint,
                            s3_access_key=seaweedfs.access_key, s3_secret_key=seaweedfs.secret_key,
                            evidence_bucket=evidence_store.bucket)


@pytest.fixture
def exported(api_settings: Settings, db_engine: Engine, minio_client: Minio, world: World) -> WorkflowHistoryExport:
    """A recorded case history, exported for the seeded closed case with the installation's signer key."""
    ensure_signer_key(api_settings)
    archive = HistoryArchive(db_engine, minio_client, bucket=api_settings.evidence_bucket, retention_days=1,
                             signer=load_signer(api_settings))
    return archive.store(RECORDED.read_bytes(), workflow_id=CASE_ID, run_id="run-1",
                         workflow_type="AlertCaseWorkflow", case_id=CASE_ID, closed_at=T0)


@pytest.fixture
def auditor(browser_for: Callable[[str], TestClient]) -> TestClient:
    return browser_for("auditor")


def history_audit_rows(engine: Engine) -> list[AuditEvent]:
    with Session(engine) as session:
        statement = select(AuditEvent).where(col(AuditEvent.target) == f"workflow_history:{CASE_ID}")
        return list(session.exec(statement.order_by(col(AuditEvent.id))).all())


def test_the_case_page_shows_the_export_and_verify_now_replays_it(
    auditor: TestClient, exported: WorkflowHistoryExport, db_engine: Engine
) -> None:
    page = auditor.get(f"/audit/cases/{CASE_ID}")
    assert page.status_code == 200, page.text
    text = page.text
    assert "工作流历史" in text and exported.chain_head in text and "尚未校验" in text
    assert f"<dd>{exported.event_count}</dd>" in text and exported.code_version in text
    action = f"/audit/cases/{CASE_ID}/histories/{CASE_ID}/verify"
    assert f'action="{action}"' in text

    assert auditor.post(action, data={"csrf_token": "forged"}).status_code == 403
    response = auditor.post(action, data={"csrf_token": csrf_of(text)}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == f"/audit/cases/{CASE_ID}#workflow-history"
    verified = auditor.get(f"/audit/cases/{CASE_ID}").text
    assert "确定：现行代码作出相同决定" in verified and "<code>DETERMINISTIC</code>" in verified
    with Session(db_engine) as session:
        row = session.get(WorkflowHistoryExport, CASE_ID)
        assert row is not None and row.verified_at is not None and row.verification["verdict"] == "deterministic"
    [audited] = history_audit_rows(db_engine)
    assert audited.username == "auditor" and audited.detail["history"] == "verified"
    assert audited.action == "history_verified"
    assert audited.detail["verdict"] == "deterministic"


def test_the_auditor_downloads_the_history_and_its_signed_manifest(
    auditor: TestClient, exported: WorkflowHistoryExport, db_engine: Engine
) -> None:
    base = f"/audit/cases/{CASE_ID}/histories/{CASE_ID}"
    history = auditor.get(f"{base}/history.json")
    assert history.status_code == 200 and history.content == RECORDED.read_bytes()
    assert "attachment" in history.headers["content-disposition"]
    manifest = auditor.get(f"{base}/manifest.txt")
    assert manifest.status_code == 200 and manifest.text.startswith("sunshine-workflow-history/1\n")
    assert f"chain-head {exported.chain_head}\n" in manifest.text
    assert [(row.action, row.detail["history"]) for row in history_audit_rows(db_engine)] == [
        ("history_downloaded", "downloaded history.json"), ("history_downloaded", "downloaded manifest.txt")]
    assert auditor.get(f"{base}/other.bin").status_code == 404
    assert auditor.get(f"/audit/cases/case-m1/histories/{CASE_ID}/history.json").status_code == 404
    assert auditor.get(f"/audit/cases/{CASE_ID}/histories/handoff-{CASE_ID}/history.json").status_code == 404


def test_an_open_case_says_it_is_exported_once_closed(auditor: TestClient, world: World) -> None:
    text = auditor.get("/audit/cases/case-m1").text
    assert "结案后导出。" in text and "/histories/" not in text


def test_nobody_else_reaches_the_history(
    browser_for: Callable[[str], TestClient], exported: WorkflowHistoryExport, db_engine: Engine
) -> None:
    base = f"/audit/cases/{CASE_ID}/histories/{CASE_ID}"
    for username in ("officer1", "command", "brigade", "admin"):
        client = browser_for(username)
        token = csrf_of(client.get("/account").text)
        assert client.get(f"{base}/history.json").status_code == 403, username
        assert client.get(f"{base}/manifest.txt").status_code == 403, username
        assert client.post(f"{base}/verify", data={"csrf_token": token}).status_code == 403, username
    assert history_audit_rows(db_engine) == []
    with Session(db_engine) as session:
        row = session.get(WorkflowHistoryExport, CASE_ID)
        assert row is not None and row.verified_at is None
