"""The evidence transparency log and the custody chain in a real PostgreSQL (and, for the real ingest path, a real
SeaweedFS): every record is a leaf, roots and proofs come from the stored nodes and agree with an in-memory
reference, checkpoints are signed and self-checked, and every tamper with the tables is caught."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, col, select

from domain.evidence import service
from domain.evidence.custody_chain import verify_custody_chain
from domain.evidence.models import CollectionMethod, CustodyAction, CustodyEvent
from domain.transparency import log
from domain.transparency.merkle import InvalidProof, MemoryLog, leaf_hash, verify_consistency, verify_inclusion
from domain.transparency.models import CheckpointTimestamp, TransparencyLeaf
from domain.transparency.signed_note import Checkpoint, NoteSigner, NoteVerifier, generate_signer_key
from domain.transparency.timestamping import TimestampError, TimestampToken
from infra.checkpoints import issue_checkpoint as issue_now
from infra.evidence_store import EvidenceStore
from tests.fixtures.database import truncate_all
from tests.integration.test_evidence_store import jpeg

ORIGIN = "test.sunshine.local/evidence-log"
SIGNER = NoteSigner.from_signer_key(generate_signer_key(ORIGIN))
VERIFIER = NoteVerifier.from_verifier_key(SIGNER.verifier_key())


@pytest.fixture(autouse=True)
def empty_log(db_engine: Engine) -> Iterator[None]:
    truncate_all(db_engine)
    yield
    truncate_all(db_engine)


def record(session: Session, n: int) -> uuid.UUID:
    """An evidence record as the store writes it (without the bytes: the log only sees the record)."""
    digest = hashlib.sha256(f"evidence {n} {uuid.uuid4()}".encode()).hexdigest()
    evidence = service.record_collected(
        session, evidence_id=service.new_evidence_id(), bucket="b", key=f"sha256/{digest}", version_id="v1",
        sha256=digest, sm3=hashlib.new("sm3", digest.encode()).hexdigest(), size=100 + n, content_type="image/jpeg",
        stored_at=datetime(2026, 11, 29, 4, 0, n % 60, tzinfo=UTC), retention_mode="COMPLIANCE",
        retain_until=datetime(2029, 11, 29, tzinfo=UTC), collection_method=CollectionMethod.ai_capture,
        captured_at=datetime(2026, 11, 29, 3, 59, tzinfo=UTC),
        source={"camera_id": n, "model": {"name": "hats", "version": "1", "sha256": "a" * 64}}, actor="system:test",
    )
    return evidence.id


def seed(engine: Engine, count: int) -> list[uuid.UUID]:
    with Session(engine) as session:
        ids = [record(session, n) for n in range(count)]
        session.commit()
    return ids


def test_every_record_is_a_leaf_and_roots_and_proofs_match_the_reference(db_engine: Engine) -> None:
    seed(db_engine, 37)
    with Session(db_engine) as session:
        leaves = session.exec(select(TransparencyLeaf).order_by(col(TransparencyLeaf.leaf_index))).all()
        assert [leaf.leaf_index for leaf in leaves] == list(range(37))
        reference = MemoryLog()
        for leaf in leaves:
            reference.append(bytes(leaf.data))
            assert bytes(leaf.leaf_hash) == leaf_hash(bytes(leaf.data))
            data = log.leaf_record(leaf)
            assert data["evidence_id"] == str(leaf.evidence_id) and data["source"]["model"]["name"] == "hats"
        nodes = log.DatabaseNodes(session)
        for size in (1, 2, 5, 16, 17, 36, 37):
            root = log.root_hash(nodes, size)
            assert root == reference.root(size)
            for index in {0, size // 2, size - 1}:
                proof = log.inclusion(session, leaf_index=index, size=size)
                verify_inclusion(bytes(leaves[index].leaf_hash), index, size, proof, root)
        verify_consistency(5, 37, reference.root(5), reference.root(37), log.consistency(session, first=5, second=37))


def test_bad_proof_requests_are_refused_with_the_reason(db_engine: Engine) -> None:
    seed(db_engine, 3)
    from domain.errors import ValidationFailed

    with Session(db_engine) as session:
        for kwargs, reason in [({"leaf_index": 3, "size": 3}, "not in a tree of 3"),
                               ({"leaf_index": 0, "size": 4}, "larger than the log"),
                               ({"leaf_index": -1, "size": 2}, "must not be negative"),
                               ({"leaf_index": 0, "size": 0}, "at least 1")]:
            with pytest.raises(ValidationFailed, match=reason):
                log.inclusion(session, **kwargs)
        with pytest.raises(ValidationFailed, match="between 1 and second"):
            log.consistency(session, first=0, second=2)


def test_checkpoints_are_signed_notes_issued_only_when_the_tree_grew(db_engine: Engine) -> None:
    seed(db_engine, 4)
    with Session(db_engine) as session:
        first = log.issue_checkpoint(session, signer=SIGNER, origin=ORIGIN)
        session.commit()
        assert first is not None and first.tree_size == 4
        assert log.issue_checkpoint(session, signer=SIGNER, origin=ORIGIN) is None  # nothing new
        parsed = Checkpoint.parse(VERIFIER.verify(first.note))
        assert (parsed.origin, parsed.size, parsed.root_hash) == (ORIGIN, 4, bytes(first.root_hash))
    seed(db_engine, 3)
    with Session(db_engine) as session:
        second = log.issue_checkpoint(session, signer=SIGNER, origin=ORIGIN)
        session.commit()
        assert second is not None and second.tree_size == 7
        verify_consistency(4, 7, bytes(first.root_hash), bytes(second.root_hash),
                           log.consistency(session, first=4, second=7))


def test_concurrent_appends_build_one_consistent_tree(db_engine: Engine) -> None:
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _: seed(db_engine, 5), range(8)))
    with Session(db_engine) as session:
        leaves = session.exec(select(TransparencyLeaf).order_by(col(TransparencyLeaf.leaf_index))).all()
        assert [leaf.leaf_index for leaf in leaves] == list(range(40))
        reference = MemoryLog()
        for leaf in leaves:
            reference.append(bytes(leaf.data))
        assert log.root_hash(log.DatabaseNodes(session), 40) == reference.root()


@pytest.mark.parametrize("statement", [
    "UPDATE transparency_leaf SET data = 'x' WHERE leaf_index = 0",
    "DELETE FROM transparency_node WHERE level = 0 AND node_index = 0",
    "UPDATE custody_event SET actor = 'user:mallory'",
    "DELETE FROM custody_event",
])
def test_the_log_and_the_custody_chain_refuse_updates_and_deletes(db_engine: Engine, statement: str) -> None:
    seed(db_engine, 2)
    with Session(db_engine) as session, pytest.raises(DBAPIError, match="append-only"):
        session.execute(text(statement))


def as_superuser_attacker(engine: Engine, statement: str, table: str) -> None:
    """What only a database superuser could do: lift the trigger, change history, put the trigger back."""
    with engine.begin() as connection:
        connection.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER {table}_append_only"))
        connection.execute(text(statement))
        connection.execute(text(f"ALTER TABLE {table} ENABLE TRIGGER {table}_append_only"))


def test_a_rewritten_node_makes_the_next_checkpoint_refuse_to_sign(db_engine: Engine) -> None:
    seed(db_engine, 6)
    with Session(db_engine) as session:
        log.issue_checkpoint(session, signer=SIGNER, origin=ORIGIN)
        session.commit()
    as_superuser_attacker(db_engine, "UPDATE transparency_node SET hash = sha256('forged') "
                                     "WHERE level = 2 AND node_index = 0", "transparency_node")
    seed(db_engine, 1)
    with Session(db_engine) as session, pytest.raises(InvalidProof):
        log.issue_checkpoint(session, signer=SIGNER, origin=ORIGIN)


def custody_chain_with_views(engine: Engine) -> list[int]:
    [evidence_id] = seed(engine, 1)
    with Session(engine) as session:
        for n in range(4):
            service.record_custody(session, evidence_id=evidence_id, action=CustodyAction.viewed,
                                   actor=f"user:officer{n}", actor_role="street_officer", unit="西湖街道",
                                   reason="核查预警", detail={"n": n, "ratio": 0.5})
        session.commit()
        ids = [event.id for event in session.exec(select(CustodyEvent).order_by(col(CustodyEvent.id)))]
    return [i for i in ids if i is not None]


def test_the_custody_chain_holds_and_reports_its_head(db_engine: Engine) -> None:
    ids = custody_chain_with_views(db_engine)
    with Session(db_engine) as session:
        report = verify_custody_chain(session)
    assert report.ok, report.problems
    assert report.rows == len(ids) == 5 and report.head_seq == ids[-1]


def test_an_edited_custody_row_is_named(db_engine: Engine) -> None:
    ids = custody_chain_with_views(db_engine)
    as_superuser_attacker(db_engine, f"UPDATE custody_event SET reason = '随便看看' WHERE id = {ids[2]}",
                          "custody_event")
    with Session(db_engine) as session:
        report = verify_custody_chain(session)
    assert report.problems == [f"custody #{ids[2]}: its fields do not match its hash (the row was edited)"]


def test_a_deleted_custody_row_is_detected_in_the_middle_and_at_the_end(db_engine: Engine) -> None:
    ids = custody_chain_with_views(db_engine)
    with Session(db_engine) as session:
        head = verify_custody_chain(session)
        assert head.head_seq is not None and head.head_hash is not None
        log.issue_checkpoint(session, signer=SIGNER, origin=ORIGIN,
                             custody_head=log.CustodyHead(head.head_seq, head.head_hash))
        session.commit()
    as_superuser_attacker(db_engine, f"DELETE FROM custody_event WHERE id = {ids[2]}", "custody_event")
    with Session(db_engine) as session:
        problems = verify_custody_chain(session, anchors=iter(log.custody_anchors(session))).problems
    assert problems == [f"custody #{ids[3]}: does not link to the row before it (a row was removed or inserted)"]

    # The newest row removed: no link breaks, but the signed checkpoint named it.
    as_superuser_attacker(db_engine, f"DELETE FROM custody_event WHERE id = {ids[4]}", "custody_event")
    with Session(db_engine) as session:
        problems = verify_custody_chain(session, anchors=iter(log.custody_anchors(session))).problems
    assert f"custody #{ids[4]}, named by a signed checkpoint, is missing (rows were removed)" in problems


@pytest.mark.slow
def test_the_real_ingest_path_appends_each_new_object_once(evidence_store: EvidenceStore, db_engine: Engine) -> None:
    first = evidence_store.put(jpeg(3000, seed=11), collection_method=CollectionMethod.ai_capture,
                               actor="system:test", source_meta={"camera_id": 1})
    again = evidence_store.put(jpeg(3000, seed=11), collection_method=CollectionMethod.upload,
                               actor="user:officer", source_meta={"camera_id": 1})
    assert again.evidence_id == first.evidence_id
    with Session(db_engine) as session:
        leaf = log.leaf_of(session, first.evidence_id)
        assert session.exec(select(TransparencyLeaf)).all() == [leaf]
        data = log.leaf_record(leaf)
    assert (data["sha256"], data["sm3"], data["size"]) == (first.sha256, first.sm3, first.size)
    assert data["retain_until"] is not None and datetime.fromisoformat(data["retain_until"]) > datetime.now(UTC) + \
        timedelta(hours=1)
    with Session(db_engine) as session:
        assert verify_custody_chain(session).ok


def test_sunshine_audit_verify_custody_names_the_broken_row(
    db_engine: Engine, cli: Callable[..., int], capsys: pytest.CaptureFixture[str],
) -> None:
    ids = custody_chain_with_views(db_engine)
    assert cli("audit", "verify-custody") == 0
    assert capsys.readouterr().out.strip().startswith("INTACT: 5 custody row(s)")
    as_superuser_attacker(db_engine, f"UPDATE custody_event SET unit = '别的单位' WHERE id = {ids[1]}",
                          "custody_event")
    assert cli("audit", "verify-custody") == 1
    out = capsys.readouterr().out
    assert f"✗ custody #{ids[1]}: its fields do not match its hash (the row was edited)" in out
    assert "BROKEN (1 problem(s))" in out


class RecordingAuthority:
    """A time-stamp authority at the port: what it was asked to stamp, and a token naming it."""

    def __init__(self, *, fails: bool = False) -> None:
        self.stamped: list[bytes] = []
        self.fails = fails

    def stamp(self, data: bytes) -> TimestampToken:
        if self.fails:
            raise TimestampError("the TSA answered HTTP 503")
        self.stamped.append(data)
        return TimestampToken(der=b"TST:" + hashlib.sha256(data).digest(), gen_time=datetime.now(UTC),
                              serial_number=len(self.stamped), tsa_url="https://tsa.test/stamp")


def test_each_new_checkpoint_is_time_stamped_and_a_failing_authority_does_not_stop_it(db_engine: Engine) -> None:
    seed(db_engine, 2)
    authority = RecordingAuthority()
    issued = issue_now(db_engine, signer=SIGNER, origin=ORIGIN, authority=authority)
    assert issued is not None and issued.new and issued.timestamped
    assert authority.stamped == [issued.checkpoint.note.encode()]
    assert issue_now(db_engine, signer=SIGNER, origin=ORIGIN, authority=authority).new is False  # type: ignore[union-attr]
    assert len(authority.stamped) == 1  # nothing new, nothing stamped

    seed(db_engine, 1)
    down = issue_now(db_engine, signer=SIGNER, origin=ORIGIN, authority=RecordingAuthority(fails=True))
    assert down is not None and down.new and not down.timestamped and down.checkpoint.tree_size == 3
    with Session(db_engine) as session:
        tokens = session.exec(select(CheckpointTimestamp)).all()
    assert [(t.checkpoint_id, t.tsa_url, t.serial_number) for t in tokens] == [
        (issued.checkpoint.id, "https://tsa.test/stamp", "1")]
    assert tokens[0].token == b"TST:" + hashlib.sha256(issued.checkpoint.note.encode()).digest()
