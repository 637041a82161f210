"""Transparency log in PostgreSQL: what the log costs evidence intake, and proofs read from the node table.

Figures, each next to its anchor measured in the same run:
  * records_with_leaf_per_s: ``domain.evidence.service.record_collected`` (the evidence row, its leaf and
    completed nodes under the log's lock, the chained custody row), one transaction each, as the evidence store
    writes them; anchor records_without_leaf_per_s: the same with the leaf append switched off. The ratio is what
    the log costs the database side of intake.
  * db_inclusion_proofs_per_s at 1,000,000 leaves: ``merkle.inclusion_proof`` over ``log.DatabaseNodes`` (one
    indexed query for the ≤ 2·log2(n) nodes), random leaves; the node table is bulk-loaded (COPY) from a
    ``MemoryLog`` of 1,000,000 records. Anchor: the same proofs from the ``MemoryLog`` itself; plus a bare
    ``SELECT 1`` round trip for scale.

Always exits 0.
"""

from __future__ import annotations

import hashlib
import os
import random
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

# Run as ``python bench/transparency_db.py``, this folder heads sys.path, and bench/queue.py would stand in for the
# standard library's queue: move it to the end.
sys.path.sort(key=lambda entry: Path(entry or ".").resolve() == Path(__file__).resolve().parent)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg
from sqlalchemy import make_url, text

from bench.scratch import scratch_database
from domain.evidence import service
from domain.evidence.models import CollectionMethod
from domain.transparency import log
from domain.transparency.canonical import canonical_json
from domain.transparency.merkle import HASH_SIZE, MemoryLog, inclusion_proof, verify_inclusion
from infra.db import make_engine, session_scope

RECORDS = 1500  # per variant
LEAVES = 1_000_000
PROOFS = 3000
SEED = 20261129


def record_once(engine, n: int) -> None:  # type: ignore[no-untyped-def]
    digest = hashlib.sha256(f"bench {n} {os.urandom(8).hex()}".encode()).hexdigest()
    with session_scope(engine) as session:
        service.record_collected(
            session, evidence_id=service.new_evidence_id(), bucket="sunshine-evidence", key=f"sha256/{digest}",
            version_id="v1", sha256=digest, sm3=hashlib.new("sm3", digest.encode()).hexdigest(), size=48_000,
            content_type="image/jpeg", stored_at=datetime.now(UTC), retention_mode="COMPLIANCE",
            retain_until=datetime(2029, 11, 29, tzinfo=UTC), collection_method=CollectionMethod.ai_capture,
            captured_at=datetime.now(UTC), source={"camera_id": n % 50, "model": {"name": "hats", "version": "1"}},
            actor="system:vision")


def rate(label: str, count: int, work: Callable[[int], None]) -> float:
    started = time.perf_counter()
    for n in range(count):
        work(n)
    per_second = count / (time.perf_counter() - started)
    print(f"{label}: {per_second:,.0f}/s")
    return per_second


def main() -> int:
    print(f"cpus: {os.cpu_count()}, {RECORDS} records per variant, {LEAVES:,} leaves for the proofs")
    with scratch_database() as (database_url, _pid):
        engine = make_engine(database_url)
        try:
            append = service.append_leaf
            service.append_leaf = lambda session, evidence: None  # type: ignore[assignment,return-value]
            try:
                without = rate("records_without_leaf_per_s (anchor)", RECORDS, lambda n: record_once(engine, n))
            finally:
                service.append_leaf = append
            with_leaf = rate("records_with_leaf_per_s", RECORDS, lambda n: record_once(engine, RECORDS + n))
            print(f"records_with_leaf_vs_without_ratio: {with_leaf / without:.3f}")

            memory = MemoryLog()
            started = time.perf_counter()
            for n in range(LEAVES):
                memory.append(canonical_json({"evidence_id": n, "sha256": f"{n:064x}"}))
            print(f"memory log of {LEAVES:,} leaves built in {time.perf_counter() - started:.1f} s")
            dsn = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
            started = time.perf_counter()
            with psycopg.connect(dsn) as connection, connection.cursor() as cursor:
                cursor.execute("ALTER TABLE transparency_node DISABLE TRIGGER transparency_node_append_only")
                cursor.execute("TRUNCATE transparency_node")
                with cursor.copy("COPY transparency_node (level, node_index, hash) FROM STDIN") as copy:
                    for level, stored in enumerate(memory._levels):
                        for index in range(len(stored) // HASH_SIZE):
                            copy.write_row((level, index, bytes(stored[index * HASH_SIZE:(index + 1) * HASH_SIZE])))
                cursor.execute("ALTER TABLE transparency_node ENABLE TRIGGER transparency_node_append_only")
                cursor.execute("ANALYZE transparency_node")
            print(f"node table loaded (COPY) in {time.perf_counter() - started:.1f} s")

            picks = random.Random(SEED).sample(range(LEAVES), PROOFS)
            root = memory.root()
            memory_rate = rate("memory_inclusion_proofs_per_s (anchor)", PROOFS,
                               lambda n: inclusion_proof(memory, picks[n], LEAVES))
            with engine.connect() as connection:
                rate("select_1_round_trips_per_s", PROOFS, lambda n: connection.execute(text("SELECT 1")).one())
            from sqlmodel import Session

            with Session(engine) as session:
                nodes = log.DatabaseNodes(session)
                proofs: list[list[bytes]] = []
                db_rate = rate("db_inclusion_proofs_per_s", PROOFS,
                               lambda n: proofs.append(inclusion_proof(nodes, picks[n], LEAVES)))
            leaves = memory.get_nodes([(0, index) for index in picks])
            for index, proof in zip(picks, proofs, strict=True):
                verify_inclusion(leaves[(0, index)], index, LEAVES, proof, root)
            print(f"db_vs_memory_proof_ratio: {db_rate / memory_rate:.4f} (all {PROOFS} database proofs verified)")
        finally:
            engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
