"""Evidence bytes in an S3 bucket with Object Lock, and their record and custody log in PostgreSQL.

``put`` streams the content once: it sniffs the first bytes, enforces the size limit as it reads, writes a
private spool file and hashes SHA-256 inline while a second thread follows the spool with SM3 (the slow
digest; hashlib releases the GIL). The SHA-256 names the object (``sha256/ab/cd/<sha256>``), so the upload
starts as soon as the stream ends, while SM3 finishes beside it. The upload is one PUT signed with the
SHA-256 already computed (no second hashing pass in the client) and carries ``x-amz-checksum-sha256``, so
the object store itself refuses bytes that differ from those hashed. Retention (COMPLIANCE) is set in the
same request. Only once the object is durable are the record and its ``collected`` event written, in one
transaction, which holds a per-digest advisory lock from before the upload: concurrent puts of the same
bytes wait for the first and adopt its record, rather than leave undeletable duplicate copies. Evidence
that fits one chunk of ``INLINE_BYTES`` or less (alert snapshots) skips the spool file and the SM3 thread:
both digests are taken in memory and the PUT sends the bytes from there, with the same checks and order.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import itertools
import json
import os
import tempfile
import threading
import uuid
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlunsplit

from minio import Minio
from minio import time as s3_time
from minio.commonconfig import COMPLIANCE
from minio.error import S3Error
from minio.helpers import DictType
from minio.objectlockconfig import DAYS, ObjectLockConfig
from minio.retention import Retention
from minio.signer import sign_v4_s3
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from domain.base import utcnow
from domain.errors import ValidationFailed
from domain.evidence import service
from domain.evidence.content import (
    SNIFF_BYTES,
    ContentTypeMismatch,
    EvidenceRejected,
    EvidenceTooLarge,
    UnsupportedContent,
    check_content_type,
)
from domain.evidence.models import CollectionMethod, CustodyAction
from domain.evidence.refs import EvidenceRef
from infra.db import session_scope
from infra.settings import Settings

__all__ = [
    "ContentTypeMismatch",
    "EvidenceIntegrityError",
    "EvidenceRef",
    "EvidenceRejected",
    "EvidenceStore",
    "EvidenceStoreError",
    "EvidenceTooLarge",
    "ObjectLockNotEnabled",
    "UnsupportedContent",
    "VerifiedReader",
    "content_key",
]

CHUNK_BYTES = 1 << 20
# Chunks smaller than this are gathered before writing and hashing: per-call overhead would dominate.
SMALL_CHUNK_BYTES = 256 << 10
# Evidence up to this size (one chunk) is hashed and uploaded from memory, without spool file or SM3 thread.
INLINE_BYTES = 256 << 10
RETENTION_MODE = COMPLIANCE
# One PUT may carry at most 5 GiB; bigger evidence would need a multipart upload.
SINGLE_PUT_LIMIT = 5 << 30
FALLBACK_PART_BYTES = 16 << 20
# Advisory-lock namespace (first key) of "a put of these bytes is in progress"; the second key is the digest.
DIGEST_LOCK_NAMESPACE = 0x5E1DE7CE
MISSING_OBJECT_CODES = frozenset({"NoSuchKey", "NoSuchObject", "NoSuchVersion", "ResourceNotFound", "NoSuchBucket"})

Source = BinaryIO | Iterable[bytes] | bytes | bytearray | memoryview


class EvidenceStoreError(RuntimeError):
    """The object store or its bucket is not as evidence needs it; the message names the problem."""


class ObjectLockNotEnabled(EvidenceStoreError):
    """The bucket exists without Object Lock; evidence must never be written there."""


class EvidenceIntegrityError(EvidenceStoreError):
    """Stored bytes differ from their record (size, SHA-256 or SM3)."""


def content_key(sha256: str) -> str:
    """``sha256/ab/cd/<sha256>``: two fan-out levels keep listings of one prefix short."""
    return f"sha256/{sha256[:2]}/{sha256[2:4]}/{sha256}"


@dataclass(frozen=True)
class _StoredObject:
    version_id: str | None
    stored_at: datetime
    retain_until: datetime


@dataclass(frozen=True)
class _Ingested:
    content_type: str
    size: int
    sha256: str


class EvidenceStore:
    def __init__(
        self,
        client: Minio,
        engine: Engine,
        *,
        bucket: str,
        retention_days: int,
        max_bytes: int,
        presign_seconds: int,
        spool_dir: Path | None = None,
        sign_with_precomputed_sha256: bool = True,
    ) -> None:
        if retention_days < 1 or max_bytes < 1 or presign_seconds < 1:
            raise ValueError("retention_days, max_bytes and presign_seconds must be positive")
        self._client = client
        self._engine = engine
        self.bucket = bucket
        self.retention_days = retention_days
        self.max_bytes = max_bytes
        self.presign_seconds = presign_seconds
        self._spool_dir = spool_dir
        # The signed PUT relies on the minio client's internals (credentials, URL builder, HTTP pool); where
        # they are missing, the client's own put_object (which hashes each part again) is used instead.
        self._signed_put = (
            sign_with_precomputed_sha256
            and all(hasattr(client, name) for name in ("_base_url", "_provider", "_http", "_get_region"))
            and client._provider is not None
        )

    @classmethod
    def from_settings(cls, settings: Settings, engine: Engine) -> EvidenceStore:
        from infra.clients import make_minio_client

        return cls(
            make_minio_client(settings),
            engine,
            bucket=settings.evidence_bucket,
            retention_days=settings.evidence_retention_days,
            max_bytes=settings.evidence_max_bytes,
            presign_seconds=settings.evidence_presign_seconds,
            # Not the system temp dir: that may be a RAM disk, and evidence may be hundreds of MB.
            spool_dir=settings.var_dir / "tmp",
        )

    # The bucket

    def ensure_bucket(self) -> None:
        """Create the bucket with Object Lock if missing; refuse one that exists without it.

        A bucket without a default retention rule gets COMPLIANCE for ``retention_days``, so that even a
        write by another client is locked; a default rule the operator set is left as it is.
        """
        if not self._client.bucket_exists(self.bucket):
            try:
                self._client.make_bucket(self.bucket, object_lock=True)
            except S3Error as error:
                if error.code not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                    raise
        try:
            config = self._client.get_object_lock_config(self.bucket)
        except S3Error as error:
            if error.code in {"ObjectLockConfigurationNotFoundError", "InvalidRequest"}:
                raise ObjectLockNotEnabled(
                    f"bucket {self.bucket!r} exists without Object Lock; evidence needs a bucket created with "
                    "Object Lock enabled (it cannot be turned on later): choose another SUNSHINE_EVIDENCE_BUCKET"
                ) from error
            raise
        if config.mode is None:
            self._client.set_object_lock_config(
                self.bucket, ObjectLockConfig(RETENTION_MODE, self.retention_days, DAYS)
            )

    # Writing

    def put(
        self,
        source: Source,
        *,
        collection_method: CollectionMethod | str,
        actor: str,
        captured_at: datetime | None = None,
        source_meta: dict[str, Any] | None = None,
        declared_content_type: str | None = None,
        actor_role: str | None = None,
        unit: str | None = None,
    ) -> EvidenceRef:
        """Store the bytes of ``source`` (a binary file or an iterable of chunks) as evidence.

        Refused content (EvidenceRejected) leaves nothing behind. The same bytes again, even concurrently,
        return the same reference without a second upload; ``service.record_repeat_collection`` says what
        the custody log gets. The database transaction stays open during the upload (it holds the lock).
        """
        submission = _Submission.checked(
            collection_method=collection_method,
            actor=actor,
            captured_at=captured_at,
            source_meta=source_meta,
            actor_role=actor_role,
            unit=unit,
        )
        chunks = _chunks(source, self.max_bytes)
        first = next(chunks, b"")
        rest = next(chunks, None) if first else None
        if rest is None and len(first) <= INLINE_BYTES:
            # Small (snapshots): both digests in memory, in this thread; no spool file, no SM3 thread.
            return self._put_inline(bytes(first), declared_content_type, submission)
        chunks = itertools.chain([first] if rest is None else [first, rest], chunks)
        with _Spool(self._spool_dir) as spool, ThreadPoolExecutor(1, thread_name_prefix="sm3") as pool:
            sm3_future = pool.submit(_hexdigest, "sm3", spool.follow())
            try:
                ingested = _ingest(chunks, spool, self.max_bytes, declared_content_type)
            except BaseException:
                spool.finish(abandon=True)  # refused: no digest wanted, stop the follower at once
                raise
            spool.finish()
            try:
                return self._store_and_record(spool, ingested, sm3_future, submission)
            except IntegrityError as error:
                # Only writers that skip the digest lock (a database other than PostgreSQL) race here.
                return self._adopt_recorded_twin(ingested, sm3_future.result(), submission, error)

    def _put_inline(self, data: bytes, declared_content_type: str | None, submission: _Submission) -> EvidenceRef:
        spool = _MemorySpool()
        ingested = _ingest(iter((data,)), spool, self.max_bytes, declared_content_type)
        sm3_future: Future[str] = Future()
        sm3_future.set_result(hashlib.new("sm3", data).hexdigest())
        try:
            return self._store_and_record(spool, ingested, sm3_future, submission)
        except IntegrityError as error:
            return self._adopt_recorded_twin(ingested, sm3_future.result(), submission, error)

    def _store_and_record(
        self, spool: _Spool | _MemorySpool, ingested: _Ingested, sm3_future: Future[str], submission: _Submission
    ) -> EvidenceRef:
        """Under the digest lock: the known record, or a locked object and then its record (one transaction)."""
        with session_scope(self._engine) as session:
            _lock_digest(session, ingested.sha256)
            known = service.find_by_sha256(session, sha256=ingested.sha256)
            if known is not None:
                ref = EvidenceRef.from_record(known)
                self._check_same_bytes(ref, sm3_future.result(), ingested.size)
                service.record_repeat_collection(session, evidence=known, **submission.fields())
                return ref
            stored = self._store_object(spool, ingested, sm3_future)
            evidence = service.record_collected(
                session,
                evidence_id=service.new_evidence_id(),
                bucket=self.bucket,
                key=content_key(ingested.sha256),
                version_id=stored.version_id,
                sha256=ingested.sha256,
                sm3=sm3_future.result(),
                size=ingested.size,
                content_type=ingested.content_type,
                stored_at=stored.stored_at,
                retention_mode=RETENTION_MODE,
                retain_until=stored.retain_until,
                **submission.fields(),
            )
            return EvidenceRef.from_record(evidence)

    def _adopt_recorded_twin(
        self, ingested: _Ingested, sm3: str, submission: _Submission, error: IntegrityError
    ) -> EvidenceRef:
        with session_scope(self._engine) as session:
            twin = service.find_by_sha256(session, sha256=ingested.sha256)
            if twin is None:
                raise error
            ref = EvidenceRef.from_record(twin)
            self._check_same_bytes(ref, sm3, ingested.size, cause=error)
            service.record_repeat_collection(session, evidence=twin, **submission.fields())
            return ref

    def _store_object(
        self, spool: _Spool | _MemorySpool, ingested: _Ingested, sm3_future: Future[str]
    ) -> _StoredObject:
        """The locked object holding these bytes: one already there and intact, else a fresh upload."""
        key = content_key(ingested.sha256)
        existing = self._intact_existing_object(key, ingested, sm3_future)
        if existing is not None:
            return existing
        retain_until = (utcnow() + timedelta(days=self.retention_days)).replace(microsecond=0)
        if self._signed_put and ingested.size <= SINGLE_PUT_LIMIT:
            version_id = self._upload_signed(key, spool, ingested, retain_until)
        else:
            version_id = self._upload_with_client(key, spool, ingested, retain_until)
        return _StoredObject(version_id=version_id, stored_at=utcnow(), retain_until=retain_until)

    def _intact_existing_object(self, key: str, ingested: _Ingested, sm3_future: Future[str]) -> _StoredObject | None:
        """An object left by a put that died between its upload and its record.

        Reused only when it is locked and really holds these bytes: reading it back costs less than a
        second copy that could never be deleted.
        """
        try:
            stat = self._client.stat_object(self.bucket, key)
        except S3Error as error:
            if error.code in MISSING_OBJECT_CODES:
                return None
            raise
        if stat.size != ingested.size or stat.version_id is None:
            return None
        retention = self._client.get_object_retention(self.bucket, key, version_id=stat.version_id)
        if retention is None or retention.mode != RETENTION_MODE or retention.retain_until_date is None:
            return None
        candidate = EvidenceRef(
            evidence_id=uuid.uuid4(),
            bucket=self.bucket,
            key=key,
            version_id=stat.version_id,
            sha256=ingested.sha256,
            sm3=sm3_future.result(),
            size=ingested.size,
            content_type=ingested.content_type,
            stored_at=stat.last_modified or utcnow(),
        )
        try:
            with self.open(candidate) as reader:
                for _ in reader:
                    pass
        except EvidenceIntegrityError:
            return None
        return _StoredObject(
            version_id=stat.version_id, stored_at=candidate.stored_at, retain_until=retention.retain_until_date
        )

    def _lock_headers(self, ingested: _Ingested, retain_until: datetime) -> dict[str, str]:
        return {
            "Content-Type": ingested.content_type,
            "x-amz-object-lock-mode": RETENTION_MODE,
            "x-amz-object-lock-retain-until-date": retain_until.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            # The store verifies the bytes it received against the digest taken at ingest (BadDigest if not);
            # S3 also requires an integrity header on writes that set a retention.
            "x-amz-checksum-sha256": base64.b64encode(bytes.fromhex(ingested.sha256)).decode(),
        }

    def _upload_signed(
        self, key: str, spool: _Spool | _MemorySpool, ingested: _Ingested, retain_until: datetime
    ) -> str | None:
        """One PUT streamed from the spool, its SigV4 payload hash being the SHA-256 taken at ingest."""
        client = self._client
        region = client._get_region(self.bucket)
        url = client._base_url.build(method="PUT", region=region, bucket_name=self.bucket, object_name=key)
        assert client._provider is not None  # checked in __init__
        credentials = client._provider.retrieve()
        now = s3_time.utcnow()
        headers: DictType = {
            "Host": url.netloc,
            "Content-Length": str(ingested.size),
            "x-amz-content-sha256": ingested.sha256,
            "x-amz-date": s3_time.to_amz_date(now),
            **self._lock_headers(ingested, retain_until),
        }
        if credentials.session_token:
            headers["X-Amz-Security-Token"] = credentials.session_token
        signed = sign_v4_s3(
            method="PUT",
            url=url,
            region=region,
            headers=headers,
            credentials=credentials,
            content_sha256=ingested.sha256,
            date=now,
        )
        # No automatic retry: the body is a one-shot stream; a failed put is retried whole by its caller.
        response = client._http.urlopen(
            "PUT", urlunsplit(url), body=spool.chunks(), headers=signed, retries=False, redirect=False
        )
        if response.status != 200:
            error = _s3_error(response)
            if error is not None and error.code in {"BadDigest", "XAmzContentSHA256Mismatch"}:
                raise EvidenceIntegrityError(
                    f"the object store received bytes that differ from those hashed ({error.code}); nothing stored"
                ) from error
            raise EvidenceStoreError(
                f"storing evidence in bucket {self.bucket!r} failed: HTTP {response.status}"
                + (f" {error.code}: {error.message}" if error is not None else "")
            )
        version_id = response.headers.get("x-amz-version-id")
        return str(version_id) if version_id else None

    def _upload_with_client(
        self, key: str, spool: _Spool | _MemorySpool, ingested: _Ingested, retain_until: datetime
    ) -> str | None:
        result = self._client.put_object(
            self.bucket,
            key,
            spool.reader(),
            ingested.size,
            content_type=ingested.content_type,
            retention=Retention(RETENTION_MODE, retain_until),
            part_size=FALLBACK_PART_BYTES,
            num_parallel_uploads=1,
        )
        return result.version_id

    @staticmethod
    def _check_same_bytes(known: EvidenceRef, sm3: str, size: int, cause: BaseException | None = None) -> None:
        if known.sm3 != sm3 or known.size != size:
            raise EvidenceIntegrityError(
                f"evidence {known.evidence_id} has this SHA-256 but a different SM3 or size: "
                "a SHA-256 collision or a damaged record; nothing stored"
            ) from cause

    # Reading

    def ref(self, evidence_id: uuid.UUID) -> EvidenceRef:
        with session_scope(self._engine) as session:
            return EvidenceRef.from_record(service.get_evidence(session, evidence_id))

    @contextlib.contextmanager
    def open(self, ref: EvidenceRef) -> Iterator[VerifiedReader]:
        """Stream the stored version; after its last byte, size, SHA-256 and SM3 are checked against ``ref``.

        A mismatch raises EvidenceIntegrityError from the read that reaches the end, so a consumer never
        finishes reading altered bytes unawares. A reader left unfinished checks nothing.
        """
        try:
            response = self._client.get_object(ref.bucket, ref.key, version_id=ref.version_id)
        except S3Error as error:
            if error.code in MISSING_OBJECT_CODES:
                raise EvidenceIntegrityError(
                    f"evidence {ref.evidence_id}: the stored object {ref.bucket}/{ref.key} "
                    f"(version {ref.version_id}) is missing ({error.code})"
                ) from error
            raise
        try:
            yield VerifiedReader(response.stream(CHUNK_BYTES), ref)
        finally:
            response.close()
            response.release_conn()

    def presigned_get(
        self,
        evidence_id: uuid.UUID,
        *,
        actor: str,
        actor_role: str | None,
        unit: str | None,
        reason: str,
    ) -> str:
        """A short-lived download link to the stored version; the view (who, when, why) is logged first."""
        expires = timedelta(seconds=self.presign_seconds)
        with session_scope(self._engine) as session:
            evidence = service.get_evidence(session, evidence_id)
            url = self._client.presigned_get_object(
                evidence.bucket, evidence.key, expires=expires, version_id=evidence.version_id
            )
            service.record_custody(
                session,
                evidence_id=evidence_id,
                action=CustodyAction.viewed,
                actor=actor,
                actor_role=actor_role,
                unit=unit,
                reason=reason,
                detail={"via": "presigned_url", "expires_in_seconds": self.presign_seconds},
            )
        return url


class VerifiedReader:
    """The bytes of one evidence version, as chunks (iteration) or by ``read``; checked at the end."""

    def __init__(self, chunks: Iterator[bytes], ref: EvidenceRef) -> None:
        self._chunks = chunks
        self._ref = ref
        self._sha256 = hashlib.sha256()
        self._sm3 = hashlib.new("sm3")
        self._size = 0
        self._pending = b""
        self.verified = False

    def __iter__(self) -> Iterator[bytes]:
        if self._pending:
            pending, self._pending = self._pending, b""
            yield pending
        while (chunk := self._next_chunk()) is not None:
            yield chunk

    def read(self, size: int = -1) -> bytes:
        parts = [self._pending]
        have = len(self._pending)
        while size < 0 or have < size:
            chunk = self._next_chunk()
            if chunk is None:
                break
            parts.append(chunk)
            have += len(chunk)
        data = b"".join(parts)
        if size < 0:
            self._pending = b""
            return data
        self._pending = data[size:]
        return data[:size]

    def _next_chunk(self) -> bytes | None:
        chunk = next(self._chunks, None)
        if chunk is None:
            self._check()
            return None
        self._size += len(chunk)
        if self._size > self._ref.size:
            raise EvidenceIntegrityError(
                f"evidence {self._ref.evidence_id}: stored object is longer than the recorded {self._ref.size} bytes"
            )
        self._sha256.update(chunk)
        self._sm3.update(chunk)
        return chunk

    def _check(self) -> None:
        if self.verified:
            return
        problems = []
        if self._size != self._ref.size:
            problems.append(f"size {self._size} ≠ recorded {self._ref.size}")
        if self._sha256.hexdigest() != self._ref.sha256:
            problems.append("SHA-256 differs from the record")
        if self._sm3.hexdigest() != self._ref.sm3:
            problems.append("SM3 differs from the record")
        if problems:
            raise EvidenceIntegrityError(
                f"evidence {self._ref.evidence_id} ({self._ref.key}, version {self._ref.version_id}): "
                + "; ".join(problems)
            )
        self.verified = True


@dataclass(frozen=True)
class _Submission:
    """Who handed the bytes over, how and from where: checked before a byte is read."""

    collection_method: CollectionMethod
    actor: str
    captured_at: datetime | None
    source: dict[str, Any]
    actor_role: str | None
    unit: str | None

    @classmethod
    def checked(
        cls,
        *,
        collection_method: CollectionMethod | str,
        actor: str,
        captured_at: datetime | None,
        source_meta: dict[str, Any] | None,
        actor_role: str | None,
        unit: str | None,
    ) -> _Submission:
        try:
            method = CollectionMethod(collection_method)
        except ValueError:
            raise ValidationFailed(f"unknown collection method {collection_method!r}") from None
        service.check_actor(actor)
        if captured_at is not None and captured_at.utcoffset() is None:
            raise ValidationFailed("captured_at must carry a time zone")
        try:
            # Stored as JSON and compared with earlier submissions: normalise it the way the database will.
            source = json.loads(json.dumps(source_meta or {}, ensure_ascii=False, allow_nan=False))
        except (TypeError, ValueError) as error:
            raise ValidationFailed(f"source metadata is not plain JSON: {error}") from None
        if not isinstance(source, dict):
            raise ValidationFailed("source metadata must be a JSON object")
        return cls(method, actor, captured_at, source, actor_role, unit)

    def fields(self) -> dict[str, Any]:
        return {
            "collection_method": self.collection_method,
            "captured_at": self.captured_at,
            "source": self.source,
            "actor": self.actor,
            "actor_role": self.actor_role,
            "unit": self.unit,
        }


class _Spool:
    """A private, already-unlinked temporary file that one writer appends to while readers follow it."""

    def __init__(self, directory: Path | None) -> None:
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)
        self._file = tempfile.TemporaryFile(dir=directory, buffering=0)  # noqa: SIM115 - closed in __exit__
        self._fd = self._file.fileno()
        self.size = 0
        self._finished = False
        self._abandoned = False
        self._grew = threading.Condition()

    def __enter__(self) -> _Spool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.finish()
        self._file.close()

    def append(self, data: bytes | memoryview) -> None:
        view = memoryview(data).cast("B")
        written = view.nbytes
        while view:
            view = view[os.write(self._fd, view) :]
        with self._grew:
            self.size += written
            self._grew.notify_all()

    def finish(self, *, abandon: bool = False) -> None:
        with self._grew:
            self._finished = True
            self._abandoned = self._abandoned or abandon
            self._grew.notify_all()

    def follow(self) -> Iterator[memoryview]:
        """Chunks as they are written, until the writer finishes (one reused buffer: consume each at once)."""
        buffer = bytearray(CHUNK_BYTES)
        offset = 0
        while True:
            with self._grew:
                while offset >= self.size and not self._finished:
                    self._grew.wait()
                available = self.size - offset
            if available <= 0 or self._abandoned:
                return
            got = os.preadv(self._fd, [memoryview(buffer)[: min(available, CHUNK_BYTES)]], offset)
            if got <= 0:
                raise EvidenceStoreError("the spool file ended early")
            offset += got
            yield memoryview(buffer)[:got]

    def chunks(self) -> Iterator[bytes]:
        """The finished spool from its start, in fresh chunks (safe to hand to another thread)."""
        offset = 0
        while offset < self.size:
            chunk = os.pread(self._fd, min(CHUNK_BYTES, self.size - offset), offset)
            if not chunk:
                raise EvidenceStoreError("the spool file ended early")
            offset += len(chunk)
            yield chunk

    def reader(self) -> BinaryIO:
        os.lseek(self._fd, 0, os.SEEK_SET)
        return self._file


class _MemorySpool:
    """The bytes of a small put, held in memory (the ``_Spool`` interface the upload uses)."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self.size = 0

    def append(self, data: bytes | memoryview) -> None:
        self._parts.append(bytes(data))
        self.size += len(data)

    def data(self) -> bytes:
        if len(self._parts) != 1:
            self._parts = [b"".join(self._parts)]
        return self._parts[0]

    def chunks(self) -> Iterator[bytes]:
        if self.size:
            yield self.data()

    def reader(self) -> BinaryIO:
        return io.BytesIO(self.data())


def _lock_digest(session: Session, sha256: str) -> None:
    """Puts of the same bytes take turns, across processes, until the first has committed its record.

    Without this, concurrent puts of one clip would each upload it, and every copy stays locked (and
    billed) for the whole retention period. A transaction-level lock: commit or rollback releases it.
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    digest_key = int.from_bytes(bytes.fromhex(sha256)[:4], "big", signed=True)
    session.connection().execute(
        text("SELECT pg_advisory_xact_lock(:namespace, :digest)"),
        {"namespace": DIGEST_LOCK_NAMESPACE, "digest": digest_key},
    )


def _s3_error(response: Any) -> S3Error | None:
    try:
        return S3Error.fromxml(response) if response.data else None
    except Exception:  # a proxy's HTML page, say: the status alone must do
        return None


def _hexdigest(algorithm: str, chunks: Iterable[bytes | memoryview]) -> str:
    digest = hashlib.new(algorithm)
    for chunk in chunks:
        digest.update(chunk)
    return digest.hexdigest()


def _chunks(source: Source, max_bytes: int) -> Iterator[bytes | memoryview]:
    """The source as chunks; a file is never read more than one byte past the limit."""
    if isinstance(source, bytes | bytearray | memoryview):
        yield memoryview(source).cast("B")
        return
    read = getattr(source, "read", None)
    if read is not None:
        total = 0
        while chunk := read(max(1, min(CHUNK_BYTES, max_bytes - total + 1))):
            total += len(chunk)
            yield chunk
        return
    small: list[bytes] = []
    small_size = 0
    for chunk in source:
        if len(chunk) >= SMALL_CHUNK_BYTES:
            if small:
                yield b"".join(small)
                small, small_size = [], 0
            yield chunk
            continue
        small.append(chunk)
        small_size += len(chunk)
        if small_size >= SMALL_CHUNK_BYTES:
            yield b"".join(small)
            small, small_size = [], 0
    if small:
        yield b"".join(small)


def _ingest(
    chunks: Iterator[bytes | memoryview],
    spool: _Spool | _MemorySpool,
    max_bytes: int,
    declared_content_type: str | None,
) -> _Ingested:
    """Sniff, bound, spool and SHA-256 the stream in one pass; raises EvidenceRejected as early as it can."""
    sha256 = hashlib.sha256()
    head = b""
    content_type: str | None = None
    size = 0
    for chunk in chunks:
        if not chunk:
            continue
        size += len(chunk)
        if size > max_bytes:
            raise EvidenceTooLarge(max_bytes)
        if content_type is None:
            head += bytes(chunk[: SNIFF_BYTES - len(head)])
            if len(head) >= SNIFF_BYTES:
                content_type = check_content_type(head, declared=declared_content_type)
        spool.append(chunk)
        sha256.update(chunk)
    if content_type is None:  # shorter than SNIFF_BYTES (or empty)
        content_type = check_content_type(head, declared=declared_content_type)
    return _Ingested(content_type=content_type, size=size, sha256=sha256.hexdigest())
