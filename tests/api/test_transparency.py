"""GET/POST /api/v1/transparency/…: the published checkpoint and key verify offline; proofs check against them;
bad proof requests are 422 naming the problem; only the auditor, the command center and the administrator issue."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from domain.evidence import service
from domain.evidence.models import CollectionMethod
from domain.transparency.merkle import leaf_hash, verify_consistency, verify_inclusion
from domain.transparency.signed_note import Checkpoint, NoteVerifier
from tests.api.conftest import World

pytestmark = pytest.mark.integration


def add_evidence(engine: Engine, count: int) -> None:
    with Session(engine) as session:
        for n in range(count):
            digest = hashlib.sha256(f"api evidence {n} {service.new_evidence_id()}".encode()).hexdigest()
            service.record_collected(
                session, evidence_id=service.new_evidence_id(), bucket="b", key=digest, version_id=None,
                sha256=digest, sm3=digest, size=n + 1, content_type="image/jpeg",
                stored_at=datetime(2026, 11, 29, tzinfo=UTC), retention_mode="COMPLIANCE",
                retain_until=datetime(2029, 11, 29, tzinfo=UTC), collection_method=CollectionMethod.upload,
                captured_at=None, source={"n": n}, actor="user:officer1")
        session.commit()


def test_checkpoints_on_demand_and_proofs_verify_against_the_published_key(
    api: TestClient, world: World, db_engine: Engine, as_user: Callable[[str], dict[str, str]],
) -> None:
    assert api.get("/api/v1/transparency/checkpoint").status_code == 404  # nothing issued yet
    verifier = NoteVerifier.from_verifier_key(api.get("/api/v1/transparency/key").text.strip())
    add_evidence(db_engine, 5)
    issued = api.post("/api/v1/transparency/checkpoint", headers=as_user("auditor"))
    assert issued.status_code == 201, issued.text
    again = api.post("/api/v1/transparency/checkpoint", headers=as_user("command"))
    assert again.status_code == 200 and again.text == issued.text  # the tree did not grow
    published = api.get("/api/v1/transparency/checkpoint")  # public, no account needed
    assert published.status_code == 200 and published.text == issued.text
    first = Checkpoint.parse(verifier.verify(published.text))
    assert first.size == 5 and first.extensions and first.extensions[0].startswith("custody ")

    proof = api.get("/api/v1/transparency/proof/inclusion", params={"leaf_index": 3, "tree_size": 5},
                    headers=as_user("officer1")).json()
    leaf = bytes.fromhex(proof["leaf_hash"])
    assert leaf == leaf_hash(proof["leaf_data"].encode())
    verify_inclusion(leaf, 3, 5, [bytes.fromhex(h) for h in proof["inclusion_proof"]], first.root_hash)

    add_evidence(db_engine, 4)
    api.post("/api/v1/transparency/checkpoint", headers=as_user("admin"))
    second = Checkpoint.parse(verifier.verify(api.get("/api/v1/transparency/checkpoint").text))
    assert second.size == 9
    consistency = api.get("/api/v1/transparency/proof/consistency", params={"first": 5, "second": 9},
                          headers=as_user("auditor")).json()
    verify_consistency(5, 9, first.root_hash, second.root_hash,
                       [bytes.fromhex(h) for h in consistency["consistency_proof"]])


def test_bad_proof_requests_name_the_problem(api: TestClient, world: World, db_engine: Engine,
                                             as_user: Callable[[str], dict[str, str]]) -> None:
    add_evidence(db_engine, 2)
    auditor = as_user("auditor")
    cases = [("/api/v1/transparency/proof/inclusion", {"leaf_index": 2, "tree_size": 2}, "not in a tree of 2"),
             ("/api/v1/transparency/proof/inclusion", {"leaf_index": 0, "tree_size": 3}, "larger than the log"),
             ("/api/v1/transparency/proof/consistency", {"first": 3, "second": 2}, "between 1 and second")]
    for path, params, reason in cases:
        response = api.get(path, params=params, headers=auditor)
        assert response.status_code == 422 and reason in response.json()["detail"], response.text
    assert api.get("/api/v1/transparency/proof/inclusion", params={"leaf_index": "x", "tree_size": 2},
                   headers=auditor).status_code == 422


@pytest.mark.parametrize("username", ["merchant1", "officer1", "brigade"])
def test_only_auditors_command_and_admin_issue_checkpoints(api: TestClient, world: World, username: str,
                                                           as_user: Callable[[str], dict[str, str]]) -> None:
    assert api.post("/api/v1/transparency/checkpoint", headers=as_user(username)).status_code == 403


def test_proofs_need_an_account(api: TestClient, world: World) -> None:
    assert api.get("/api/v1/transparency/proof/inclusion", params={"leaf_index": 0, "tree_size": 1}).status_code == 401
