"""The evidence bundle (证据包): one case's evidence, proofs and 提取笔录 in a ZIP an auditor verifies offline.

Trust flows from one Ed25519 key, ``key.txt``, which the auditor compares with the bureau's published key:

- ``checkpoint.txt`` (a signed C2SP checkpoint) fixes the transparency log's root at one size;
- each evidence record is proven a leaf under that root (``proofs.json``), and each file's SHA-256, SM3 and size
  must match its record;
- ``manifest.sig`` signs ``manifest.json``'s SHA-256, which covers what is not a log leaf: the case summary, the
  custody rows and the 笔录's digest.

Every member is covered by one of these, and the unsigned ones (``proofs.json``, ``key.txt``) are accepted only in
their single canonical form, so no changed byte in any member goes unnoticed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
import zipfile
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any, BinaryIO, TypeGuard
from zoneinfo import ZoneInfo

from domain.transparency.canonical import canonical_json
from domain.transparency.custody_chain import custody_row_hash, row_label
from domain.transparency.extraction_record import render_extraction_record
from domain.transparency.merkle import InvalidProof, leaf_hash, verify_inclusion
from domain.transparency.signed_note import Checkpoint, InvalidNote, NoteSigner, NoteVerifier

FORMAT = "sunshine-evidence-bundle/1"

MANIFEST = "manifest.json"
MANIFEST_SIGNATURE = "manifest.sig"
PROOFS = "proofs.json"
CHECKPOINT = "checkpoint.txt"
KEY = "key.txt"
EXTRACTION_RECORD = "提取笔录.html"
EVIDENCE_DIR = "evidence/"
FIXED_MEMBERS = (MANIFEST, MANIFEST_SIGNATURE, CHECKPOINT, KEY, PROOFS, EXTRACTION_RECORD)

RECORD_FIELDS = ("evidence_id", "sha256", "sm3", "size", "content_type", "collection_method", "captured_at",
                 "stored_at", "source")

FILE_EXTENSIONS = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/webp": "webp",
    "video/webm": "webm",
    "video/mp4": "mp4",
    "application/pdf": "pdf",
}
DEFAULT_EXTENSION = "bin"

# A text member larger than this is refused unread, so a crafted bundle cannot exhaust the auditor's memory.
MAX_TEXT_MEMBER_BYTES = 64 * 1024 * 1024
_CHUNK_BYTES = 1024 * 1024
_BEIJING = ZoneInfo("Asia/Shanghai")
_HASH_HEX = re.compile(r"[0-9a-f]{64}")
_SIGNATURE_TEXT = re.compile(re.escape(FORMAT) + r"\nmanifest\.json sha256 ([0-9a-f]{64})\n")
_KEY_LINE = re.compile(r"[^\s+]+\+[0-9a-f]{8}\+[A-Za-z0-9+/]+=*\n")

_DateTime = tuple[int, int, int, int, int, int]

ChunkSource = Callable[[], Iterable[bytes]]
"""Opens one evidence file afresh and yields its bytes in chunks."""


class BundleError(ValueError):
    """The writer refused to produce a bundle that would not verify; the message says why."""


@dataclass(frozen=True)
class BundleEvidence:
    """One evidence record as it is a leaf of the log (``canonical_json(record)``), with its inclusion proof."""

    record: Mapping[str, Any]
    leaf_index: int
    inclusion_proof: Sequence[bytes]


@dataclass(frozen=True)
class BundleContents:
    """What a bundle holds; ``checkpoint_note`` is the signed note the inclusion proofs lead to."""

    bundle_id: str
    generated_at: datetime
    generated_by: Mapping[str, Any]  # actor, role, unit
    reason: str  # 事由
    case: Mapping[str, Any]
    evidence: Sequence[BundleEvidence]
    evidence_content: Mapping[str, ChunkSource]  # by the file's SHA-256 (hex)
    custody: Sequence[Mapping[str, Any]]
    checkpoint_note: str
    verifier_key: str


@dataclass(frozen=True)
class ReportItem:
    name: str  # the member checked, e.g. "evidence/<sha256>.jpg", "manifest.json", "custody #17"
    ok: bool
    detail: str


@dataclass(frozen=True)
class BundleReport:
    ok: bool
    items: list[ReportItem] = field(default_factory=list)

    @classmethod
    def of(cls, items: list[ReportItem]) -> BundleReport:
        return cls(ok=bool(items) and all(item.ok for item in items), items=items)

    @property
    def failures(self) -> list[ReportItem]:
        return [item for item in self.items if not item.ok]


def evidence_member(record: Mapping[str, Any]) -> str:
    """``evidence/<sha256>.<ext>``, the extension told by the record's content type."""
    content_type = str(record["content_type"]).split(";", 1)[0].strip().lower()
    return f"{EVIDENCE_DIR}{record['sha256']}.{FILE_EXTENSIONS.get(content_type, DEFAULT_EXTENSION)}"


def manifest_signature_text(manifest_sha256_hex: str) -> str:
    return f"{FORMAT}\nmanifest.json sha256 {manifest_sha256_hex}\n"


def bundle_json(value: Any) -> bytes:
    """The bundle's JSON form (pretty-printed, keys sorted, UTF-8): the only form in which proofs.json is accepted."""
    return (json.dumps(value, ensure_ascii=False, sort_keys=True, indent=2, allow_nan=False) + "\n").encode("utf-8")


# ----- writer ----------------------------------------------------------------------------------------------------


def write_bundle(out: BinaryIO, *, contents: BundleContents, signer: NoteSigner) -> None:
    """Write the bundle ZIP to ``out``; BundleError (before or while writing) when it would not verify.

    ``signer`` must hold the key that signed the checkpoint; it signs the manifest. Evidence is streamed from
    ``contents.evidence_content`` and checked against its record on the way, so a store that returns other bytes
    than it recorded stops the export instead of producing a bundle that fails verification.
    """
    if signer.verifier_key() != contents.verifier_key:
        raise BundleError("the signer's key is not the verifier key that signed the checkpoint")
    if contents.generated_at.tzinfo is None:
        raise BundleError("generated_at needs a time zone")
    checkpoint = _signed_checkpoint(contents)
    entries, proof_items = _evidence_entries(contents.evidence, checkpoint)
    missing = {entry["record"]["sha256"] for entry in entries} - set(contents.evidence_content)
    if missing:
        raise BundleError(f"no content for evidence {sorted(missing)[0]}")
    _check_custody_rows(contents.custody)
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "bundle_id": contents.bundle_id,
        "generated_at": contents.generated_at.isoformat(),
        "generated_by": dict(contents.generated_by),
        "reason": contents.reason,
        "case": contents.case,
        "evidence": entries,
        "custody": [dict(row) for row in contents.custody],
        "log": {"origin": checkpoint.origin, "tree_size": checkpoint.size, "root_hash": checkpoint.root_hash.hex()},
    }
    try:
        manifest = json.loads(bundle_json(manifest))  # the manifest as the verifier will read it
    except (TypeError, ValueError) as error:
        raise BundleError(f"the manifest is not plain JSON: {error}") from None
    extraction_record = render_extraction_record(manifest).encode("utf-8")
    manifest["files"] = {EXTRACTION_RECORD: hashlib.sha256(extraction_record).hexdigest()}
    manifest_bytes = bundle_json(manifest)
    proofs = {"tree_size": checkpoint.size, "root_hash": checkpoint.root_hash.hex(), "items": proof_items}
    signature = signer.sign(manifest_signature_text(hashlib.sha256(manifest_bytes).hexdigest()))

    moment = contents.generated_at.astimezone(_BEIJING)  # ZIP times are local wall-clock times
    date_time = (moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second)
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in (
            (MANIFEST, manifest_bytes),
            (MANIFEST_SIGNATURE, signature.encode("utf-8")),
            (CHECKPOINT, contents.checkpoint_note.encode("utf-8")),
            (KEY, f"{contents.verifier_key}\n".encode()),
            (PROOFS, bundle_json(proofs)),
            (EXTRACTION_RECORD, extraction_record),
        ):
            info = zipfile.ZipInfo(name, date_time=date_time)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
        written: set[str] = set()
        for entry in entries:
            if entry["file"] not in written:
                _write_evidence(archive, entry, contents.evidence_content[entry["record"]["sha256"]], date_time)
                written.add(entry["file"])


def _signed_checkpoint(contents: BundleContents) -> Checkpoint:
    try:
        verifier = NoteVerifier.from_verifier_key(contents.verifier_key)
        return Checkpoint.parse(verifier.verify(contents.checkpoint_note))
    except (InvalidNote, ValueError) as error:
        raise BundleError(f"the checkpoint note does not verify with the verifier key: {error}") from None


def _evidence_entries(
    evidence: Sequence[BundleEvidence], checkpoint: Checkpoint
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    entries: list[dict[str, Any]] = []
    proof_items: list[dict[str, Any]] = []
    seen: set[str] = set()
    for item in evidence:
        try:
            record = json.loads(bundle_json(item.record))  # as the verifier will read it back
            problem = _record_problem(record)
            leaf = leaf_hash(canonical_json(record))
        except (TypeError, ValueError) as error:
            raise BundleError(f"evidence record is not plain JSON: {error}") from None
        if problem:
            raise BundleError(f"evidence {record.get('evidence_id')!r}: {problem}")
        if record["evidence_id"] in seen:
            raise BundleError(f"evidence {record['evidence_id']} is listed twice")
        seen.add(record["evidence_id"])
        try:
            verify_inclusion(leaf, item.leaf_index, checkpoint.size, item.inclusion_proof, checkpoint.root_hash)
        except InvalidProof as error:
            raise BundleError(f"evidence {record['evidence_id']} is not proven in the checkpoint: {error}") from None
        entries.append({"record": record, "leaf_index": item.leaf_index, "file": evidence_member(record)})
        proof_items.append({
            "evidence_id": record["evidence_id"],
            "leaf_index": item.leaf_index,
            "leaf_hash": leaf.hex(),
            "inclusion_proof": [sibling.hex() for sibling in item.inclusion_proof],
        })
    return entries, proof_items


def _check_custody_rows(rows: Sequence[Mapping[str, Any]]) -> None:
    for position, row in enumerate(rows):
        prev_hash = row.get("prev_hash")
        try:
            holds = isinstance(prev_hash, str) and row.get("row_hash") == custody_row_hash(prev_hash, row)
        except (TypeError, ValueError):
            holds = False
        if not holds:
            raise BundleError(f"{row_label(row, position)}: its row_hash does not hold; the custody log needs a look")


def _write_evidence(
    archive: zipfile.ZipFile, entry: Mapping[str, Any], chunks: ChunkSource, date_time: _DateTime
) -> None:
    record = entry["record"]
    info = zipfile.ZipInfo(entry["file"], date_time=date_time)
    info.compress_type = zipfile.ZIP_STORED
    info.file_size = record["size"]  # tells zipfile beforehand whether the entry needs ZIP64
    digests = _Digests()
    with archive.open(info, "w") as member:
        for chunk in chunks():
            digests.update(chunk)
            member.write(chunk)
    problem = digests.mismatch(record)
    if problem:
        raise BundleError(f"the stored content of evidence {record['evidence_id']} {problem}")


# ----- verifier --------------------------------------------------------------------------------------------------


def verify_bundle(
    path_or_file: str | os.PathLike[str] | IO[bytes], *, trusted_key: str | None = None
) -> BundleReport:
    """Check a bundle offline, one ReportItem per check; problems are failed items, never exceptions.

    Without ``trusted_key`` the bundle's own key.txt is used, and its item says to compare it with the bureau's
    published key: a bundle re-signed whole by someone else's key only shows in that comparison.
    """
    items: list[ReportItem] = []
    try:
        archive = zipfile.ZipFile(path_or_file)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as error:
        items.append(ReportItem("bundle", False, f"not a readable ZIP file: {error}"))
        return BundleReport.of(items)
    with archive:
        _Verification(archive, items, trusted_key).run()
    return BundleReport.of(items)


class _Malformed(ValueError):
    """A member's content is not what the format says; the message says where."""


class _Verification:
    def __init__(self, archive: zipfile.ZipFile, items: list[ReportItem], trusted_key: str | None) -> None:
        self.archive = archive
        self.items = items
        self.trusted_key = trusted_key
        self.members: dict[str, zipfile.ZipInfo] = {}
        self.checkpoint: Checkpoint | None = None

    def passed(self, name: str, detail: str) -> None:
        self.items.append(ReportItem(name, True, detail))

    def failed(self, name: str, detail: str) -> None:
        self.items.append(ReportItem(name, False, detail))

    def run(self) -> None:
        self._index_members()
        verifier = self._check_key()
        self.checkpoint = self._check_checkpoint(verifier)
        manifest_bytes = self._read(MANIFEST)
        self._check_manifest_signature(verifier, manifest_bytes)
        manifest = self._parse_manifest(manifest_bytes)
        expected = set(FIXED_MEMBERS)
        if manifest is not None:
            self._check_log_section(manifest)
            proof_items = self._parse_proofs(len(manifest["evidence"]))
            expected |= self._check_evidence(manifest, proof_items)
            self._check_custody(manifest["custody"])
            expected |= self._check_listed_files(manifest["files"])
        self._check_unexpected_members(expected, evidence_known=manifest is not None)

    # ----- members

    def _index_members(self) -> None:
        counts: dict[str, int] = {}
        for info in self.archive.infolist():
            counts[info.filename] = counts.get(info.filename, 0) + 1
            self.members[info.filename] = info
        for name, count in counts.items():
            if count > 1:
                self.failed(name, f"appears {count} times in the ZIP: which copy is meant is ambiguous")

    def _read(self, name: str) -> bytes | None:
        """A text member's bytes, or None (reported) when missing or unreadable."""
        info = self.members.get(name)
        if info is None:
            self.failed(name, "missing from the bundle")
            return None
        if info.file_size > MAX_TEXT_MEMBER_BYTES:
            self.failed(name, f"is {info.file_size} bytes, more than a bundle's text member may be")
            return None
        try:
            return self.archive.read(info)
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError, RuntimeError) as error:
            self.failed(name, f"cannot be read from the ZIP: {error}")
            return None

    def _read_text(self, name: str) -> str | None:
        data = self._read(name)
        if data is None:
            return None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            self.failed(name, "is not UTF-8 text")
            return None

    def _check_unexpected_members(self, expected: set[str], *, evidence_known: bool) -> None:
        for name in self.members:
            if name in expected or (not evidence_known and name.startswith(EVIDENCE_DIR)):
                continue
            self.failed(name, "unexpected member: the manifest does not list it")

    # ----- key and signatures

    def _check_key(self) -> NoteVerifier | None:
        text = self._read_text(KEY)
        bundle_key = None
        if text is not None:
            if _KEY_LINE.fullmatch(text):
                bundle_key = text[:-1]
            else:
                self.failed(KEY, "is not one verifier key line (name+keyid+key, then a newline)")
        if self.trusted_key is not None:
            key = self.trusted_key.strip()
            if bundle_key is not None and bundle_key != key:
                self.failed(KEY, f"{bundle_key.split('+', 1)[0]} is not the trusted key; the bundle is checked "
                                 "against the trusted key")
            elif bundle_key is not None:
                self.passed(KEY, f"matches the trusted key {key.split('+', 1)[0]}")
            source = "the trusted key"
        elif bundle_key is not None:
            key, source = bundle_key, "key.txt"
            self.passed(KEY, f"taken from the bundle, not checked against a trusted key: compare {bundle_key} with "
                             "the bureau's published verifier key")
        else:
            return None
        try:
            return NoteVerifier.from_verifier_key(key)
        except (InvalidNote, ValueError) as error:
            self.failed(KEY if source == "key.txt" else "trusted key", f"is not a usable verifier key: {error}")
            return None

    def _verified_note(self, name: str, verifier: NoteVerifier | None) -> str | None:
        note = self._read_text(name)
        if note is None:
            return None
        if verifier is None:
            self.failed(name, "not verified: there is no usable verifier key")
            return None
        try:
            text = verifier.verify(note)
        except InvalidNote as error:
            self.failed(name, f"signature does not verify with {verifier.name}'s key: {error}")
            return None
        if not _signatures_in_canonical_base64(note):
            self.failed(name, "a signature line is not in canonical base64 (it was edited)")
            return None
        return text

    def _check_checkpoint(self, verifier: NoteVerifier | None) -> Checkpoint | None:
        text = self._verified_note(CHECKPOINT, verifier)
        if text is None or verifier is None:
            return None
        try:
            checkpoint = Checkpoint.parse(text)
        except (InvalidNote, ValueError) as error:
            self.failed(CHECKPOINT, f"is signed but not a checkpoint: {error}")
            return None
        self.passed(CHECKPOINT, f"signed by {verifier.name}: log {checkpoint.origin}, size {checkpoint.size}, "
                                f"root {checkpoint.root_hash.hex()}")
        return checkpoint

    def _check_manifest_signature(self, verifier: NoteVerifier | None, manifest_bytes: bytes | None) -> None:
        text = self._verified_note(MANIFEST_SIGNATURE, verifier)
        if text is None or verifier is None:
            return
        signed = _SIGNATURE_TEXT.fullmatch(text)
        if signed is None:
            self.failed(MANIFEST_SIGNATURE, f"is signed but does not name a {FORMAT} manifest digest")
            return
        self.passed(MANIFEST_SIGNATURE, f"signed by {verifier.name}")
        if manifest_bytes is None:
            return
        actual = hashlib.sha256(manifest_bytes).hexdigest()
        if actual == signed.group(1):
            self.passed(MANIFEST, f"SHA-256 {actual} is the digest signed in manifest.sig")
        else:
            self.failed(MANIFEST, f"SHA-256 {actual} is not the digest signed in manifest.sig: the manifest was "
                                  "altered")

    # ----- manifest

    def _parse_manifest(self, manifest_bytes: bytes | None) -> dict[str, Any] | None:
        if manifest_bytes is None:
            return None
        try:
            manifest = _json_object(manifest_bytes)
            if manifest.get("format") != FORMAT:
                raise _Malformed(f"format is {manifest.get('format')!r}, not {FORMAT}")
            _check_manifest_shape(manifest)
        except _Malformed as error:
            self.failed(MANIFEST, str(error))
            return None
        self.passed(MANIFEST, f"{FORMAT}, bundle {manifest['bundle_id']}: {len(manifest['evidence'])} evidence "
                              f"item(s), {len(manifest['custody'])} custody row(s)")
        return manifest

    def _check_log_section(self, manifest: Mapping[str, Any]) -> None:
        if self.checkpoint is None:
            return
        log, checkpoint = manifest["log"], self.checkpoint
        if (log["origin"], log["tree_size"], log["root_hash"]) == (
            checkpoint.origin, checkpoint.size, checkpoint.root_hash.hex()
        ):
            self.passed(MANIFEST, "its log section names the checkpoint's origin, size and root")
        else:
            self.failed(MANIFEST, f"its log section (size {log['tree_size']}, root {log['root_hash']}) is not the "
                                  "checkpoint's")

    def _parse_proofs(self, evidence_count: int) -> list[dict[str, Any]] | None:
        data = self._read(PROOFS)
        if data is None:
            return None
        try:
            proofs = _json_object(data)
            if data != bundle_json(proofs):
                raise _Malformed("is not in the bundle's canonical JSON form (it was edited)")
            _check_proofs_shape(proofs)
        except _Malformed as error:
            self.failed(PROOFS, str(error))
            return None
        checkpoint = self.checkpoint
        if checkpoint is None:
            self.failed(PROOFS, "not checked: there is no verified checkpoint to check the proofs against")
            return None
        if (proofs["tree_size"], proofs["root_hash"]) != (checkpoint.size, checkpoint.root_hash.hex()):
            self.failed(PROOFS, f"tree size {proofs['tree_size']} and root {proofs['root_hash']} are not the "
                                "checkpoint's")
            return None
        if len(proofs["items"]) != evidence_count:
            self.failed(PROOFS, f"holds {len(proofs['items'])} proof(s) for {evidence_count} evidence item(s)")
            return None
        self.passed(PROOFS, f"{evidence_count} proof(s) against the checkpoint's size and root")
        return list(proofs["items"])

    # ----- evidence

    def _check_evidence(self, manifest: Mapping[str, Any], proof_items: list[dict[str, Any]] | None) -> set[str]:
        files: set[str] = set()
        file_digests: dict[str, _Digests | str] = {}  # a file listed twice is read once
        seen_ids: set[str] = set()
        for position, entry in enumerate(manifest["evidence"]):
            record, name = entry["record"], entry["file"]
            files.add(name)
            problem = _record_problem(record)
            if problem is None and record["evidence_id"] in seen_ids:
                problem = f"evidence {record['evidence_id']} is listed twice"
            if problem is None and name != evidence_member(record):
                problem = f"file name {name} does not match the record's SHA-256 and content type"
            if problem:
                self.failed(MANIFEST, f"evidence item {position + 1}: {problem}")
                continue
            seen_ids.add(record["evidence_id"])
            if name not in file_digests:
                file_digests[name] = self._digest_file(name, read_limit=record["size"] + 1)
            self._check_content(name, record, file_digests[name])
            if proof_items is not None:
                self._check_inclusion(entry, proof_items[position])
        return files

    def _digest_file(self, name: str, *, read_limit: int) -> _Digests | str:
        """The file's digests, or why they could not be taken; reading stops past ``read_limit`` bytes."""
        if name not in self.members:
            return "missing from the bundle"
        digests = _Digests()
        try:
            with self.archive.open(self.members[name]) as member:
                while digests.size < read_limit and (chunk := member.read(_CHUNK_BYTES)):
                    digests.update(chunk)
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError, RuntimeError) as error:
            return f"cannot be read from the ZIP: {error}"
        return digests

    def _check_content(self, name: str, record: Mapping[str, Any], digests: _Digests | str) -> None:
        evidence = f"evidence {record['evidence_id']}"
        problem = digests if isinstance(digests, str) else digests.mismatch(record)
        if problem:
            self.failed(name, f"{problem} ({evidence})")
            return
        assert isinstance(digests, _Digests)
        sm3_note = "SM3" if digests.sm3 is not None else "SM3 not checked: this Python's OpenSSL lacks it"
        self.passed(name, f"SHA-256, {sm3_note} and size ({digests.size} bytes) match the record of {evidence}")

    def _check_inclusion(self, entry: Mapping[str, Any], proof: Mapping[str, Any]) -> None:
        record, checkpoint = entry["record"], self.checkpoint
        assert checkpoint is not None  # proofs are only parsed against a verified checkpoint
        label = f"evidence {record['evidence_id']} (leaf {entry['leaf_index']})"
        leaf = leaf_hash(canonical_json(record))
        if proof["evidence_id"] != record["evidence_id"] or proof["leaf_index"] != entry["leaf_index"]:
            self.failed(PROOFS, f"{label}: the proof is for evidence {proof['evidence_id']} at leaf "
                                f"{proof['leaf_index']}")
            return
        if proof["leaf_hash"] != leaf.hex():
            self.failed(PROOFS, f"{label}: leaf hash {proof['leaf_hash']} is not the hash of the manifest's record")
            return
        try:
            verify_inclusion(leaf, entry["leaf_index"], checkpoint.size,
                             [bytes.fromhex(sibling) for sibling in proof["inclusion_proof"]], checkpoint.root_hash)
        except InvalidProof as error:
            self.failed(PROOFS, f"{label}: {error}")
            return
        self.passed(PROOFS, f"{label}: the record is in the log of size {checkpoint.size} under the signed root")

    # ----- custody and listed files

    def _check_custody(self, rows: Sequence[Mapping[str, Any]]) -> None:
        row_hashes = {row["seq"]: row.get("row_hash") for row in rows if _is_int(row.get("seq"))}
        for position, row in enumerate(rows):
            label = row_label(row, position)
            prev_hash, seq = row.get("prev_hash"), row.get("seq")
            try:
                expected = custody_row_hash(prev_hash, row) if isinstance(prev_hash, str) else None
            except (TypeError, ValueError):
                expected = None
            if expected is None:
                self.failed(label, "prev_hash is not a SHA-256 hash, or a field is not JSON")
            elif row.get("row_hash") != expected:
                self.failed(label, "row_hash does not match the row's fields and prev_hash (the row was edited)")
            elif _is_int(seq) and row_hashes.get(seq - 1, prev_hash) != prev_hash:
                self.failed(label, f"prev_hash does not link to custody #{seq - 1} in this bundle")
            else:
                self.passed(label, f"{row.get('action')} by {row.get('actor')} at {row.get('at')}: row hash holds")

    def _check_listed_files(self, files: Mapping[str, str]) -> set[str]:
        if EXTRACTION_RECORD not in files:
            self.failed(EXTRACTION_RECORD, "manifest.json does not list its digest")
        for name, digest in files.items():
            if name in (MANIFEST, MANIFEST_SIGNATURE) or name.startswith(EVIDENCE_DIR):
                self.failed(MANIFEST, f"files lists {name}, which has its own check")
                continue
            data = self._read(name)
            if data is None:
                continue
            actual = hashlib.sha256(data).hexdigest()
            if actual == digest:
                self.passed(name, f"SHA-256 {actual} is the digest listed in manifest.json")
            else:
                self.failed(name, f"SHA-256 {actual} is not the digest {digest} listed in manifest.json: the file was "
                                  "altered")
        return set(files)


# ----- shared checks ---------------------------------------------------------------------------------------------


class _Digests:
    """SHA-256, SM3 and size of a stream; SM3 is None where the local OpenSSL lacks it."""

    def __init__(self) -> None:
        self.sha256 = hashlib.sha256()
        try:
            self.sm3: Any = hashlib.new("sm3")
        except ValueError:
            self.sm3 = None
        self.size = 0

    def update(self, chunk: bytes) -> None:
        self.sha256.update(chunk)
        if self.sm3 is not None:
            self.sm3.update(chunk)
        self.size += len(chunk)

    def mismatch(self, record: Mapping[str, Any]) -> str | None:
        """What differs from the record, or None."""
        if self.size != record["size"]:
            return f"is {self.size} bytes, the record says {record['size']}"
        if self.sha256.hexdigest() != record["sha256"]:
            return f"SHA-256 {self.sha256.hexdigest()} is not the recorded {record['sha256']}"
        if self.sm3 is not None and self.sm3.hexdigest() != record["sm3"]:
            return f"SM3 {self.sm3.hexdigest()} is not the recorded {record['sm3']}"
        return None


def _signatures_in_canonical_base64(note: str) -> bool:
    """Whether each signature decodes and re-encodes to itself.

    Base64 leaves the last character's low bits unused, and the note parser (like Go's) ignores them; a bundle
    wants every byte of a member to matter, so it asks for the one canonical spelling.
    """
    for line in note[note.rfind("\n\n") + 2 :].splitlines():
        encoded = line.rpartition(" ")[2]
        try:
            if base64.b64encode(base64.b64decode(encoded, validate=True)).decode("ascii") != encoded:
                return False
        except (binascii.Error, ValueError):
            return False
    return True


def _record_problem(record: Any) -> str | None:
    if not isinstance(record, dict):
        return "the record is not an object"
    absent = [name for name in RECORD_FIELDS if name not in record]
    if absent:
        return f"the record lacks {', '.join(absent)}"
    if not isinstance(record["evidence_id"], str) or not record["evidence_id"]:
        return "evidence_id is not text"
    for digest in ("sha256", "sm3"):
        if not isinstance(record[digest], str) or not _HASH_HEX.fullmatch(record[digest]):
            return f"{digest} is not 64 lowercase hexadecimal digits"
    if not _is_int(record["size"]) or record["size"] < 0:
        return "size is not a byte count"
    if not isinstance(record["content_type"], str):
        return "content_type is not text"
    if not isinstance(record["source"], dict):
        return "source is not an object"
    return None


def _json_object(data: bytes) -> dict[str, Any]:
    try:
        value = json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise _Malformed(f"is not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise _Malformed("is not a JSON object")
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _check_manifest_shape(manifest: Mapping[str, Any]) -> None:
    _expect(manifest, "bundle_id", str, "manifest")
    _expect(manifest, "generated_at", str, "manifest")
    _expect(manifest, "generated_by", dict, "manifest")
    _expect(manifest, "reason", str, "manifest")
    _expect(manifest, "case", dict, "manifest")
    for position, entry in enumerate(_expect(manifest, "evidence", list, "manifest")):
        where = f"evidence item {position + 1}"
        if not isinstance(entry, dict):
            raise _Malformed(f"{where} is not an object")
        _expect(entry, "record", dict, where)
        _expect(entry, "leaf_index", int, where)
        _expect(entry, "file", str, where)
    for position, row in enumerate(_expect(manifest, "custody", list, "manifest")):
        if not isinstance(row, dict):
            raise _Malformed(f"custody row {position + 1} is not an object")
    log = _expect(manifest, "log", dict, "manifest")
    _expect(log, "origin", str, "log")
    _expect(log, "tree_size", int, "log")
    _expect_hash(log, "root_hash", "log")
    files = _expect(manifest, "files", dict, "manifest")
    for name in files:
        _expect_hash(files, name, "files")


def _check_proofs_shape(proofs: Mapping[str, Any]) -> None:
    _expect(proofs, "tree_size", int, "proofs")
    _expect_hash(proofs, "root_hash", "proofs")
    for position, item in enumerate(_expect(proofs, "items", list, "proofs")):
        where = f"proof {position + 1}"
        if not isinstance(item, dict):
            raise _Malformed(f"{where} is not an object")
        _expect(item, "evidence_id", str, where)
        _expect(item, "leaf_index", int, where)
        _expect_hash(item, "leaf_hash", where)
        for sibling in _expect(item, "inclusion_proof", list, where):
            if not isinstance(sibling, str) or not _HASH_HEX.fullmatch(sibling):
                raise _Malformed(f"{where}: an inclusion proof hash is not 64 lowercase hexadecimal digits")


def _expect(mapping: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    value = mapping.get(key)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise _Malformed(f"{where}: {key} is missing or not {kind.__name__}")
    return value


def _expect_hash(mapping: Mapping[str, Any], key: str, where: str) -> str:
    value = mapping.get(key)
    if not isinstance(value, str) or not _HASH_HEX.fullmatch(value):
        raise _Malformed(f"{where}: {key} is not 64 lowercase hexadecimal digits")
    return value


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)
