"""Workflow histories for auditors, on the Temporal dev server (visibility), SeaweedFS and PostgreSQL.

One real AlertCaseWorkflow is driven to closure (verified as rectified, review approved) on a casework worker with
a known build id; the history-export workflow (the schedules' pass) exports it. Then:

- the stored history and manifest are locked (COMPLIANCE, undeletable), the row names the build id and code
  version, a second export changes nothing, and verification + replay say DETERMINISTIC;
- an edited event (the merchant's name in the verify update) is named by its event id; an altered manifest or a
  manifest signed by another key is caught;
- a change behind ``workflow.patched`` replays the exported history; the same change without it diverges;
- ``sunshine audit replay --history --manifest --key`` works offline, exit 0 / 1 / 2.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from minio import Minio
from minio.commonconfig import COMPLIANCE
from minio.error import S3Error
from sqlalchemy import Engine
from sqlmodel import Session
from temporalio.client import Client, ScheduleActionStartWorkflow, ScheduleRange
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.history_export import ExportClosedOutput, closed_executions_query
from domain.audit.history_chain import HistoryManifest, history_events, verify_history
from domain.audit.history_timeline import timeline
from domain.audit.models import WorkflowHistoryExport
from domain.transparency.signed_note import NoteSigner, NoteVerifier, generate_signer_key
from infra import history_replay
from infra.cli import main as sunshine
from infra.code_version import code_version
from infra.evidence_store import EvidenceStore
from infra.history_export import HistoryArchive, HistoryExporter
from infra.history_replay import Verdict, check_and_replay
from infra.schedules import ensure_schedules
from infra.settings import Settings, get_settings
from infra.transparency_key import ensure_signer_key
from infra.worker import casework_registrations
from tests.fixtures.database import truncate_all
from tests.fixtures.s3 import SeaweedInstance
from tests.workflows.conftest import Casework, evidence, export_history, seed_world
from tests.workflows.history_variants import PatchedAlertCaseWorkflow, UnpatchedAlertCaseWorkflow
from workflows.alert_case import (
    AlertCaseWorkflow,
    CaseStatus,
    ReviewDecision,
    ReviewInput,
    VerifyChoice,
    VerifyInput,
)
from workflows.history_export import HistoryExportInput, HistoryExportWorkflow

pytestmark = pytest.mark.integration

DEADLINE_SECONDS = 30.0
BEIJING = timezone(timedelta(hours=8))


@dataclass
class ClosedCase:
    client: Client
    minio: Minio
    settings: Settings  # where the signer key lies, the bucket and the servers: what the command line reads
    archive: HistoryArchive
    exporter: HistoryExporter
    case_id: str
    build_id: str
    merchant: str
    officer: str
    recent_pass: ExportClosedOutput
    nightly_pass: ExportClosedOutput
    record: WorkflowHistoryExport
    history: bytes
    manifest_note: str


@pytest.fixture(scope="module")
async def closed_case(
    temporal_dev_server: str, database_url: str, db_engine: Engine, seaweedfs: SeaweedInstance, minio_client: Minio,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[ClosedCase]:
    """One case run to closure on its own task queue and exported by the history-export workflow."""
    with Session(db_engine) as session:
        world = seed_world(session)
    settings = Settings(
        database_url=database_url, temporal_address=temporal_dev_server, s3_endpoint=seaweedfs.endpoint,
        s3_access_key=seaweedfs.access_key, s3_secret_key=seaweedfs.secret_key,
        evidence_bucket=f"history-test-{secrets.token_hex(6)}", evidence_retention_days=1,
        var_dir=tmp_path_factory.mktemp("history-var"),
    )
    EvidenceStore(minio_client, db_engine, bucket=settings.evidence_bucket, retention_days=1, max_bytes=1 << 20,
                  presign_seconds=60).ensure_bucket()
    ensure_signer_key(settings)
    archive = HistoryArchive.from_settings(settings, db_engine, minio=minio_client)
    client = await Client.connect(temporal_dev_server)
    exporter = HistoryExporter(client, archive)
    task_queue = f"casework-{uuid.uuid4().hex[:8]}"
    build_id = f"test-build-{secrets.token_hex(4)}"
    workflows, activities = casework_registrations(client, lambda: Session(db_engine), history_exporter=exporter)
    casework = Casework(env=WorkflowEnvironment.from_client(client), engine=db_engine, world=world,
                        task_queue=task_queue)
    worker = Worker(client, task_queue=task_queue, workflows=workflows, activities=activities,
                    activity_executor=ThreadPoolExecutor(max_workers=8), max_concurrent_activities=8,
                    build_id=build_id)
    try:
        async with worker:
            handle, _ = await casework.open_case("no_hat")
            verified = await handle.execute_update(AlertCaseWorkflow.verify, VerifyInput(
                actor=world.merchant, choice=VerifyChoice.rectified_now, note="已戴好帽子",
                rectification_photo=evidence("fixed-photo")))
            assert verified.status == CaseStatus.awaiting_review
            await handle.execute_update(AlertCaseWorkflow.review, ReviewInput(
                actor=world.officer, decision=ReviewDecision.approve_rectification, note="已整改", harm="none"))
            await casework.closed(handle)
            await _visible_as_closed(client, task_queue)
            recent_handle = await client.start_workflow(
                HistoryExportWorkflow.run, HistoryExportInput(closed_within_minutes=60, task_queue=task_queue),
                id=f"test-history-export-{uuid.uuid4().hex[:8]}", task_queue=task_queue,
            )
            recent_pass = await recent_handle.result()
            await export_history(recent_handle, "history_export_recent")
            nightly_pass = await client.execute_workflow(
                HistoryExportWorkflow.run, HistoryExportInput(closed_within_minutes=None, task_queue=task_queue),
                id=f"test-history-export-{uuid.uuid4().hex[:8]}", task_queue=task_queue,
            )
        case_id = casework.case_ids[0]
        stored = archive.load(case_id)
        yield ClosedCase(
            client=client, minio=minio_client, settings=settings, archive=archive, exporter=exporter, case_id=case_id,
            build_id=build_id, merchant=world.merchant.username, officer=world.officer.username,
            recent_pass=recent_pass, nightly_pass=nightly_pass, record=stored.record, history=stored.history,
            manifest_note=stored.manifest_note,
        )
    finally:
        await casework.terminate_leftovers()
        truncate_all(db_engine)


async def _visible_as_closed(client: Client, task_queue: str) -> None:
    """Visibility follows the close by milliseconds; the export pass lists through it."""
    query = closed_executions_query(closed_after=None, task_queue=task_queue)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE_SECONDS
    while (await client.count_workflows(query)).count < 1:
        assert loop.time() < deadline, "the closed case never became visible"
        await asyncio.sleep(0.05)


def edited_update(history: bytes, update_name: str, edit: Any) -> tuple[bytes, int, int]:
    """The history with the first accepted ``update_name``'s argument changed by ``edit``; and that event's id
    and index."""
    document = json.loads(history)
    for index, event in enumerate(document["events"]):
        accepted = event.get("workflowExecutionUpdateAcceptedEventAttributes")
        if accepted and accepted["acceptedRequest"]["input"]["name"] == update_name:
            payload = accepted["acceptedRequest"]["input"]["args"]["payloads"][0]
            argument = json.loads(base64.b64decode(payload["data"]))
            edit(argument)
            payload["data"] = base64.b64encode(json.dumps(argument, separators=(",", ":")).encode()).decode()
            return json.dumps(document, indent=2).encode(), int(event["eventId"]), index
    raise AssertionError(f"no accepted {update_name} update in the history")


# ---------------------------------------------------------------------------------------------------------
# Export


async def test_the_closed_case_is_exported_locked_with_its_code_and_replays_deterministically(
    closed_case: ClosedCase,
) -> None:
    case = closed_case
    assert (case.recent_pass.listed, case.recent_pass.exported, case.recent_pass.failed) == (1, 1, [])
    assert (case.nightly_pass.exported, case.nightly_pass.already_exported) == (0, 1)

    record = case.record
    events = history_events(case.history)
    assert (record.workflow_id, record.case_id, record.workflow_type) == (case.case_id, case.case_id,
                                                                          "AlertCaseWorkflow")
    assert record.event_count == len(events) and record.closed_at is not None
    assert record.build_ids == [case.build_id]
    assert record.code_version == code_version()
    assert record.history_key == f"histories/{case.case_id}/{record.run_id}.json"
    manifest = HistoryManifest.parse(case.archive.verifier.verify(case.manifest_note))
    assert (manifest.chain_head, manifest.event_count, manifest.build_ids) == (
        record.chain_head, record.event_count, (case.build_id,))

    # Locked like evidence: COMPLIANCE retention on both stored versions, which cannot be deleted.
    for key, version_id in ((record.history_key, record.history_version_id),
                            (record.manifest_key, record.manifest_version_id)):
        retention = case.minio.get_object_retention(case.archive.bucket, key, version_id=version_id)
        assert retention is not None and retention.mode == COMPLIANCE
        assert retention.retain_until_date is not None and retention.retain_until_date > datetime.now(UTC)
        with pytest.raises(S3Error):
            case.minio.remove_object(case.archive.bucket, key, version_id=version_id)

    # Idempotent: exporting again (as the CLI or the next pass would) writes nothing new.
    again = await case.exporter.export(case.case_id)
    assert (again.run_id, again.exported_at, again.history_version_id) == (record.run_id, record.exported_at,
                                                                           record.history_version_id)
    versions = list(case.minio.list_objects(case.archive.bucket, prefix="histories/", recursive=True,
                                            include_version=True))
    assert len(versions) == 2

    verdict = await case.archive.verify_and_replay(case.case_id)
    assert verdict.verdict == Verdict.deterministic and verdict.line() == "DETERMINISTIC", verdict
    checked = case.archive.find(case.case_id)
    assert checked is not None and checked.verified_at is not None
    assert checked.verification["verdict"] == "deterministic"
    assert checked.verification["replayed_with"] == code_version()

    lines = [line.text for line in timeline(events)]
    assert f"update verify by {case.merchant} (merchant)" in lines
    assert f"update review by {case.officer} (street_officer)" in lines
    assert any(text.startswith("timer ") and "«24h核查时限»" in text for text in lines)
    assert any(text.startswith("local activity record_transition, result sha256 ") for text in lines)


# ---------------------------------------------------------------------------------------------------------
# Tampering


async def test_an_edited_event_is_named_by_its_event_id(closed_case: ClosedCase) -> None:
    case = closed_case
    edited, event_id, index = edited_update(case.history, "verify",
                                            lambda argument: argument["actor"].update(username="mallory"))

    check = verify_history(edited, case.manifest_note, case.archive.verifier)
    assert not check.ok
    assert (check.first_bad_event_id, check.first_bad_index) == (event_id, index)
    assert check.problem == f"event id {event_id} (index {index}) differs from the exported one"
    assert "the file's SHA-256 differs from the manifest's" in check.problems

    verdict = await check_and_replay(case.case_id, edited, case.manifest_note, case.archive.verifier)
    assert verdict.verdict == Verdict.tampered
    assert verdict.line() == f"TAMPERED: event id {event_id} (index {index}) differs from the exported one"
    assert verdict.divergence is None  # replay alone cannot see an edited name: that is what the chain is for

    # Only the file's bytes changed (pretty-printed again): the events are intact, the digest is not.
    reformatted = json.dumps(json.loads(case.history), indent=4).encode()
    assert verify_history(reformatted, case.manifest_note, case.archive.verifier).problems == (
        "the file's SHA-256 differs from the manifest's",)


async def test_an_altered_or_foreign_manifest_is_caught(closed_case: ClosedCase) -> None:
    case = closed_case
    note = case.manifest_note
    record = case.record
    rewritten = note.replace(f"code-version {record.code_version}", "code-version v0.0.1-innocent")
    assert rewritten != note
    signature_line = note.rstrip("\n").rsplit("\n", 1)[1]
    name, encoded = signature_line.removeprefix("— ").split(" ")
    raw = bytearray(base64.b64decode(encoded))
    raw[-1] ^= 0x01
    flipped = note.replace(signature_line, f"— {name} {base64.b64encode(bytes(raw)).decode()}")
    other_signer = NoteSigner.from_signer_key(generate_signer_key("test.local/histories"))
    foreign = other_signer.sign(case.archive.verifier.verify(note))

    for altered, expected in ((rewritten, "bad signature"), (flipped, "bad signature"),
                              (foreign, "no signature by")):
        check = verify_history(case.history, altered, case.archive.verifier)
        assert check.problem is not None and check.problem.startswith("manifest signature: "), check.problems
        assert expected in check.problem
    # The foreign key's own verifier accepts its note: the signature, not the content, is what was wrong.
    assert verify_history(case.history, foreign, NoteVerifier.from_verifier_key(other_signer.verifier_key())).ok


# ---------------------------------------------------------------------------------------------------------
# Versioning


async def test_a_patched_change_replays_the_exported_history_and_an_unpatched_one_diverges(
    closed_case: ClosedCase,
) -> None:
    case = closed_case
    patched = await check_and_replay(case.case_id, case.history, case.manifest_note, case.archive.verifier,
                                     workflows=[PatchedAlertCaseWorkflow])
    assert patched.verdict == Verdict.deterministic, patched.line()

    unpatched = await check_and_replay(case.case_id, case.history, case.manifest_note, case.archive.verifier,
                                       workflows=[UnpatchedAlertCaseWorkflow])
    assert unpatched.verdict == Verdict.diverged
    assert unpatched.divergence is not None and "Nondeterminism" in unpatched.divergence
    # The first workflow task already differs (it now schedules an activity): the divergence is in its commands.
    events = history_events(case.history)
    first_completed = next(index for index, event in enumerate(events)
                           if event["eventType"] == "EVENT_TYPE_WORKFLOW_TASK_COMPLETED")
    assert unpatched.divergence_event_id == int(events[first_completed + 1]["eventId"])
    assert unpatched.line().startswith(f"DIVERGED at event {unpatched.divergence_event_id}: NondeterminismError: ")


# ---------------------------------------------------------------------------------------------------------
# The auditor's command line, offline


async def test_audit_replay_runs_offline_on_files_with_exit_codes(
    closed_case: ClosedCase, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    case = closed_case
    history, manifest, key = tmp_path / "history.json", tmp_path / "manifest.txt", tmp_path / "key.txt"
    history.write_bytes(case.history)
    manifest.write_text(case.manifest_note, encoding="utf-8")
    key.write_text(f"# the bureau's history key\n{case.archive.verifier_key}\n", encoding="utf-8")
    offline = ["audit", "replay", case.case_id, "--history", str(history), "--manifest", str(manifest),
               "--key", str(key)]

    async def replay(argv: list[str]) -> tuple[int, str]:
        code = await asyncio.to_thread(sunshine, argv)  # the command runs its own event loop
        captured = capsys.readouterr()
        return code, captured.out + captured.err

    code, out = await replay(offline)
    assert code == 0, out
    assert out.rstrip().endswith("\nDETERMINISTIC")
    assert f"update verify by {case.merchant} (merchant)" in out
    assert f"build ids {case.build_id}" in out

    edited, event_id, _ = edited_update(case.history, "review",
                                        lambda argument: argument["actor"].update(role="command_center"))
    history.write_bytes(edited)
    code, out = await replay(offline)
    assert code == 2, out
    assert f"TAMPERED: event id {event_id} " in out and "✗ differs from the export" in out

    history.write_bytes(case.history)
    monkeypatch.setattr(history_replay, "replay_workflows", lambda: [UnpatchedAlertCaseWorkflow])
    code, out = await replay(offline)
    assert code == 1, out
    assert "\nDIVERGED at event " in out and "✗ replay diverged here" in out
    monkeypatch.undo()

    other = NoteSigner.from_signer_key(generate_signer_key("test.local/histories")).verifier_key()
    code, out = await replay([*offline[:-1], other])
    assert code == 2 and "TAMPERED: manifest signature: no signature by" in out

    code, out = await replay(["audit", "replay", case.case_id, "--history", str(history)])
    assert code == 2 and "--history and --manifest go together" in out


async def test_audit_replay_and_export_read_the_bucket_through_the_export_rows(
    closed_case: ClosedCase, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    case = closed_case
    settings = case.settings
    for name, value in {
        "DATABASE_URL": str(settings.database_url), "TEMPORAL_ADDRESS": case.client.service_client.config.target_host,
        "S3_ENDPOINT": settings.effective_s3_endpoint, "S3_ACCESS_KEY": settings.s3_access_key.get_secret_value(),
        "S3_SECRET_KEY": settings.s3_secret_key.get_secret_value(), "EVIDENCE_BUCKET": settings.evidence_bucket,
        "VAR_DIR": str(settings.var_dir),
    }.items():
        monkeypatch.setenv(f"SUNSHINE_{name}", value)
    get_settings.cache_clear()
    try:
        code = await asyncio.to_thread(sunshine, ["audit", "export", case.case_id])
        out = capsys.readouterr().out
        assert code == 0, out
        assert out.startswith(f"{case.case_id} run {case.record.run_id}: {case.record.event_count} events")
        assert f"handoff-{case.case_id}" not in out  # never transferred: no hand-off to export

        code = await asyncio.to_thread(sunshine, ["audit", "replay", case.case_id])
        out = capsys.readouterr().out
        assert code == 0, out
        assert f"workflow {case.case_id} run {case.record.run_id} (AlertCaseWorkflow)" in out
        assert out.rstrip().endswith("\nDETERMINISTIC")

        code = await asyncio.to_thread(sunshine, ["audit", "replay", "case-never-exported"])
        assert code == 2 and "no exported history for case case-never-exported" in capsys.readouterr().err
    finally:
        get_settings.cache_clear()


# ---------------------------------------------------------------------------------------------------------
# The schedules


async def test_the_history_export_schedules_run_every_five_minutes_and_nightly_at_half_past_two(
    temporal_dev_server: str,
) -> None:
    client = await Client.connect(temporal_dev_server)
    prefix = f"test-{uuid.uuid4().hex[:8]}-"
    ids = await ensure_schedules(client, "casework-schedules-test", id_prefix=prefix)
    try:
        recent = await client.get_schedule_handle(f"{prefix}history-export-recent").describe()
        assert [interval.every for interval in recent.schedule.spec.intervals] == [timedelta(minutes=5)]
        nightly = await client.get_schedule_handle(f"{prefix}history-export-nightly").describe()
        [calendar] = nightly.schedule.spec.calendars
        assert (list(calendar.hour), list(calendar.minute)) == ([ScheduleRange(2)], [ScheduleRange(30)])
        assert nightly.schedule.spec.time_zone_name == "Asia/Shanghai"
        next_run = nightly.info.next_action_times[0].astimezone(BEIJING)
        assert (next_run.hour, next_run.minute, next_run.second) == (2, 30, 0)
        for described in (recent, nightly):
            action = described.schedule.action
            assert isinstance(action, ScheduleActionStartWorkflow)
            assert (action.workflow, action.task_queue) == ("HistoryExportWorkflow", "casework-schedules-test")
    finally:
        for schedule_id in ids:
            await client.get_schedule_handle(schedule_id).delete()
