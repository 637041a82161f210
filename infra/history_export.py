"""Closed workflow histories, exported for auditors into the locked evidence bucket, and their verification.

Temporal deletes a closed workflow's history after the namespace's retention; the exported copy outlives it.
For each closed run: the history exactly as ``WorkflowHistory.to_json()`` writes it, and a signed manifest (a C2SP
note with the per-event SHA-256 chain, the code version and the build ids; ``domain.audit.history_chain``), both
under ``histories/<workflow id>/<run id>.{json,manifest}`` with COMPLIANCE retention like evidence, and a
``workflow_history_export`` row saying where they lie.

- ``HistoryArchive`` (database + bucket + signer key): stores, loads and verifies; needs no Temporal, so the
  auditor's pages work while Temporal is down.
- ``HistoryExporter`` (Temporal client + archive): fetches a closed run's history and stores it.

Verification and replay themselves are ``infra.history_replay``'s.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from minio import Minio
from minio.commonconfig import COMPLIANCE
from minio.error import S3Error
from minio.retention import Retention
from sqlalchemy import Engine, text
from sqlmodel import Session, col, select
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHistory
from temporalio.converter import DataConverter

from domain.audit.history_chain import (
    HistoryCheck,
    HistoryManifest,
    build_ids_of,
    build_manifest,
    history_events,
    verify_history,
)
from domain.audit.models import WorkflowHistoryExport
from domain.base import utcnow
from domain.transparency.signed_note import NoteSigner, NoteVerifier
from infra.code_version import code_version
from infra.db import session_scope
from infra.history_replay import ReplayVerdict, Verdict, check_and_replay
from infra.settings import Settings

log = logging.getLogger("sunshine.history_export")

HISTORY_PREFIX = "histories"
HISTORY_CONTENT_TYPE = "application/json"
MANIFEST_CONTENT_TYPE = "text/plain; charset=utf-8"
RETENTION_MODE = COMPLIANCE
# Advisory-lock namespace (first key) of "an export of this workflow is in progress"; the second is its id's hash.
EXPORT_LOCK_NAMESPACE = 0x41157041
MISSING_OBJECT_CODES = frozenset({"NoSuchKey", "NoSuchObject", "NoSuchVersion", "ResourceNotFound", "NoSuchBucket"})


class HistoryExportError(RuntimeError):
    """A history that cannot be exported or read back; the message says why."""


class NotClosed(HistoryExportError):
    pass


class HistoryMissing(HistoryExportError):
    pass


@dataclass(frozen=True)
class StoredHistory:
    record: WorkflowHistoryExport
    history: bytes
    manifest_note: str


def history_keys(workflow_id: str, run_id: str) -> tuple[str, str]:
    base = f"{HISTORY_PREFIX}/{workflow_id}/{run_id}"
    return f"{base}.json", f"{base}.manifest"


class HistoryArchive:
    """Exported histories in the locked bucket and their rows: store, load, verify."""

    def __init__(
        self, engine: Engine, minio: Minio, *, bucket: str, retention_days: int, signer: NoteSigner
    ) -> None:
        if retention_days < 1:
            raise ValueError("retention_days must be positive")
        self._engine = engine
        self._minio = minio
        self.bucket = bucket
        self.retention_days = retention_days
        self._signer = signer
        self.verifier_key = signer.verifier_key()  # what auditors are given to check manifests offline
        self.verifier = NoteVerifier.from_verifier_key(self.verifier_key)

    @classmethod
    def from_settings(cls, settings: Settings, engine: Engine, minio: Minio | None = None) -> HistoryArchive:
        from infra.clients import make_minio_client
        from infra.transparency_key import load_signer

        return cls(
            engine,
            minio or make_minio_client(settings),
            bucket=settings.evidence_bucket,
            retention_days=settings.evidence_retention_days,
            signer=load_signer(settings),
        )

    # Rows

    def find(self, workflow_id: str) -> WorkflowHistoryExport | None:
        with Session(self._engine) as session:
            return session.get(WorkflowHistoryExport, workflow_id)

    def for_case(self, case_id: str) -> list[WorkflowHistoryExport]:
        """The case's own workflow and its hand-off, oldest first."""
        with Session(self._engine) as session:
            statement = (
                select(WorkflowHistoryExport)
                .where(col(WorkflowHistoryExport.case_id) == case_id)
                .order_by(col(WorkflowHistoryExport.closed_at), col(WorkflowHistoryExport.workflow_id))
            )
            return list(session.exec(statement).all())

    def exported(self, workflow_ids: Sequence[str]) -> set[str]:
        if not workflow_ids:
            return set()
        with Session(self._engine) as session:
            statement = select(WorkflowHistoryExport.workflow_id).where(
                col(WorkflowHistoryExport.workflow_id).in_(list(workflow_ids))
            )
            return set(session.exec(statement).all())

    # Writing

    def store(
        self,
        history: bytes,
        *,
        workflow_id: str,
        run_id: str,
        workflow_type: str,
        case_id: str | None,
        closed_at: datetime | None,
    ) -> WorkflowHistoryExport:
        """Write the history and its signed manifest, locked, then their row; the row of an earlier export of
        the same run is returned as it is (idempotent). Blocking: call it from a thread in async code."""
        history_key, manifest_key = history_keys(workflow_id, run_id)
        with session_scope(self._engine) as session:
            _lock_workflow(session, workflow_id)
            existing = session.get(WorkflowHistoryExport, workflow_id)
            if existing is not None:
                if existing.run_id != run_id:
                    raise HistoryExportError(
                        f"workflow {workflow_id}: run {existing.run_id} is exported already, not run {run_id}"
                    )
                return existing
            exported_at = utcnow()
            manifest = build_manifest(
                history,
                workflow_id=workflow_id,
                run_id=run_id,
                workflow_type=workflow_type,
                code_version=code_version(),
                build_ids=build_ids_of(history_events(history)),
                exported_at=exported_at,
            )
            adopted = self._adopt_stored_objects(history_key, manifest_key, history)
            if adopted is not None:  # an earlier attempt died after its uploads: its locked objects serve
                history_version, manifest_version, manifest = adopted
            else:
                note = self._signer.sign(manifest.body())
                history_version = self._put_locked(history_key, history, HISTORY_CONTENT_TYPE)
                manifest_version = self._put_locked(manifest_key, note.encode("utf-8"), MANIFEST_CONTENT_TYPE)
            record = WorkflowHistoryExport(
                workflow_id=workflow_id,
                run_id=run_id,
                workflow_type=workflow_type,
                case_id=case_id,
                closed_at=closed_at,
                exported_at=manifest.exported_at,
                bucket=self.bucket,
                history_key=history_key,
                history_version_id=history_version,
                manifest_key=manifest_key,
                manifest_version_id=manifest_version,
                event_count=manifest.event_count,
                chain_head=manifest.chain_head,
                history_sha256=manifest.history_sha256,
                build_ids=list(manifest.build_ids),
                code_version=manifest.code_version,
            )
            session.add(record)
        log.info("exported history of %s run %s (%d events)", workflow_id, run_id, manifest.event_count)
        return record

    def _put_locked(self, key: str, data: bytes, content_type: str) -> str | None:
        retain_until = (utcnow() + timedelta(days=self.retention_days)).replace(microsecond=0)
        result = self._minio.put_object(
            self.bucket,
            key,
            io.BytesIO(data),
            len(data),
            content_type=content_type,
            retention=Retention(RETENTION_MODE, retain_until),
        )
        return result.version_id

    def _adopt_stored_objects(
        self, history_key: str, manifest_key: str, history: bytes
    ) -> tuple[str | None, str | None, HistoryManifest] | None:
        """(history version, manifest version, manifest) of objects an interrupted export left, when they hold
        exactly these bytes under a manifest this key signed; None otherwise."""
        try:
            stored_history, history_version = self._read(history_key, None)
            stored_note, manifest_version = self._read(manifest_key, None)
        except HistoryMissing:
            return None
        check = verify_history(stored_history, stored_note.decode("utf-8", "replace"), self.verifier)
        if stored_history != history or not check.ok or check.manifest is None:
            return None
        return history_version, manifest_version, check.manifest

    # Reading

    def load(self, workflow_id: str) -> StoredHistory:
        record = self.find(workflow_id)
        if record is None:
            raise HistoryMissing(f"no exported history for workflow {workflow_id}")
        history, _ = self._read(record.history_key, record.history_version_id, bucket=record.bucket)
        note, _ = self._read(record.manifest_key, record.manifest_version_id, bucket=record.bucket)
        return StoredHistory(record=record, history=history, manifest_note=note.decode("utf-8", "replace"))

    def _read(self, key: str, version_id: str | None, *, bucket: str | None = None) -> tuple[bytes, str | None]:
        try:
            response = self._minio.get_object(bucket or self.bucket, key, version_id=version_id)
        except S3Error as error:
            if error.code in MISSING_OBJECT_CODES:
                raise HistoryMissing(f"{bucket or self.bucket}/{key} (version {version_id}) is missing") from error
            raise
        try:
            return response.read(), response.headers.get("x-amz-version-id") or version_id
        finally:
            response.close()
            response.release_conn()

    # Verifying

    async def verify_and_replay(self, workflow_id: str) -> ReplayVerdict:
        """Check the stored copy and replay it against the code running now; the row keeps the result."""
        try:
            stored = await asyncio.to_thread(self.load, workflow_id)
        except HistoryMissing as missing:
            if await asyncio.to_thread(self.find, workflow_id) is None:
                raise
            verdict = ReplayVerdict(
                verdict=Verdict.tampered,
                check=HistoryCheck(problems=(f"the stored copy cannot be read: {missing}",), manifest=None,
                                   event_count=0),
            )
        else:
            verdict = await check_and_replay(workflow_id, stored.history, stored.manifest_note, self.verifier)
        await asyncio.to_thread(self._record_verification, workflow_id, verdict)
        return verdict

    def _record_verification(self, workflow_id: str, verdict: ReplayVerdict) -> None:
        with session_scope(self._engine) as session:
            record = session.get(WorkflowHistoryExport, workflow_id)
            if record is None:
                return
            record.verified_at = verdict.checked_at
            record.verification = verdict.as_record()
            session.add(record)


class HistoryExporter:
    """Fetches a closed run's history from Temporal and stores it in the archive."""

    def __init__(self, client: Client, archive: HistoryArchive) -> None:
        self.client = client
        self.archive = archive

    async def export(self, workflow_id: str, run_id: str | None = None) -> WorkflowHistoryExport:
        """Export the run (default: the latest run of the id); a run exported already is returned as it is."""
        existing = await asyncio.to_thread(self.archive.find, workflow_id)
        if existing is not None and (run_id is None or existing.run_id == run_id):
            return existing
        description = await self.client.get_workflow_handle(workflow_id, run_id=run_id).describe()
        if description.status in (None, WorkflowExecutionStatus.RUNNING):
            raise NotClosed(f"workflow {workflow_id} run {description.run_id} is still running")
        history = await self.client.get_workflow_handle(workflow_id, run_id=description.run_id).fetch_history()
        return await asyncio.to_thread(
            self.archive.store,
            history.to_json().encode("utf-8"),
            workflow_id=workflow_id,
            run_id=description.run_id,
            workflow_type=description.workflow_type,
            case_id=_case_id(history),
            closed_at=description.close_time,
        )


def _case_id(history: WorkflowHistory) -> str | None:
    """The ``case_id`` of the workflow's input (the case workflow's and the hand-off's inputs both carry it)."""
    if not history.events:
        return None
    payloads = history.events[0].workflow_execution_started_event_attributes.input.payloads
    if not payloads:
        return None
    try:
        [arguments, *_] = DataConverter.default.payload_converter.from_payloads(list(payloads[:1]), None)
    except Exception:  # an input this converter cannot read: the export does not depend on it
        return None
    case_id = arguments.get("case_id") if isinstance(arguments, dict) else None
    return case_id if isinstance(case_id, str) else None


def _lock_workflow(session: Session, workflow_id: str) -> None:
    """Exports of one workflow take turns (the frequent and the nightly pass, a manual export), across processes:
    without it both would upload, and every copy stays locked for the whole retention period."""
    if session.get_bind().dialect.name != "postgresql":
        return
    key = int.from_bytes(hashlib.sha256(workflow_id.encode("utf-8")).digest()[:4], "big", signed=True)
    session.connection().execute(
        text("SELECT pg_advisory_xact_lock(:namespace, :key)"), {"namespace": EXPORT_LOCK_NAMESPACE, "key": key}
    )
