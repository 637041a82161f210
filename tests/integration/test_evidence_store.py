"""The evidence store against a real SeaweedFS (Object Lock) and PostgreSQL."""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from minio import Minio
from minio.commonconfig import COMPLIANCE
from minio.error import S3Error
from minio.retention import Retention
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from domain.evidence import service
from domain.evidence.content import (
    JPEG,
    MP4,
    PNG,
    WEBM,
    WEBP,
    ContentTypeMismatch,
    EvidenceTooLarge,
    UnsupportedContent,
    sniff_content_type,
)
from domain.evidence.models import CollectionMethod, CustodyAction, CustodyEvent, Evidence
from infra.components.process import free_port, running
from infra.components.seaweedfs import seaweedfs_spec
from infra.evidence_store import (
    EvidenceIntegrityError,
    EvidenceRef,
    EvidenceStore,
    ObjectLockNotEnabled,
    _Spool,
    content_key,
)
from tests.fixtures.s3 import SeaweedInstance

integration = pytest.mark.integration

CAMERA_SOURCE = {"camera_id": "44010600001320000001", "area": "cooking", "model": {"name": "hat", "version": "1.2"}}


def jpeg(size: int, seed: int = 1) -> bytes:
    return b"\xff\xd8\xff\xe0" + random.Random(seed).randbytes(size - 4)


def png(size: int, seed: int = 2) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + random.Random(seed).randbytes(size - 8)


def mp4(size: int, seed: int = 3) -> bytes:
    ftyp = (24).to_bytes(4, "big") + b"ftypisom" + b"\x00\x00\x02\x00" + b"isomiso2"
    return ftyp + random.Random(seed).randbytes(size - len(ftyp))


def chunked(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def put(store: EvidenceStore, data: bytes | Iterator[bytes], **overrides: object) -> EvidenceRef:
    arguments: dict = {
        "collection_method": CollectionMethod.ai_capture,
        "actor": "system:vision",
        "captured_at": datetime(2026, 3, 2, 11, 30, tzinfo=UTC),
        "source_meta": CAMERA_SOURCE,
        **overrides,
    }
    return store.put(data, **arguments)


def object_versions(client: Minio, bucket: str) -> list:
    return list(client.list_objects(bucket, recursive=True, include_version=True))


def evidence_rows(engine: Engine) -> list[Evidence]:
    with Session(engine) as session:
        return list(session.exec(select(Evidence)).all())


def custody(engine: Engine, evidence_id: uuid.UUID) -> list[CustodyEvent]:
    with Session(engine) as session:
        return service.custody_log(session, evidence_id)


def assert_nothing_stored(store: EvidenceStore, client: Minio, engine: Engine) -> None:
    assert object_versions(client, store.bucket) == []
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(Evidence)).one() == 0
        assert session.exec(select(func.count()).select_from(CustodyEvent)).one() == 0


# Pure parts: digests, sniffing, payloads


def test_sm3_matches_the_gbt_32905_test_vector() -> None:
    digest = hashlib.new("sm3", b"abc").hexdigest()
    assert digest == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (jpeg(64), JPEG),
        (png(64), PNG),
        (b"RIFF\x24\x00\x00\x00WEBPVP8 " + bytes(44), WEBP),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm\x42\x87\x81\x04" + bytes(40), WEBM),
        (mp4(64), MP4),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x88matroska" + bytes(40), None),  # MKV is not WebM
        ((24).to_bytes(4, "big") + b"ftypheic\x00\x00\x00\x00mif1heic" + bytes(40), None),  # HEIC still
        ((20).to_bytes(4, "big") + b"ftypqt  \x00\x00\x02\x00qt  " + bytes(44), None),  # QuickTime
        (b"%PDF-1.7\n" + bytes(55), None),
        (b"plain text, no magic at all" + bytes(37), None),
        (b"", None),
    ],
)
def test_sniffer_accepts_only_the_evidence_formats(head: bytes, expected: str | None) -> None:
    assert sniff_content_type(head) == expected


def test_ref_payload_is_small_json_and_round_trips() -> None:
    ref = EvidenceRef(
        evidence_id=service.new_evidence_id(),
        bucket="sunshine-evidence",
        key=content_key("ab" * 32),
        version_id="v1",
        sha256="ab" * 32,
        sm3="cd" * 32,
        size=123,
        content_type=JPEG,
        stored_at=datetime(2026, 3, 2, 11, 30, 1, tzinfo=UTC),
    )
    payload = json.loads(json.dumps(ref.to_payload()))
    assert EvidenceRef.from_payload(payload) == ref
    assert ref.key == f"sha256/ab/ab/{'ab' * 32}"


def test_evidence_ids_are_time_ordered_uuid7() -> None:
    ids = [service.new_evidence_id() for _ in range(50)]
    assert all(i.version == 7 for i in ids)
    assert [i.bytes[:6] for i in ids] == sorted(i.bytes[:6] for i in ids)


# Against SeaweedFS and PostgreSQL


@integration
def test_put_records_both_digests_of_the_exact_bytes(
    evidence_store: EvidenceStore, minio_client: Minio, db_engine: Engine
) -> None:
    data = jpeg(3_000_001)
    ref = put(evidence_store, chunked(data, 70_000), actor_role="system", unit="vision-worker")

    assert ref.sha256 == hashlib.sha256(data).hexdigest()
    assert ref.sm3 == hashlib.new("sm3", data).hexdigest()
    assert (ref.size, ref.content_type, ref.key) == (len(data), JPEG, content_key(ref.sha256))
    assert ref.version_id

    stored = minio_client.get_object(ref.bucket, ref.key, version_id=ref.version_id)
    assert stored.read() == data
    assert stored.headers["Content-Type"] == JPEG

    [row] = evidence_rows(db_engine)
    assert (row.id, row.sha256, row.sm3, row.size, row.version_id) == (
        ref.evidence_id,
        ref.sha256,
        ref.sm3,
        ref.size,
        ref.version_id,
    )
    assert row.collection_method == "ai_capture"
    assert row.source == CAMERA_SOURCE
    assert row.captured_at == datetime(2026, 3, 2, 11, 30, tzinfo=UTC)
    [collected] = custody(db_engine, ref.evidence_id)
    assert (collected.action, collected.actor, collected.actor_role, collected.unit) == (
        "collected",
        "system:vision",
        "system",
        "vision-worker",
    )
    assert collected.detail["collection_method"] == "ai_capture"


@integration
def test_put_reads_a_binary_file(evidence_store: EvidenceStore) -> None:
    data = png(2_500_000)
    ref = put(evidence_store, io.BytesIO(data), collection_method=CollectionMethod.upload, actor="user:alice")
    assert (ref.sha256, ref.content_type) == (hashlib.sha256(data).hexdigest(), PNG)


@integration
def test_evidence_is_locked_in_compliance_mode(evidence_store: EvidenceStore, minio_client: Minio) -> None:
    before = datetime.now(UTC)
    ref = put(evidence_store, mp4(200_000))

    retention = minio_client.get_object_retention(ref.bucket, ref.key, version_id=ref.version_id)
    assert retention is not None and retention.mode == COMPLIANCE
    assert retention.retain_until_date is not None
    expected_until = before + timedelta(days=evidence_store.retention_days)
    assert abs(retention.retain_until_date - expected_until) < timedelta(minutes=1)

    with pytest.raises(S3Error):
        minio_client.remove_object(ref.bucket, ref.key, version_id=ref.version_id)
    with pytest.raises(S3Error):  # COMPLIANCE: not even shortened
        minio_client.set_object_retention(
            ref.bucket, ref.key, Retention(COMPLIANCE, before + timedelta(hours=1)), version_id=ref.version_id
        )
    assert minio_client.get_object(ref.bucket, ref.key, version_id=ref.version_id).read() == mp4(200_000)
    assert minio_client.get_object_lock_config(ref.bucket).mode == COMPLIANCE  # the bucket default too


@integration
def test_the_same_bytes_again_are_one_record_and_one_object(
    evidence_store: EvidenceStore, minio_client: Minio, db_engine: Engine
) -> None:
    data = jpeg(500_000)
    first = put(evidence_store, data)
    retry = put(evidence_store, chunked(data, 4096))

    assert retry == first
    assert len(evidence_rows(db_engine)) == 1
    assert len(object_versions(minio_client, evidence_store.bucket)) == 1
    # A retry of the same submission adds nothing to the custody log …
    assert [e.action for e in custody(db_engine, first.evidence_id)] == ["collected"]

    # … but another submitter handing over the same bytes is provenance, and is logged.
    other = put(evidence_store, data, collection_method=CollectionMethod.upload, actor="user:bob", source_meta={})
    assert other == first
    events = custody(db_engine, first.evidence_id)
    assert [(e.action, e.actor) for e in events] == [("collected", "system:vision"), ("collected", "user:bob")]
    assert events[1].detail["repeat_submission"] is True
    assert len(object_versions(minio_client, evidence_store.bucket)) == 1


@integration
def test_concurrent_puts_of_the_same_bytes_end_with_one_record_and_one_object(
    evidence_store: EvidenceStore, minio_client: Minio, db_engine: Engine
) -> None:
    data = mp4(1_500_000)
    start = threading.Barrier(4)
    refs: list[EvidenceRef] = []
    errors: list[BaseException] = []

    def submit() -> None:
        start.wait()
        try:
            refs.append(put(evidence_store, data))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=submit) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len(set(refs)) == 1
    [row] = evidence_rows(db_engine)
    assert row.id == refs[0].evidence_id
    assert [e.action for e in custody(db_engine, row.id)] == ["collected"]
    assert len(object_versions(minio_client, evidence_store.bucket)) == 1  # no locked duplicates
    with evidence_store.open(refs[0]) as reader:
        assert reader.read() == data and reader.verified


@integration
def test_an_object_without_record_is_reused_not_uploaded_again(
    evidence_store: EvidenceStore, minio_client: Minio, db_engine: Engine
) -> None:
    """A put that died between the upload and the record leaves a locked object: the next put adopts it."""
    from tests.fixtures.database import truncate_all

    data = jpeg(400_000)
    first = put(evidence_store, data)
    truncate_all(db_engine)

    again = put(evidence_store, data)
    assert again.evidence_id != first.evidence_id
    assert (again.key, again.version_id) == (first.key, first.version_id)
    assert len(object_versions(minio_client, evidence_store.bucket)) == 1
    assert len(evidence_rows(db_engine)) == 1


@integration
@pytest.mark.parametrize(
    ("data", "declared", "refusal"),
    [
        (b"just some text that someone uploaded\n" * 10, None, UnsupportedContent),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj << /Type /Catalog >> endobj\n" * 5, None, UnsupportedContent),
        (b"JFIF but no JPEG marker: a text file named photo.jpg" * 3, "image/jpeg", UnsupportedContent),
        (png(1000), "image/jpeg", ContentTypeMismatch),  # the bytes are PNG, the claim is JPEG
        (b"", None, UnsupportedContent),
    ],
    ids=["text", "pdf", "fake-jpeg", "png-declared-jpeg", "empty"],
)
def test_refused_content_stores_nothing(
    evidence_store: EvidenceStore,
    minio_client: Minio,
    db_engine: Engine,
    data: bytes,
    declared: str | None,
    refusal: type[Exception],
) -> None:
    with pytest.raises(refusal) as refused:
        put(evidence_store, io.BytesIO(data), declared_content_type=declared)
    assert str(refused.value)
    assert_nothing_stored(evidence_store, minio_client, db_engine)


@integration
def test_declared_type_that_agrees_is_accepted(evidence_store: EvidenceStore) -> None:
    ref = put(evidence_store, jpeg(1000), declared_content_type="image/JPEG; charset=binary")
    assert ref.content_type == JPEG


@integration
def test_oversize_stops_reading_and_stores_nothing(
    evidence_store: EvidenceStore, minio_client: Minio, db_engine: Engine
) -> None:
    consumed: list[int] = []

    def endless_video() -> Iterator[bytes]:
        yield mp4(1 << 20)
        while True:
            consumed.append(1)
            yield random.randbytes(1 << 20)

    with pytest.raises(EvidenceTooLarge, match=str(evidence_store.max_bytes)):
        put(evidence_store, endless_video())
    assert len(consumed) == evidence_store.max_bytes // (1 << 20)  # stopped at the first chunk past the limit
    assert_nothing_stored(evidence_store, minio_client, db_engine)

    exact = mp4(evidence_store.max_bytes)
    assert put(evidence_store, io.BytesIO(exact)).size == evidence_store.max_bytes


@integration
def test_bytes_altered_in_transit_are_refused_by_the_store(
    evidence_store: EvidenceStore, minio_client: Minio, db_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The PUT carries the SHA-256 taken at ingest; the object store refuses bytes that differ from it."""
    original_chunks = _Spool.chunks

    def flipped_chunks(spool: _Spool) -> Iterator[bytes]:
        for index, chunk in enumerate(original_chunks(spool)):
            yield bytes([chunk[0] ^ 0xFF]) + chunk[1:] if index == 1 else chunk

    monkeypatch.setattr(_Spool, "chunks", flipped_chunks)
    with pytest.raises(EvidenceIntegrityError, match="differ"):
        put(evidence_store, jpeg(3 << 20))
    assert_nothing_stored(evidence_store, minio_client, db_engine)


@integration
def test_open_streams_and_verifies(evidence_store: EvidenceStore) -> None:
    data = mp4(2_600_000)
    ref = put(evidence_store, data)
    with evidence_store.open(ref) as reader:
        assert b"".join(reader) == data
        assert reader.verified
    with evidence_store.open(EvidenceRef.from_payload(ref.to_payload())) as reader:
        assert reader.read(10) + reader.read() == data


@integration
def test_open_catches_other_bytes_under_the_same_key(evidence_store: EvidenceStore, minio_client: Minio) -> None:
    """Object Lock keeps the original version, but the key takes new versions: reading one is caught."""
    data = jpeg(1_200_000)
    ref = put(evidence_store, data)
    altered = bytearray(data)
    altered[600_000] ^= 0x01
    overwrite = minio_client.put_object(ref.bucket, ref.key, io.BytesIO(bytes(altered)), len(altered))
    assert overwrite.version_id != ref.version_id

    tampered_ref = EvidenceRef.from_payload({**ref.to_payload(), "version_id": overwrite.version_id})
    with evidence_store.open(tampered_ref) as reader, pytest.raises(EvidenceIntegrityError, match="SHA-256"):
        for _ in reader:
            pass
    with evidence_store.open(ref) as reader:  # the locked original is intact
        assert reader.read() == data


@integration
def test_open_catches_a_tampered_object_and_a_wrong_record(
    evidence_store: EvidenceStore, minio_client: Minio, evidence_bucket: str
) -> None:
    data = png(700_000)
    ref = put(evidence_store, data)

    wrong_digest = EvidenceRef.from_payload({**ref.to_payload(), "sm3": hashlib.new("sm3", b"other").hexdigest()})
    with evidence_store.open(wrong_digest) as reader, pytest.raises(EvidenceIntegrityError, match="SM3"):
        reader.read()

    elsewhere = EvidenceRef.from_payload({**ref.to_payload(), "key": content_key("0" * 64)})
    with pytest.raises(EvidenceIntegrityError, match="missing"), evidence_store.open(elsewhere):
        pass

    # An unlocked bucket, where bytes can be replaced in place: truncation and bit flips are both caught.
    plain_bucket = f"{evidence_bucket}-plain"
    minio_client.make_bucket(plain_bucket)
    minio_client.put_object(plain_bucket, ref.key, io.BytesIO(data), len(data))
    copy_ref = EvidenceRef.from_payload({**ref.to_payload(), "bucket": plain_bucket, "version_id": None})
    with evidence_store.open(copy_ref) as reader:
        assert reader.read() == data

    minio_client.put_object(plain_bucket, ref.key, io.BytesIO(data[:-1]), len(data) - 1)
    with evidence_store.open(copy_ref) as reader, pytest.raises(EvidenceIntegrityError, match="size"):
        reader.read()
    flipped = data[:-1] + bytes([data[-1] ^ 0x80])
    minio_client.put_object(plain_bucket, ref.key, io.BytesIO(flipped), len(flipped))
    with evidence_store.open(copy_ref) as reader, pytest.raises(EvidenceIntegrityError, match="SHA-256"):
        reader.read()


@integration
def test_presigned_get_serves_the_bytes_and_logs_the_view(evidence_store: EvidenceStore, db_engine: Engine) -> None:
    data = jpeg(300_000)
    ref = put(evidence_store, data)
    url = evidence_store.presigned_get(
        ref.evidence_id,
        actor="user:alice",
        actor_role="street_officer",
        unit="沙河街市场监管所",
        reason="核实预警 case 2026-0001",
    )
    assert f"versionId={ref.version_id}" in url
    response = httpx.get(url)
    assert response.status_code == 200
    assert response.content == data

    viewed = custody(db_engine, ref.evidence_id)[-1]
    assert (viewed.action, viewed.actor, viewed.actor_role, viewed.unit, viewed.reason) == (
        CustodyAction.viewed,
        "user:alice",
        "street_officer",
        "沙河街市场监管所",
        "核实预警 case 2026-0001",
    )
    assert viewed.detail["expires_in_seconds"] == evidence_store.presign_seconds


@integration
@pytest.mark.parametrize("reason", ["", "   "])
def test_presigned_get_needs_a_reason(evidence_store: EvidenceStore, db_engine: Engine, reason: str) -> None:
    ref = put(evidence_store, jpeg(10_000))
    with pytest.raises(service.ReasonRequired):
        evidence_store.presigned_get(ref.evidence_id, actor="user:alice", actor_role=None, unit=None, reason=reason)
    assert [e.action for e in custody(db_engine, ref.evidence_id)] == ["collected"]


@integration
def test_presigned_get_of_unknown_evidence(evidence_store: EvidenceStore) -> None:
    with pytest.raises(service.EvidenceNotFound):
        evidence_store.presigned_get(uuid.uuid4(), actor="user:alice", actor_role=None, unit=None, reason="audit")


@integration
def test_ensure_bucket_is_idempotent_and_refuses_an_unlocked_bucket(
    evidence_store: EvidenceStore, minio_client: Minio, db_engine: Engine, evidence_bucket: str
) -> None:
    evidence_store.ensure_bucket()
    plain_bucket = f"{evidence_bucket}-nolock"
    minio_client.make_bucket(plain_bucket)
    unlocked = EvidenceStore(
        minio_client, db_engine, bucket=plain_bucket, retention_days=1, max_bytes=1 << 20, presign_seconds=60
    )
    with pytest.raises(ObjectLockNotEnabled, match=plain_bucket):
        unlocked.ensure_bucket()


@integration
def test_the_client_upload_path_also_locks_and_records(
    minio_client: Minio, db_engine: Engine, evidence_bucket: str, tmp_path: Path
) -> None:
    store = EvidenceStore(
        minio_client,
        db_engine,
        bucket=evidence_bucket,
        retention_days=1,
        max_bytes=64 << 20,
        presign_seconds=60,
        spool_dir=tmp_path,
        sign_with_precomputed_sha256=False,
    )
    store.ensure_bucket()
    data = mp4(17 << 20)  # more than one part
    try:
        ref = put(store, chunked(data, 1 << 20))
        assert ref.sha256 == hashlib.sha256(data).hexdigest()
        retention = minio_client.get_object_retention(ref.bucket, ref.key, version_id=ref.version_id)
        assert retention is not None and retention.mode == COMPLIANCE
        with store.open(ref) as reader:
            assert reader.read() == data
    finally:
        from tests.fixtures.database import truncate_all

        truncate_all(db_engine)


@integration
def test_seaweedfs_restarts_on_its_data_and_stops_cleanly(tmp_path: Path, seaweedfs: SeaweedInstance) -> None:
    """A second instance beside the session's, started twice on one data dir."""
    spec = seaweedfs_spec(
        data_dir=tmp_path / "s3",
        port=free_port(),
        access_key="restart",
        secret_key="restart-secret-key",
        log_path=tmp_path / "seaweedfs.log",
    )
    endpoint = spec.describe["s3"].removeprefix("http://")
    with running(spec) as first:
        client = Minio(endpoint, access_key="restart", secret_key="restart-secret-key", secure=False)
        client.make_bucket("kept", object_lock=True)
        client.put_object("kept", "a", io.BytesIO(b"survives a restart"), 18)
    assert first.exit_code() is not None
    with pytest.raises(ProcessLookupError):
        os.killpg(first.pid, 0)
    with running(spec):
        assert client.get_object("kept", "a").read() == b"survives a restart"
