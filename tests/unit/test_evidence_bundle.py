"""Evidence bundles verify offline, and any tampering fails a check that names the altered member."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from domain.transparency.bundle import (
    CHECKPOINT,
    EXTRACTION_RECORD,
    FIXED_MEMBERS,
    FORMAT,
    KEY,
    MANIFEST,
    MANIFEST_SIGNATURE,
    PROOFS,
    BundleContents,
    BundleError,
    BundleEvidence,
    BundleReport,
    bundle_json,
    manifest_signature_text,
    verify_bundle,
    write_bundle,
)
from domain.transparency.canonical import canonical_json
from domain.transparency.custody_chain import GENESIS_HASH, custody_row_hash
from domain.transparency.extraction_record import render_extraction_record
from domain.transparency.merkle import MemoryLog, inclusion_proof
from domain.transparency.signed_note import Checkpoint, NoteSigner, generate_signer_key

ORIGIN = "sunshine.example/evidence-log"
KEY_NAME = "sunshine.example/evidence-log"

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(0, 256, 3)) + b"\xff\xd9"
WEBM = b"\x1a\x45\xdf\xa3\x9f\x42\x82\x84webm" + bytes(range(200, 0, -2))
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(7, 130, 2))


def digests(data: bytes) -> dict[str, Any]:
    return {"sha256": hashlib.sha256(data).hexdigest(), "sm3": hashlib.new("sm3", data).hexdigest(),
            "size": len(data)}


def evidence_record(
    number: int, data: bytes, content_type: str, method: str, source: dict[str, Any]
) -> dict[str, Any]:
    return {
        "evidence_id": f"00000000-0000-4000-8000-{number:012d}",
        **digests(data),
        "content_type": content_type,
        "collection_method": method,
        "captured_at": f"2025-03-0{number % 9 + 1}T02:15:{number:02d}+00:00",
        "stored_at": f"2025-03-0{number % 9 + 1}T02:16:00+00:00",
        "source": source,
    }


CASE_FILES: dict[str, tuple[bytes, str, str, dict[str, Any]]] = {
    "jpg": (JPEG, "image/jpeg", "ai_capture",
            {"camera": {"id": 12, "name": "后厨专间 1 号"}, "model": {"name": "kitchen-hygiene", "version": "3.1",
             "sha256": "ab" * 32}, "boxes": [{"x": 0.1, "y": 0.2, "w": 0.3, "h": 0.4}]}),
    "webm": (WEBM, "video/webm", "platform_extraction", {"camera": {"id": 12, "name": "后厨专间 1 号"}}),
    "png": (PNG, "image/png", "upload", {"uploader": {"username": "merchant_li"}}),
}


def custody_chain(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A database's custody chain of 40 rows; the case's rows are #17, #18 and #40."""
    rows: list[dict[str, Any]] = []
    prev_hash = GENESIS_HASH
    case_rows = {17: (records[0], "collected"), 18: (records[0], "viewed"), 40: (records[-1], "exported")}
    for seq in range(1, 41):
        record, action = case_rows.get(seq, ({"evidence_id": f"other-{seq}"}, "viewed"))
        fields = {
            "seq": seq, "evidence_id": record["evidence_id"], "action": action,
            "at": f"2025-03-05T0{seq % 10}:00:00+00:00", "actor": f"user:officer{seq % 4}", "actor_role": "officer",
            "unit": "示例区市场监督管理局", "reason": "预警核查" if seq != 40 else "移送立案", "detail": {"n": seq},
        }
        row_hash = custody_row_hash(prev_hash, fields)
        rows.append({**fields, "prev_hash": prev_hash, "row_hash": row_hash})
        prev_hash = row_hash
    return [rows[16], rows[17], rows[39]]


@dataclass(frozen=True)
class Built:
    data: bytes
    key: str
    signer: NoteSigner
    contents: BundleContents
    log: MemoryLog


def chunks_of(data: bytes) -> Callable[[], Iterator[bytes]]:
    def chunks() -> Iterator[bytes]:
        for start in range(0, len(data), 50):
            yield data[start : start + 50]
    return chunks


def build(
    signer: NoteSigner, case_files: dict[str, tuple[bytes, str, str, dict[str, Any]]] = CASE_FILES, **changes: Any
) -> Built:
    log = MemoryLog()
    for number in range(5):  # other cases' evidence, before and between this case's
        log.append(canonical_json({"evidence_id": f"unrelated-{number}", "sha256": f"{number:064x}"}))
    records = [evidence_record(number, *spec) for number, spec in enumerate(case_files.values(), start=1)]
    indexes = []
    for record in records:
        indexes.append(log.append(canonical_json(record)))
        log.append(canonical_json({"evidence_id": f"later-{len(indexes)}"}))
    size = log.size
    checkpoint = signer.sign(Checkpoint(ORIGIN, size, log.root(size)).body())
    contents = BundleContents(
        bundle_id="EB-2025-0001",
        generated_at=datetime(2025, 3, 6, 1, 30, 5, tzinfo=UTC),
        generated_by={"actor": "user:officer_wang", "role": "执法人员", "unit": "示例区市场监督管理局"},
        reason="立案调查：后厨操作不规范",
        case={"case_number": "示市监立〔2025〕12号", "case_id": "alert-case-42",
              "merchant": {"name": "示例餐饮有限公司", "credit_code": "91310000MA1FL0000X",
                           "address": "示例区阳光路 1 号"}},
        evidence=[BundleEvidence(record, index, inclusion_proof(log, index, size))
                  for record, index in zip(records, indexes, strict=True)],
        evidence_content={record["sha256"]: chunks_of(spec[0])
                          for record, spec in zip(records, case_files.values(), strict=True)},
        custody=custody_chain(records),
        checkpoint_note=checkpoint,
        verifier_key=signer.verifier_key(),
    )
    contents = replace(contents, **changes)
    out = io.BytesIO()
    write_bundle(out, contents=contents, signer=signer)
    return Built(out.getvalue(), signer.verifier_key(), signer, contents, log)


@pytest.fixture(scope="module")
def signer() -> NoteSigner:
    return NoteSigner.from_signer_key(generate_signer_key(KEY_NAME))


@pytest.fixture(scope="module")
def attacker() -> NoteSigner:
    return NoteSigner.from_signer_key(generate_signer_key(KEY_NAME))


@pytest.fixture(scope="module")
def built(signer: NoteSigner) -> Built:
    return build(signer)


# ----- helpers -----------------------------------------------------------------------------------------------------


def members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def rebuild(
    data: bytes, changed: dict[str, bytes | None] | None = None, added: dict[str, bytes] | None = None
) -> bytes:
    """The bundle with members replaced (None: removed) or added, each keeping its place and compression."""
    changed = changed or {}
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            content = changed.get(info.filename, source.read(info))
            if content is not None:
                target.writestr(info, content)
        for name, content in (added or {}).items():
            target.writestr(name, content)
    return out.getvalue()


def verify(data: bytes, trusted_key: str | None = None) -> BundleReport:
    return verify_bundle(io.BytesIO(data), trusted_key=trusted_key)


def failed(report: BundleReport) -> set[str]:
    assert not report.ok
    return {item.name for item in report.failures}


def manifest_of(data: bytes) -> dict[str, Any]:
    return json.loads(members(data)[MANIFEST])


def with_manifest(data: bytes, manifest: dict[str, Any]) -> bytes:
    return rebuild(data, {MANIFEST: bundle_json(manifest)})


def evidence_names(data: bytes) -> list[str]:
    return [name for name in members(data) if name.startswith("evidence/")]


def flip(content: bytes, position: int, mask: int = 0x01) -> bytes:
    changed = bytearray(content)
    changed[position] ^= mask
    return bytes(changed)


# ----- a sound bundle ----------------------------------------------------------------------------------------------


def test_a_sound_bundle_verifies_item_by_item(built: Built) -> None:
    report = verify(built.data)
    assert report.ok, report.failures
    names = [item.name for item in report.items]
    for name in [*FIXED_MEMBERS, *evidence_names(built.data), "custody #17", "custody #18", "custody #40"]:
        assert name in names
    key_item = next(item for item in report.items if item.name == KEY)
    assert "taken from the bundle" in key_item.detail
    assert built.key in key_item.detail
    assert sum(1 for item in report.items if item.name == PROOFS) == 1 + len(CASE_FILES)


def test_a_sound_bundle_verifies_against_the_trusted_key(built: Built) -> None:
    report = verify(built.data, trusted_key=f"  {built.key}\n")
    assert report.ok, report.failures
    assert "matches the trusted key" in next(item for item in report.items if item.name == KEY).detail


def test_a_large_clip_is_streamed_and_verifies_from_a_path(signer: NoteSigner, tmp_path: Path) -> None:
    clip = WEBM + bytes(range(256)) * (3 * 4096 + 7)  # ~3 MiB: more than one read chunk
    large = build(signer, {"webm": (clip, "video/webm", "ai_capture", {"camera": "C-7"})})
    bundle = tmp_path / "large.zip"
    bundle.write_bytes(large.data)
    report = verify_bundle(str(bundle), trusted_key=large.key)
    assert report.ok, report.failures
    assert f"size ({len(clip)} bytes)" in next(item.detail for item in report.items if item.name.startswith("ev"))


def test_the_layout_follows_the_format(built: Built) -> None:
    with zipfile.ZipFile(io.BytesIO(built.data)) as archive:
        compression = {info.filename: info.compress_type for info in archive.infolist()}
    expected_files = {f"evidence/{hashlib.sha256(data).hexdigest()}.{ext}" for ext, (data, *_) in CASE_FILES.items()}
    assert set(compression) == set(FIXED_MEMBERS) | expected_files
    assert all(compression[name] == zipfile.ZIP_STORED for name in expected_files)
    assert all(compression[name] == zipfile.ZIP_DEFLATED for name in FIXED_MEMBERS)
    contents = members(built.data)
    manifest = json.loads(contents[MANIFEST])
    assert contents[MANIFEST] == bundle_json(manifest)
    assert manifest["format"] == FORMAT
    assert manifest["log"] == {"origin": ORIGIN, "tree_size": built.log.size, "root_hash": built.log.root().hex()}
    assert manifest["files"] == {EXTRACTION_RECORD: hashlib.sha256(contents[EXTRACTION_RECORD]).hexdigest()}
    assert [entry["record"] for entry in manifest["evidence"]] == [item.record for item in built.contents.evidence]
    assert contents[KEY] == f"{built.key}\n".encode()
    assert contents[CHECKPOINT] == built.contents.checkpoint_note.encode()
    signed = built.signer.sign(manifest_signature_text(hashlib.sha256(contents[MANIFEST]).hexdigest()))
    assert contents[MANIFEST_SIGNATURE] == signed.encode()
    proofs = json.loads(contents[PROOFS])
    assert (proofs["tree_size"], proofs["root_hash"]) == (built.log.size, built.log.root().hex())
    assert [item["leaf_index"] for item in proofs["items"]] == [5, 7, 9]


def test_the_extraction_record_is_a_printable_chinese_form(built: Built) -> None:
    html = members(built.data)[EXTRACTION_RECORD].decode()
    for expected in ("电子数据提取笔录", "示市监立〔2025〕12号", "示例餐饮有限公司", "91310000MA1FL0000X",
                     "示例区阳光路 1 号", "立案调查：后厨操作不规范", "2025年03月06日 09:30:05",
                     "AI 自动抓拍", "平台在线提取", "上传", "摄像头 后厨专间 1 号", "模型 kitchen-hygiene 3.1",
                     "上传人 merchant_li", "user:officer_wang", "示例区市场监督管理局", ORIGIN,
                     built.log.root().hex(), "执法人员签名", "当事人签名", "见证人签名", "size: A4"):
        assert expected in html, expected
    for _, (data, *_) in CASE_FILES.items():
        assert hashlib.sha256(data).hexdigest() in html
        assert hashlib.new("sm3", data).hexdigest() in html
    assert html.count("执法人员签名") == 2
    for external in ("http://", "https://", "<link", "src="):
        assert external not in html


def test_the_extraction_record_escapes_the_case_summary() -> None:
    html = render_extraction_record({"case": {"merchant": {"name": "<script>alert(1)</script>"}}, "evidence": []})
    assert "<script>" not in html
    assert "&lt;script&gt;" in html


# ----- tampering -------------------------------------------------------------------------------------------------


def test_a_flipped_evidence_byte_names_the_file(built: Built) -> None:
    name = evidence_names(built.data)[1]
    content = members(built.data)[name]
    assert failed(verify(rebuild(built.data, {name: flip(content, len(content) // 2)}))) == {name}


def test_truncated_evidence_names_the_file(built: Built) -> None:
    name = evidence_names(built.data)[0]
    assert failed(verify(rebuild(built.data, {name: members(built.data)[name][:-1]}))) == {name}


def test_evidence_with_bytes_appended_names_the_file(built: Built) -> None:
    name = evidence_names(built.data)[0]
    assert failed(verify(rebuild(built.data, {name: members(built.data)[name] + b"\x00"}))) == {name}


def edit_record(manifest: dict[str, Any]) -> None:
    manifest["evidence"][0]["record"]["captured_at"] = "2025-03-01T23:59:59+00:00"


def edit_case(manifest: dict[str, Any]) -> None:
    manifest["case"]["merchant"]["name"] = "另一家公司"


def edit_custody(manifest: dict[str, Any]) -> None:
    manifest["custody"][1]["actor"] = "user:someone_else"


def edit_reason(manifest: dict[str, Any]) -> None:
    manifest["reason"] = "日常检查"


@pytest.mark.parametrize(
    ("edit", "also_failing"),
    [(edit_record, {PROOFS}), (edit_case, set()), (edit_custody, {"custody #18"}), (edit_reason, set())],
)
def test_an_edited_manifest_field_fails_the_manifest_signature(
    built: Built, edit: Callable[[dict[str, Any]], None], also_failing: set[str]
) -> None:
    manifest = manifest_of(built.data)
    edit(manifest)
    assert failed(verify(with_manifest(built.data, manifest))) == {MANIFEST, *also_failing}


def test_an_edited_manifest_re_signed_by_another_key_fails(built: Built, attacker: NoteSigner) -> None:
    manifest = manifest_of(built.data)
    edit_case(manifest)
    manifest_bytes = bundle_json(manifest)
    forged_signature = attacker.sign(manifest_signature_text(hashlib.sha256(manifest_bytes).hexdigest()))
    tampered = rebuild(built.data, {MANIFEST: manifest_bytes, MANIFEST_SIGNATURE: forged_signature.encode()})
    assert failed(verify(tampered)) == {MANIFEST_SIGNATURE}


def test_a_bundle_re_signed_whole_by_another_key_fails_only_against_the_trusted_key(
    built: Built, attacker: NoteSigner
) -> None:
    manifest = manifest_of(built.data)
    edit_reason(manifest)
    manifest_bytes = bundle_json(manifest)
    forged = rebuild(built.data, {
        MANIFEST: manifest_bytes,
        MANIFEST_SIGNATURE: attacker.sign(manifest_signature_text(hashlib.sha256(manifest_bytes).hexdigest())).encode(),
        CHECKPOINT: attacker.sign(Checkpoint(ORIGIN, built.log.size, built.log.root()).body()).encode(),
        KEY: f"{attacker.verifier_key()}\n".encode(),
    })
    untrusted = verify(forged)
    assert untrusted.ok  # all a bundle can say about its own key: the key item asks for the comparison
    assert attacker.verifier_key() in next(item for item in untrusted.items if item.name == KEY).detail
    assert failed(verify(forged, trusted_key=built.key)) == {KEY, CHECKPOINT, MANIFEST_SIGNATURE, PROOFS}


def test_an_edited_extraction_record_names_it(built: Built) -> None:
    html = members(built.data)[EXTRACTION_RECORD].decode().replace("示例餐饮有限公司", "另一家公司")
    assert failed(verify(rebuild(built.data, {EXTRACTION_RECORD: html.encode()}))) == {EXTRACTION_RECORD}


def test_an_edited_extraction_record_with_its_digest_fixed_fails_the_manifest_signature(built: Built) -> None:
    html = members(built.data)[EXTRACTION_RECORD].decode().replace("示例餐饮有限公司", "另一家公司").encode()
    manifest = manifest_of(built.data)
    manifest["files"][EXTRACTION_RECORD] = hashlib.sha256(html).hexdigest()
    tampered = rebuild(built.data, {EXTRACTION_RECORD: html, MANIFEST: bundle_json(manifest)})
    assert failed(verify(tampered)) == {MANIFEST}


def test_an_altered_proof_hash_names_the_proofs(built: Built) -> None:
    proofs = json.loads(members(built.data)[PROOFS])
    sibling = proofs["items"][1]["inclusion_proof"][2]
    proofs["items"][1]["inclusion_proof"][2] = ("0" if sibling[0] != "0" else "1") + sibling[1:]
    report = verify(rebuild(built.data, {PROOFS: bundle_json(proofs)}))
    assert failed(report) == {PROOFS}
    assert "evidence 00000000-0000-4000-8000-000000000002" in report.failures[0].detail


def test_a_changed_leaf_index_in_the_proofs_names_the_proofs(built: Built) -> None:
    proofs = json.loads(members(built.data)[PROOFS])
    proofs["items"][0]["leaf_index"] = 6
    assert failed(verify(rebuild(built.data, {PROOFS: bundle_json(proofs)}))) == {PROOFS}


def test_a_changed_leaf_index_everywhere_fails_the_proof_and_the_manifest(built: Built) -> None:
    proofs = json.loads(members(built.data)[PROOFS])
    manifest = manifest_of(built.data)
    proofs["items"][0]["leaf_index"] = manifest["evidence"][0]["leaf_index"] = 6
    tampered = rebuild(built.data, {PROOFS: bundle_json(proofs), MANIFEST: bundle_json(manifest)})
    report = verify(tampered)
    assert failed(report) == {MANIFEST, PROOFS}
    assert any("leaf 6" in item.detail for item in report.failures if item.name == PROOFS)


def test_a_proof_reformatted_without_changing_its_values_still_fails(built: Built) -> None:
    proofs = json.loads(members(built.data)[PROOFS])
    assert failed(verify(rebuild(built.data, {PROOFS: json.dumps(proofs).encode()}))) == {PROOFS}


@pytest.mark.parametrize("line", [1, 2])
def test_an_edited_checkpoint_line_fails_its_signature(built: Built, line: int) -> None:
    earlier = Checkpoint(ORIGIN, built.log.size - 1, built.log.root(built.log.size - 1)).body().split("\n")
    lines = built.contents.checkpoint_note.split("\n")
    lines[line] = earlier[line]
    assert failed(verify(rebuild(built.data, {CHECKPOINT: "\n".join(lines).encode()}))) == {CHECKPOINT, PROOFS}


def test_a_changed_checkpoint_signature_byte_names_the_checkpoint(built: Built) -> None:
    note = built.contents.checkpoint_note
    signature_at = note.rindex(" ") + 10
    changed = note[:signature_at] + ("A" if note[signature_at] != "A" else "B") + note[signature_at + 1 :]
    assert failed(verify(rebuild(built.data, {CHECKPOINT: changed.encode()}))) == {CHECKPOINT, PROOFS}


@pytest.mark.parametrize("member", [CHECKPOINT, MANIFEST_SIGNATURE])
def test_a_signature_respelled_in_its_unused_base64_bits_is_named(built: Built, member: str) -> None:
    note = members(built.data)[member].decode()
    last = note.rindex("=") - 1  # its two low bits carry no signature bits
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    respelled = note[:last] + alphabet[alphabet.index(note[last]) ^ 0b11] + note[last + 1 :]
    assert base64.b64decode(respelled.rsplit(" ", 1)[1]) == base64.b64decode(note.rsplit(" ", 1)[1])
    report = verify(rebuild(built.data, {member: respelled.encode()}))
    assert member in failed(report)
    assert "canonical base64" in next(item.detail for item in report.failures if item.name == member)


def test_an_altered_manifest_signature_names_it(built: Built) -> None:
    signature = members(built.data)[MANIFEST_SIGNATURE].decode()
    at = signature.rindex(" ") + 20
    changed = signature[:at] + ("A" if signature[at] != "A" else "B") + signature[at + 1 :]
    assert failed(verify(rebuild(built.data, {MANIFEST_SIGNATURE: changed.encode()}))) == {MANIFEST_SIGNATURE}


def test_a_manifest_signature_from_another_bundle_fails_the_manifest(built: Built, signer: NoteSigner) -> None:
    other = build(signer, reason="另一案件")
    assert failed(verify(rebuild(built.data, {MANIFEST_SIGNATURE: members(other.data)[MANIFEST_SIGNATURE]}))) == {
        MANIFEST
    }


def test_a_replaced_key_fails_the_signatures_and_against_the_trusted_key(built: Built, attacker: NoteSigner) -> None:
    tampered = rebuild(built.data, {KEY: f"{attacker.verifier_key()}\n".encode()})
    assert failed(verify(tampered)) == {CHECKPOINT, MANIFEST_SIGNATURE, PROOFS}  # proofs: no checkpoint to check
    assert failed(verify(tampered, trusted_key=built.key)) == {KEY}


def test_the_wrong_trusted_key_fails(built: Built, attacker: NoteSigner) -> None:
    report = verify(built.data, trusted_key=attacker.verifier_key())
    assert failed(report) == {KEY, CHECKPOINT, MANIFEST_SIGNATURE, PROOFS}


@pytest.mark.parametrize("removed", [*FIXED_MEMBERS, "evidence"])
def test_a_removed_member_is_named(built: Built, removed: str) -> None:
    name = evidence_names(built.data)[2] if removed == "evidence" else removed
    report = verify(rebuild(built.data, {name: None}))
    assert name in failed(report)
    assert any("missing" in item.detail for item in report.failures if item.name == name)


@pytest.mark.parametrize("extra", ["evidence/" + "ab" * 32 + ".jpg", "notes.txt", "evidence/"])
def test_an_extra_member_is_named(built: Built, extra: str) -> None:
    assert failed(verify(rebuild(built.data, added={extra: b"extra"}))) == {extra}


def test_a_duplicated_member_is_named(built: Built) -> None:
    with pytest.warns(UserWarning, match="Duplicate name"):
        tampered = rebuild(built.data, added={MANIFEST: members(built.data)[MANIFEST]})
    assert failed(verify(tampered)) == {MANIFEST}


def test_an_edited_custody_row_names_the_row(built: Built) -> None:
    manifest = manifest_of(built.data)
    manifest["custody"][2]["reason"] = "日常检查"
    assert failed(verify(with_manifest(built.data, manifest))) == {MANIFEST, "custody #40"}


def test_a_re_hashed_custody_row_breaks_the_link_to_the_next(built: Built) -> None:
    manifest = manifest_of(built.data)
    row = manifest["custody"][0]
    row["actor"] = "user:someone_else"
    row["row_hash"] = custody_row_hash(row["prev_hash"], row)
    assert failed(verify(with_manifest(built.data, manifest))) == {MANIFEST, "custody #18"}


def test_custody_links_are_checked_whatever_the_rows_order(built: Built) -> None:
    manifest = manifest_of(built.data)
    manifest["custody"] = manifest["custody"][::-1]
    assert failed(verify(with_manifest(built.data, manifest))) == {MANIFEST}
    first = manifest["custody"][2]
    first["actor"] = "user:someone_else"
    first["row_hash"] = custody_row_hash(first["prev_hash"], first)
    assert manifest["custody"][1]["seq"] == 18
    assert failed(verify(with_manifest(built.data, manifest))) == {MANIFEST, "custody #18"}


# ----- malformed input -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"not a zip", b"PK\x03\x04" + b"\x00" * 40])
def test_something_not_a_zip_is_a_failed_item(data: bytes) -> None:
    report = verify(data)
    assert not report.ok
    assert [item.name for item in report.items] == ["bundle"]


def test_a_truncated_zip_is_a_failed_item(built: Built) -> None:
    assert not verify(built.data[: len(built.data) // 2]).ok
    assert not verify(built.data[:-30]).ok


@pytest.mark.parametrize("member", [MANIFEST, PROOFS])
@pytest.mark.parametrize("content", [b"{", b"[]", b"\xff\xfe", b'{"format": NaN}', b"[" * 100_000])
def test_malformed_json_is_a_failed_item(built: Built, member: str, content: bytes) -> None:
    report = verify(rebuild(built.data, {member: content}))
    assert member in failed(report)


def test_a_manifest_of_the_wrong_shape_is_a_failed_item(built: Built, signer: NoteSigner) -> None:
    manifest = manifest_of(built.data)
    manifest["evidence"][0]["record"]["size"] = "large"
    manifest["custody"][0] = "not a row"
    manifest_bytes = bundle_json(manifest)
    signature = signer.sign(manifest_signature_text(hashlib.sha256(manifest_bytes).hexdigest()))
    report = verify(rebuild(built.data, {MANIFEST: manifest_bytes, MANIFEST_SIGNATURE: signature.encode()}))
    assert failed(report) == {MANIFEST}
    assert "custody row 1 is not an object" in report.failures[0].detail


def test_a_manifest_of_another_format_is_refused(built: Built, signer: NoteSigner) -> None:
    manifest = manifest_of(built.data)
    manifest["format"] = "sunshine-evidence-bundle/2"
    manifest_bytes = bundle_json(manifest)
    signature = signer.sign(manifest_signature_text(hashlib.sha256(manifest_bytes).hexdigest()))
    report = verify(rebuild(built.data, {MANIFEST: manifest_bytes, MANIFEST_SIGNATURE: signature.encode()}))
    assert failed(report) == {MANIFEST}


# ----- every byte ------------------------------------------------------------------------------------------------

SAMPLED_POSITIONS = 200
MASKS = (0x01, 0x20, 0x80, 0x02, 0xFF)


def sampled_positions(length: int) -> list[int]:
    if length <= SAMPLED_POSITIONS:
        return list(range(length))
    step = length / (SAMPLED_POSITIONS - 40)
    edges = [*range(20), *range(length - 20, length)]
    return sorted({*edges, *(int(index * step) for index in range(SAMPLED_POSITIONS - 40))})


@pytest.mark.parametrize("member", [*FIXED_MEMBERS, "evidence 1", "evidence 2", "evidence 3"])
def test_every_flipped_byte_fails_a_check_naming_its_member(built: Built, member: str) -> None:
    contents = members(built.data)
    name = evidence_names(built.data)[int(member[-1]) - 1] if member.startswith("evidence") else member
    unnoticed = []
    for number, position in enumerate(sampled_positions(len(contents[name]))):
        tampered = rebuild(built.data, {name: flip(contents[name], position, MASKS[number % len(MASKS)])})
        report = verify(tampered, trusted_key=built.key)
        if report.ok or name not in {item.name for item in report.failures}:
            unnoticed.append(position)
        if name == KEY and verify(tampered).ok:
            unnoticed.append(position)
    assert unnoticed == []


# ----- writer refusals -------------------------------------------------------------------------------------------


def test_the_writer_refuses_content_that_is_not_the_recorded_bytes(built: Built, signer: NoteSigner) -> None:
    sha256 = built.contents.evidence[1].record["sha256"]
    content = {**built.contents.evidence_content, sha256: chunks_of(WEBM[:-1] + b"\x00")}
    with pytest.raises(BundleError, match="SHA-256"):
        build(signer, evidence_content=content)


def test_the_writer_refuses_missing_content(built: Built, signer: NoteSigner) -> None:
    with pytest.raises(BundleError, match="no content"):
        build(signer, evidence_content={})


def test_the_writer_refuses_a_proof_that_does_not_reach_the_checkpoint(built: Built, signer: NoteSigner) -> None:
    first = built.contents.evidence[0]
    evidence = [replace(first, leaf_index=first.leaf_index + 1), *built.contents.evidence[1:]]
    with pytest.raises(BundleError, match="not proven"):
        build(signer, evidence=evidence)


def test_the_writer_refuses_a_custody_row_whose_hash_does_not_hold(built: Built, signer: NoteSigner) -> None:
    custody = [*built.contents.custody[:2], {**built.contents.custody[2], "reason": "改过"}]
    with pytest.raises(BundleError, match="custody #40"):
        build(signer, custody=custody)


def test_the_writer_refuses_a_signer_other_than_the_checkpoints(built: Built, attacker: NoteSigner) -> None:
    with pytest.raises(BundleError, match="signer"):
        write_bundle(io.BytesIO(), contents=built.contents, signer=attacker)


# ----- command line ----------------------------------------------------------------------------------------------


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> Callable[..., int]:
    import infra.cli

    if "infra.cli.evidence_cmd" not in infra.cli._COMMAND_MODULES:
        monkeypatch.setattr(infra.cli, "_COMMAND_MODULES", (*infra.cli._COMMAND_MODULES, "infra.cli.evidence_cmd"))
    return lambda *args: infra.cli.main(["evidence", "verify", *args])


def test_cli_verifies_a_sound_bundle(
    built: Built, tmp_path: Path, cli: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = tmp_path / "bundle.zip"
    bundle.write_bytes(built.data)
    assert cli(str(bundle)) == 0
    out = capsys.readouterr().out
    assert f"✓ {MANIFEST}: " in out
    assert "✗" not in out
    assert out.splitlines()[-1].startswith("VERIFIED: all ")
    assert "bundle's own key" in out.splitlines()[-1]

    key_file = tmp_path / "bureau.pub"
    key_file.write_text(f"# 示例区市场监督管理局 evidence log key\n{built.key}\n")
    assert cli(str(bundle), "--key", str(key_file)) == 0
    assert "against the trusted key" in capsys.readouterr().out
    assert cli(str(bundle), "--key", built.key) == 0


def test_cli_fails_a_tampered_bundle(
    built: Built, tmp_path: Path, cli: Callable[..., int], capsys: pytest.CaptureFixture[str], attacker: NoteSigner
) -> None:
    name = evidence_names(built.data)[0]
    bundle = tmp_path / "bundle.zip"
    bundle.write_bytes(rebuild(built.data, {name: flip(members(built.data)[name], 3)}))
    assert cli(str(bundle)) == 1
    out = capsys.readouterr().out
    assert f"✗ {name}: " in out
    assert out.splitlines()[-1] == f"NOT VERIFIED: 1 of {len(verify(bundle.read_bytes()).items)} checks failed"

    sound = tmp_path / "sound.zip"
    sound.write_bytes(built.data)
    assert cli(str(sound), "--key", attacker.verifier_key()) == 1
    assert f"✗ {KEY}: " in capsys.readouterr().out


def test_cli_json_report(
    built: Built, tmp_path: Path, cli: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = tmp_path / "bundle.zip"
    bundle.write_bytes(rebuild(built.data, {EXTRACTION_RECORD: b"<p>edited</p>"}))
    assert cli(str(bundle), "--json") == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False
    assert [item["name"] for item in report["items"] if not item["ok"]] == [EXTRACTION_RECORD]


def test_cli_usage_errors_exit_2(
    built: Built, tmp_path: Path, cli: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(str(tmp_path / "missing.zip")) == 2
    assert "no bundle file" in capsys.readouterr().err
    bundle = tmp_path / "bundle.zip"
    bundle.write_bytes(built.data)
    assert cli(str(bundle), "--key", "not-a-key") == 2
    assert "--key" in capsys.readouterr().err
    two_keys = tmp_path / "two.pub"
    two_keys.write_text(f"{built.key}\n{built.key}\n")
    assert cli(str(bundle), "--key", str(two_keys)) == 2
    with pytest.raises(SystemExit) as exit_info:
        cli()
    assert exit_info.value.code == 2


def test_cli_reports_a_file_that_is_not_a_zip(tmp_path: Path, cli: Callable[..., int],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    bundle = tmp_path / "bundle.zip"
    bundle.write_text("hello")
    assert cli(str(bundle)) == 1
    assert "✗ bundle: not a readable ZIP file" in capsys.readouterr().out
