"""Transparency log: a ``MemoryLog`` of 1,000,000 evidence records, its proofs, against raw SHA-256 of the records.

Anchor and figures, measured in the same run, in this one thread:
  * raw_sha256_per_s = ``hashlib.sha256(record).digest()`` of the ~300-byte canonical JSON records themselves;
    the anchor. It is measured over each chunk of records right before that chunk is appended, and again
    between the proof rounds, so the machine's mood weighs on both sides alike.
  * appends_per_s = ``MemoryLog.append`` of the records, 10,000 a chunk (a leaf hash and, on average, one node
    hash each); printed with its ratio to the anchor. The records are made (``canonical_json``) untimed, a chunk
    at a time, and dropped once appended: only the log grows.
  * inclusion_proofs_per_s and inclusion_verifications_per_s at 1,000,000 leaves, for random (seeded) leaf
    indexes; consistency_proofs_per_s and consistency_verifications_per_s for random pairs, half of them
    (first, 1,000,000), half (first, second) with both random; each with its ratio to the anchor and its cost in
    anchor hashes. Roots for the verifications are computed untimed: a verifier has them from checkpoints.
  * log_rss_growth_mb = resident set growth while the log was built; target < 256 (the brief: well under 1 GB).

Always exits 0; each target line says whether it was met.
"""

from __future__ import annotations

import hashlib
import os
import random
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from domain.transparency.canonical import canonical_json
from domain.transparency.merkle import (
    HASH_SIZE,
    MemoryLog,
    NodeId,
    consistency_proof,
    inclusion_proof,
    verify_consistency,
    verify_inclusion,
)

LEAVES = 1_000_000
CHUNK = 10_000
PROOF_ROUNDS = 10  # each: the anchor over one chunk, then a batch of each proof operation
INCLUSION_BATCH = 2_000
CONSISTENCY_BATCH = 1_000
SEED = 20250602
MB = 1 << 20
RSS_TARGET_MB = 256.0
RUN_TARGET_S = 120.0


def evidence_record(index: int) -> bytes:
    """An evidence log record as the intake writes it (less its SM3 digest): about 315 bytes."""
    return canonical_json(
        {
            "evidence_id": f"{index:08x}-5e7c-4d1a-9b3f-{index * 7919:012x}",
            "sha256": hashlib.sha256(index.to_bytes(8, "big")).hexdigest(),
            "size": 1_000_000 + index,
            "content_type": "image/jpeg",
            "collection_method": "camera",
            "captured_at": f"2025-06-02T08:{index // 60 % 60:02d}:{index % 60:02d}.123+08:00",
            "stored_at": f"2025-06-02T08:{index // 60 % 60:02d}:{index % 60:02d}.456+08:00",
            "source": f"camera:C{index % 10_000:04d}",
        }
    )


def timed(action: Callable[..., object], *args: Any) -> float:
    started = time.perf_counter()
    action(*args)
    return time.perf_counter() - started


def hash_all(records: Sequence[bytes]) -> None:
    sha256 = hashlib.sha256
    for record in records:
        sha256(record).digest()


def append_all(log: MemoryLog, records: Sequence[bytes]) -> None:
    append = log.append
    for record in records:
        append(record)


class Rate:
    """Operations over seconds, summed across rounds."""

    def __init__(self) -> None:
        self.count = 0
        self.seconds = 0.0

    def add(self, count: int, seconds: float) -> None:
        self.count += count
        self.seconds += seconds

    @property
    def per_s(self) -> float:
        return self.count / self.seconds


def build(log: MemoryLog, anchor: Rate) -> tuple[Rate, Rate, list[bytes]]:
    appends, making = Rate(), Rate()
    records: list[bytes] = []
    for start in range(0, LEAVES, CHUNK):
        started = time.perf_counter()
        records = [evidence_record(index) for index in range(start, start + CHUNK)]
        making.add(CHUNK, time.perf_counter() - started)
        anchor.add(CHUNK, timed(hash_all, records))
        appends.add(CHUNK, timed(append_all, log, records))
    return appends, making, records


def prove(log: MemoryLog, anchor: Rate, anchor_records: Sequence[bytes]) -> dict[str, Rate]:
    rng = random.Random(SEED)
    size = log.size
    root = log.root()
    rates = {name: Rate() for name in ("inclusion", "inclusion_verify", "consistency", "consistency_verify")}
    for _ in range(PROOF_ROUNDS):
        anchor.add(len(anchor_records), timed(hash_all, anchor_records))

        indexes = [rng.randrange(size) for _ in range(INCLUSION_BATCH)]
        leaves = log.get_nodes([(0, index) for index in indexes])
        proofs: list[list[bytes]] = []
        rates["inclusion"].add(len(indexes), timed(make_inclusion_proofs, log, indexes, proofs))
        rates["inclusion_verify"].add(len(indexes), timed(verify_inclusions, indexes, proofs, leaves, size, root))

        pairs = []
        for number in range(CONSISTENCY_BATCH):
            second = size if number % 2 == 0 else rng.randrange(2, size + 1)
            pairs.append((rng.randrange(1, second), second))
        roots = {tree_size: log.root(tree_size) for pair in pairs for tree_size in pair}
        consistency: list[list[bytes]] = []
        rates["consistency"].add(len(pairs), timed(make_consistency_proofs, log, pairs, consistency))
        rates["consistency_verify"].add(len(pairs), timed(verify_consistencies, pairs, consistency, roots))
    return rates


def make_inclusion_proofs(log: MemoryLog, indexes: Sequence[int], into: list[list[bytes]]) -> None:
    size = log.size
    for index in indexes:
        into.append(inclusion_proof(log, index, size))


def verify_inclusions(
    indexes: Sequence[int], proofs: Sequence[list[bytes]], leaves: Mapping[NodeId, bytes], size: int, root: bytes
) -> None:
    for index, proof in zip(indexes, proofs, strict=True):
        verify_inclusion(leaves[(0, index)], index, size, proof, root)


def make_consistency_proofs(log: MemoryLog, pairs: Sequence[tuple[int, int]], into: list[list[bytes]]) -> None:
    for first, second in pairs:
        into.append(consistency_proof(log, first, second))


def verify_consistencies(
    pairs: Sequence[tuple[int, int]], proofs: Sequence[list[bytes]], roots: Mapping[int, bytes]
) -> None:
    for (first, second), proof in zip(pairs, proofs, strict=True):
        verify_consistency(first, second, roots[first], roots[second], proof)


def main() -> None:
    run_started = time.perf_counter()
    process = psutil.Process()
    rss_before = process.memory_info().rss
    log = MemoryLog()
    anchor = Rate()
    appends, making, last_records = build(log, anchor)
    rss_growth_mb = (process.memory_info().rss - rss_before) / MB
    stored_mb = HASH_SIZE * (2 * LEAVES - LEAVES.bit_count()) / MB
    build_anchor = anchor.per_s

    rates = prove(log, anchor, last_records)
    sha = anchor.per_s
    combined = 1 / (1 / rates["consistency"].per_s + 1 / rates["consistency_verify"].per_s)

    print(f"leaves: {log.size:,}, record size {sum(map(len, last_records)) / len(last_records):.0f} bytes (mean)")
    print(f"root_at_{LEAVES}: {log.root().hex()}")
    print(f"raw_sha256_per_s: {sha:,.0f} (300-byte records; {build_anchor:,.0f} during the build)")
    print(f"appends_per_s: {appends.per_s:,.0f}; ratio to raw sha256: {appends.per_s / build_anchor:.3f}")
    for name, label in [
        ("inclusion", "inclusion_proofs_per_s"),
        ("inclusion_verify", "inclusion_verifications_per_s"),
        ("consistency", "consistency_proofs_per_s"),
        ("consistency_verify", "consistency_verifications_per_s"),
    ]:
        rate = rates[name].per_s
        print(f"{label}: {rate:,.0f}; ratio to raw sha256: {rate / sha:.4f} ({sha / rate:.1f} sha256s each)")
    print(f"consistency_prove_and_verify_per_s: {combined:,.0f}; ratio to raw sha256: {combined / sha:.4f}")
    print(f"records_made_per_s: {making.per_s:,.0f} (canonical_json, untimed in the figures above)")
    print(f"log_rss_growth_mb: {rss_growth_mb:.1f} (the stored nodes alone: {stored_mb:.1f})")
    run_seconds = time.perf_counter() - run_started
    print(f"run_seconds: {run_seconds:.1f} (cpus {os.cpu_count()}, load average now {os.getloadavg()[0]:.1f})")
    print(f"target log_rss_growth_mb < {RSS_TARGET_MB:.0f}: {'met' if rss_growth_mb < RSS_TARGET_MB else 'MISSED'}")
    print(f"target run_seconds < {RUN_TARGET_S:.0f}: {'met' if run_seconds < RUN_TARGET_S else 'MISSED'}")


if __name__ == "__main__":
    main()
