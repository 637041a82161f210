"""RFC 6962 Merkle hashing: the stored-node log against the RFC's recursive definitions, proof verification, and
the canonical JSON its leaves are made of."""

from __future__ import annotations

import hashlib
import tracemalloc
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import cache
from typing import Any

import pytest

from domain.transparency.canonical import canonical_json
from domain.transparency.merkle import (
    HASH_SIZE,
    InvalidProof,
    MemoryLog,
    NodeId,
    consistency_proof,
    consistency_proof_plan,
    empty_root,
    fold_range,
    inclusion_proof,
    inclusion_proof_plan,
    leaf_hash,
    node_hash,
    nodes_completed_by_append,
    range_node_ids,
    reference_consistency_proof,
    reference_inclusion_proof,
    reference_root,
    root_hash,
    root_node_ids,
    verify_consistency,
    verify_inclusion,
)

MAX_SIZE = 70
LEAF_DATA = [canonical_json({"evidence": f"E{i:04d}", "sequence": i, "kind": "photo"}) for i in range(MAX_SIZE)]
LEAVES = [leaf_hash(data) for data in LEAF_DATA]


def build_log(leaf_data: Sequence[bytes]) -> MemoryLog:
    log = MemoryLog()
    for data in leaf_data:
        log.append(data)
    return log


LOG = build_log(LEAF_DATA)
ROOTS = [reference_root(LEAF_DATA[:size]) for size in range(MAX_SIZE + 1)]


@cache
def inclusion(index: int, size: int) -> tuple[bytes, ...]:
    return tuple(inclusion_proof(LOG, index, size))


@cache
def consistency(first: int, second: int) -> tuple[bytes, ...]:
    return tuple(consistency_proof(LOG, first, second))


def flipped(proof: Sequence[bytes], position: int, byte: int) -> list[bytes]:
    changed = bytearray(proof[position])
    changed[byte] ^= 0x01
    return [*proof[:position], bytes(changed), *proof[position + 1 :]]


def other_hash(value: bytes) -> bytes:
    return hashlib.sha256(value).digest()


# ----- leaf data: canonical JSON ---------------------------------------------------------------------------------


def test_canonical_json_is_one_byte_string_per_value() -> None:
    record = {"b": [1, 2.5, True, None], "a": '食品 "安全"', "c": {"z": -0.0, "y": 1e300}}
    assert canonical_json(record) == '{"a":"食品 \\"安全\\"","b":[1,2.5,true,null],"c":{"y":1e+300,"z":-0.0}}'.encode()
    assert canonical_json({"y": 1, "x": 2}) == canonical_json({"x": 2, "y": 1})
    assert canonical_json(0.1) == b"0.1"


@pytest.mark.parametrize(
    ("value", "error", "reason"),
    [
        ({"at": datetime(2025, 6, 2, tzinfo=UTC)}, TypeError, r"not datetime at \$\.at; convert it first"),
        ({"id": uuid.UUID(int=1)}, TypeError, r"not UUID at \$\.id"),
        ([1, (2, 3)], TypeError, r"not tuple at \$\[1\]"),
        ({"raw": b"bytes"}, TypeError, "not bytes"),
        ({"tags": {"a"}}, TypeError, "not set"),
        ({1: "int key"}, TypeError, "keys must be str"),
        ({"x": [float("nan")]}, ValueError, r"no nan: found at \$\.x\[0\]"),
        ({"x": float("-inf")}, ValueError, "no -inf"),
    ],
)
def test_canonical_json_refuses_what_has_no_single_form(value: Any, error: type[Exception], reason: str) -> None:
    with pytest.raises(error, match=reason):
        canonical_json(value)


def test_canonical_json_refuses_circular_values() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(ValueError, match="circular"):
        canonical_json(loop)
    shared = {"k": 1}
    assert canonical_json([shared, shared]) == b'[{"k":1},{"k":1}]'


# ----- Certificate Transparency's published vectors --------------------------------------------------------------

CT_LEAF_DATA = [
    bytes.fromhex(text)
    for text in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f")
]
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
CT_INCLUSION = {
    (0, 8): [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    (5, 8): [
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
}
CT_CONSISTENCY = {
    (1, 8): [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    (2, 5): [
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ],
    (6, 8): [
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
}


def test_certificate_transparency_vectors() -> None:
    log = build_log(CT_LEAF_DATA)
    assert [log.root(size).hex() for size in range(9)] == CT_ROOTS
    for (index, size), proof in CT_INCLUSION.items():
        assert [value.hex() for value in inclusion_proof(log, index, size)] == proof
    for (first, second), proof in CT_CONSISTENCY.items():
        assert [value.hex() for value in consistency_proof(log, first, second)] == proof


def test_hash_primitives_use_the_rfc_prefixes() -> None:
    assert empty_root() == hashlib.sha256(b"").digest()
    assert leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest()
    assert node_hash(b"a" * 32, b"b" * 32) == hashlib.sha256(b"\x01" + b"a" * 32 + b"b" * 32).digest()


# ----- the log against the reference ------------------------------------------------------------------------------


def test_root_matches_reference_for_every_size() -> None:
    for size in range(MAX_SIZE + 1):
        assert LOG.root(size) == ROOTS[size], size
        assert root_hash(LOG, size) == ROOTS[size], size
    assert LOG.root() == ROOTS[MAX_SIZE]
    assert LOG.size == MAX_SIZE


def test_append_stores_each_completed_subtree_once() -> None:
    log = MemoryLog()
    expected: dict[NodeId, bytes] = {}
    for index, data in enumerate(LEAF_DATA):
        assert log.append(data) == index
        for level, position in nodes_completed_by_append(index):
            expected[(level, position)] = reference_root(LEAF_DATA[position << level : (position + 1) << level])
    every_id = [(level, position) for level in range(8) for position in range(MAX_SIZE + 1)]
    assert log.get_nodes(every_id) == expected


def test_append_leaf_hash_equals_append() -> None:
    log = MemoryLog()
    for leaf in LEAVES:
        log.append_leaf_hash(leaf)
    assert log.root() == ROOTS[MAX_SIZE]
    with pytest.raises(ValueError, match="32 bytes"):
        log.append_leaf_hash(b"short")


def test_inclusion_proofs_match_reference_and_verify() -> None:
    for size in range(1, MAX_SIZE + 1):
        for index in range(size):
            proof = inclusion(index, size)
            assert list(proof) == reference_inclusion_proof(index, LEAF_DATA[:size]), (index, size)
            verify_inclusion(LEAVES[index], index, size, proof, ROOTS[size])


def test_consistency_proofs_match_reference_and_verify() -> None:
    for second in range(1, MAX_SIZE + 1):
        for first in range(1, second + 1):
            proof = consistency(first, second)
            assert list(proof) == reference_consistency_proof(first, LEAF_DATA[:second]), (first, second)
            verify_consistency(first, second, ROOTS[first], ROOTS[second], proof)


# ----- what must not verify ---------------------------------------------------------------------------------------


def test_tampered_inclusion_proofs_fail() -> None:
    for size in range(1, MAX_SIZE + 1):
        root = ROOTS[size]
        for index in range(size):
            leaf, proof = LEAVES[index], inclusion(index, size)
            for position in range(len(proof)):
                with pytest.raises(InvalidProof):
                    verify_inclusion(leaf, index, size, flipped(proof, position, (index + position) % HASH_SIZE), root)
            for wrong_index in {-1, 0, index - 1, index + 1, size - 1 - index, size - 1, size} - {index}:
                with pytest.raises(InvalidProof):
                    verify_inclusion(leaf, wrong_index, size, proof, root)
            for wrong_size in (size - 1, size + 1):
                if index < wrong_size <= MAX_SIZE:
                    with pytest.raises(InvalidProof):
                        verify_inclusion(leaf, index, wrong_size, proof, ROOTS[wrong_size])
            with pytest.raises(InvalidProof, match="does not lead to the root"):
                verify_inclusion(leaf, index, size, proof, other_hash(root))
            with pytest.raises(InvalidProof, match="too long"):
                verify_inclusion(leaf, index, size, [*proof, root], root)
            if proof:
                with pytest.raises(InvalidProof, match="too short"):
                    verify_inclusion(leaf, index, size, proof[:-1], root)
                with pytest.raises(InvalidProof):
                    verify_inclusion(leaf, index, size, proof[1:], root)


def test_tampered_consistency_proofs_fail() -> None:
    for second in range(1, MAX_SIZE + 1):
        for first in range(1, second + 1):
            first_root, second_root, proof = ROOTS[first], ROOTS[second], consistency(first, second)
            for position in range(len(proof)):
                changed = flipped(proof, position, (first + second + position) % HASH_SIZE)
                with pytest.raises(InvalidProof):
                    verify_consistency(first, second, first_root, second_root, changed)
            for wrong_first in (first - 1, first + 1):
                if 1 <= wrong_first <= second:
                    with pytest.raises(InvalidProof):
                        verify_consistency(wrong_first, second, ROOTS[wrong_first], second_root, proof)
            for wrong_second in (second - 1, second + 1):
                if first <= wrong_second <= MAX_SIZE:
                    with pytest.raises(InvalidProof):
                        verify_consistency(first, wrong_second, first_root, ROOTS[wrong_second], proof)
            with pytest.raises(InvalidProof):
                verify_consistency(first, second, other_hash(first_root), second_root, proof)
            with pytest.raises(InvalidProof):
                verify_consistency(first, second, first_root, other_hash(second_root), proof)
            with pytest.raises(InvalidProof):
                verify_consistency(first, second, first_root, second_root, [*proof, second_root])
            if proof:
                with pytest.raises(InvalidProof):
                    verify_consistency(first, second, first_root, second_root, proof[:-1])
                with pytest.raises(InvalidProof):
                    verify_consistency(first, second, first_root, second_root, proof[1:])


@pytest.mark.parametrize("size", [5, 8, 13, 64, MAX_SIZE])
def test_every_byte_of_every_proof_hash_counts(size: int) -> None:
    for index in range(size):
        proof = inclusion(index, size)
        for position in range(len(proof)):
            for byte in range(HASH_SIZE):
                with pytest.raises(InvalidProof):
                    verify_inclusion(LEAVES[index], index, size, flipped(proof, position, byte), ROOTS[size])
    for first in range(1, size):
        proof = consistency(first, size)
        for position in range(len(proof)):
            for byte in range(HASH_SIZE):
                with pytest.raises(InvalidProof):
                    verify_consistency(first, size, ROOTS[first], ROOTS[size], flipped(proof, position, byte))


def test_tree_size_is_bound_by_the_root_not_by_the_proof() -> None:
    # RFC 9162's algorithm reads only the shape of the path from the size: leaf 0 has the same shape in trees of 3
    # and 4 leaves, so the size-4 proof passes as a size-3 one against the size-4 root. A checkpoint signs size
    # and root together, which is what binds them.
    verify_inclusion(LEAVES[0], 0, 3, inclusion(0, 4), ROOTS[4])
    with pytest.raises(InvalidProof):
        verify_inclusion(LEAVES[0], 0, 3, inclusion(0, 4), ROOTS[3])


def test_verifiers_refuse_malformed_arguments() -> None:
    proof = inclusion(3, 10)
    with pytest.raises(InvalidProof, match="leaf hash is 5 bytes"):
        verify_inclusion(LEAF_DATA[3][:5], 3, 10, proof, ROOTS[10])
    with pytest.raises(InvalidProof, match="proof hash 1 is 31 bytes"):
        verify_inclusion(LEAVES[3], 3, 10, [proof[0], proof[1][:31], *proof[2:]], ROOTS[10])
    with pytest.raises(InvalidProof, match="root is 0 bytes"):
        verify_inclusion(LEAVES[3], 3, 10, proof, b"")
    with pytest.raises(InvalidProof, match="outside a tree of 0"):
        verify_inclusion(LEAVES[0], 0, 0, [], empty_root())
    with pytest.raises(InvalidProof, match="from size 0"):
        verify_consistency(0, 5, empty_root(), ROOTS[5], [])
    with pytest.raises(InvalidProof, match="from size 6 to 5"):
        verify_consistency(6, 5, ROOTS[6], ROOTS[5], list(consistency(5, 6)))
    with pytest.raises(InvalidProof, match="empty consistency proof"):
        verify_consistency(5, 6, ROOTS[5], ROOTS[6], [])
    verify_consistency(7, 7, ROOTS[7], ROOTS[7], [])
    with pytest.raises(InvalidProof, match="different roots"):
        verify_consistency(7, 7, ROOTS[7], ROOTS[8], [])
    with pytest.raises(InvalidProof, match="equal sizes is empty"):
        verify_consistency(7, 7, ROOTS[7], ROOTS[7], [ROOTS[7]])


def test_generators_refuse_out_of_range_arguments() -> None:
    for index, size in [(5, 5), (-1, 5), (0, 0)]:
        with pytest.raises(ValueError, match="outside a tree"):
            inclusion_proof(LOG, index, size)
    for first, second in [(0, 5), (6, 5), (-1, 3)]:
        with pytest.raises(ValueError, match="no consistency proof"):
            consistency_proof(LOG, first, second)
    assert consistency_proof(LOG, 9, 9) == []
    with pytest.raises(ValueError, match=r"outside 0\.\.70"):
        LOG.root(MAX_SIZE + 1)
    with pytest.raises(LookupError, match="lacks"):
        root_hash(LOG, MAX_SIZE + 1)
    with pytest.raises(LookupError, match="lacks"):
        inclusion_proof(LOG, 0, MAX_SIZE + 1)


# ----- plans: stored nodes only, few of them, one batch -----------------------------------------------------------


def test_tiles_and_folds() -> None:
    assert range_node_ids(0, 7) == [(2, 0), (1, 2), (0, 6)]
    assert range_node_ids(4, 7) == [(1, 2), (0, 6)]
    assert range_node_ids(5, 12) == [(0, 5), (1, 3), (2, 2)]
    assert range_node_ids(3, 3) == []
    assert root_node_ids(0) == []
    assert root_node_ids(64) == [(6, 0)]
    assert nodes_completed_by_append(0) == [(0, 0)]
    assert nodes_completed_by_append(5) == [(0, 5), (1, 2)]
    assert nodes_completed_by_append(7) == [(0, 7), (1, 3), (2, 1), (3, 0)]
    a, b, c = LEAVES[:3]
    assert fold_range([a]) == a
    assert fold_range([a, b, c]) == node_hash(a, node_hash(b, c))
    with pytest.raises(ValueError, match="empty range"):
        fold_range([])


def test_plans_name_one_range_per_proof_hash() -> None:
    assert inclusion_proof_plan(5, 8) == [[(0, 4)], [(1, 3)], [(2, 0)]]
    assert inclusion_proof_plan(0, 7) == [[(0, 1)], [(1, 1)], [(1, 2), (0, 6)]]
    assert consistency_proof_plan(6, 8) == [[(1, 2)], [(1, 3)], [(2, 0)]]
    assert consistency_proof_plan(4, 4) == []
    assert consistency_proof_plan(4, 7) == [[(1, 2), (0, 6)]]
    assert consistency_proof_plan(3, 7) == [[(0, 2)], [(0, 3)], [(1, 0)], [(1, 2), (0, 6)]]


class CountingReader:
    """A node store that counts batches and nodes, like the database would see them."""

    def __init__(self, log: MemoryLog) -> None:
        self.log = log
        self.batches: list[int] = []

    def get_nodes(self, ids: Sequence[NodeId]) -> Mapping[NodeId, bytes]:
        self.batches.append(len(ids))
        return self.log.get_nodes(ids)


def test_proofs_read_a_logarithmic_batch_of_stored_nodes() -> None:
    size = 5_000
    log = build_log([b"%d" % i for i in range(size)])
    reader = CountingReader(log)
    bound = 2 * size.bit_length()
    for index in [0, 1, 2_047, 2_048, 4_095, 4_096, 4_999]:
        for tree_size in [index + 1, 4_097, size]:
            if index < tree_size:
                reader.batches.clear()
                proof = inclusion_proof(reader, index, tree_size)
                assert len(reader.batches) == 1 and reader.batches[0] <= bound
                verify_inclusion(leaf_hash(b"%d" % index), index, tree_size, proof, log.root(tree_size))
    for first, second in [(1, size), (2_048, size), (2_049, 4_999), (3_333, 4_097), (4_999, 5_000)]:
        reader.batches.clear()
        proof = consistency_proof(reader, first, second)
        assert len(reader.batches) == 1 and reader.batches[0] <= bound
        verify_consistency(first, second, log.root(first), log.root(second), proof)


def test_memory_log_keeps_about_64_bytes_a_leaf() -> None:
    size = 1 << 14
    tracemalloc.start()
    try:
        log = build_log([b"%d" % i for i in range(size)])
        current, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert log.size == size
    assert current < 80 * size
