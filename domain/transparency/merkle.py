"""RFC 6962 / RFC 9162 Merkle tree hashing: roots, inclusion and consistency proofs, and their verification.

A log stores only perfect subtrees, as ``NodeId`` = (level, index): the subtree over leaves
[index·2^level, (index+1)·2^level), level 0 being a leaf hash. Each is written once, when its last leaf is
appended, and never changes. Every root or proof hash is the MTH of a range of leaves that splits into a few such
subtrees (the range's tiles), so a proof is one batch read of O(log n) stored nodes, never a rehash of leaves.

The ``reference_*`` functions are the RFC's recursive definitions, kept literal, for tests to compare against.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Protocol

HASH_SIZE = 32
NodeId = tuple[int, int]

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


class InvalidProof(ValueError):
    """A proof that does not verify; the message says what failed."""


class NodeReader(Protocol):
    def get_nodes(self, ids: Sequence[NodeId]) -> Mapping[NodeId, bytes]:
        """The stored hashes of ``ids`` in one batch; an id the store lacks is left out."""
        ...


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def empty_root() -> bytes:
    return hashlib.sha256(b"").digest()


def _split(size: int) -> int:
    """The largest power of two below ``size`` (≥ 2): where the RFC splits a range."""
    return 1 << ((size - 1).bit_length() - 1)


# ----- the RFC's definitions, recursive over the leaves ----------------------------------------------------------


def reference_root(leaf_data: Sequence[bytes]) -> bytes:
    """MTH(D[n]) of RFC 6962 §2.1."""
    size = len(leaf_data)
    if size == 0:
        return empty_root()
    if size == 1:
        return leaf_hash(leaf_data[0])
    k = _split(size)
    return node_hash(reference_root(leaf_data[:k]), reference_root(leaf_data[k:]))


def reference_inclusion_proof(index: int, leaf_data: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n]) of RFC 6962 §2.1.1."""
    size = len(leaf_data)
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside a tree of {size} leaves")
    if size == 1:
        return []
    k = _split(size)
    if index < k:
        return [*reference_inclusion_proof(index, leaf_data[:k]), reference_root(leaf_data[k:])]
    return [*reference_inclusion_proof(index - k, leaf_data[k:]), reference_root(leaf_data[:k])]


def reference_consistency_proof(first: int, leaf_data: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) of RFC 6962 §2.1.2."""
    if not 0 < first <= len(leaf_data):
        raise ValueError(f"no consistency proof from size {first} to {len(leaf_data)}")
    return _reference_subproof(first, leaf_data, complete=True)


def _reference_subproof(first: int, leaf_data: Sequence[bytes], *, complete: bool) -> list[bytes]:
    size = len(leaf_data)
    if first == size:
        return [] if complete else [reference_root(leaf_data)]
    k = _split(size)
    if first <= k:
        return [*_reference_subproof(first, leaf_data[:k], complete=complete), reference_root(leaf_data[k:])]
    return [*_reference_subproof(first - k, leaf_data[k:], complete=False), reference_root(leaf_data[:k])]


# ----- plans: which stored nodes make up each hash ---------------------------------------------------------------


def nodes_completed_by_append(leaf_index: int) -> list[NodeId]:
    """The perfect subtrees that leaf ``leaf_index`` completes, from the leaf itself upward."""
    if leaf_index < 0:
        raise ValueError(f"leaf index {leaf_index} is negative")
    level, index = 0, leaf_index
    completed = [(level, index)]
    while index & 1:  # a right child completes its parent
        level, index = level + 1, index >> 1
        completed.append((level, index))
    return completed


def range_node_ids(start: int, end: int) -> list[NodeId]:
    """The maximal perfect subtrees tiling leaves [start, end), left to right."""
    if not 0 <= start <= end:
        raise ValueError(f"[{start}, {end}) is not a range of leaves")
    tiles: list[NodeId] = []
    while start < end:
        level = (end - start).bit_length() - 1
        if start:
            level = min(level, (start & -start).bit_length() - 1)
        tiles.append((level, start >> level))
        start += 1 << level
    return tiles


def fold_range(hashes: Sequence[bytes]) -> bytes:
    """The MTH of a range from its tiles' hashes: the RFC splits off the largest power of two on the left."""
    if not hashes:
        raise ValueError("an empty range has no tiles to fold")
    folded = hashes[-1]
    for tile in reversed(hashes[:-1]):
        folded = node_hash(tile, folded)
    return folded


def root_node_ids(tree_size: int) -> list[NodeId]:
    return range_node_ids(0, tree_size)


def inclusion_proof_plan(leaf_index: int, tree_size: int) -> list[list[NodeId]]:
    """The tiles of each hash of PATH(leaf_index, D[tree_size]), leaf to root."""
    if not 0 <= leaf_index < tree_size:
        raise ValueError(f"leaf index {leaf_index} is outside a tree of {tree_size} leaves")
    siblings: list[tuple[int, int]] = []  # root first
    start, end = 0, tree_size
    while end - start > 1:
        middle = start + _split(end - start)
        if leaf_index < middle:
            siblings.append((middle, end))
            end = middle
        else:
            siblings.append((start, middle))
            start = middle
    return [range_node_ids(*sibling) for sibling in reversed(siblings)]


def consistency_proof_plan(first: int, second: int) -> list[list[NodeId]]:
    """The tiles of each hash of PROOF(first, D[second]), in the RFC's order."""
    if not 0 < first <= second:
        raise ValueError(f"no consistency proof from size {first} to {second}")
    outer: list[tuple[int, int]] = []  # the hashes SUBPROOF appends, outermost first
    start, end, known = 0, second, first
    complete = True  # the subtree in hand is the whole old tree, whose root the verifier already has
    while known != end - start:
        middle = start + _split(end - start)
        if known <= middle - start:
            outer.append((middle, end))
            end = middle
        else:
            outer.append((start, middle))
            known -= middle - start
            start = middle
            complete = False
    ranges = ([] if complete else [(start, end)]) + outer[::-1]
    return [range_node_ids(*hash_range) for hash_range in ranges]


# ----- roots and proofs from a node store ------------------------------------------------------------------------


def _folded(store: NodeReader, plan: Sequence[Sequence[NodeId]]) -> list[bytes]:
    wanted = list(dict.fromkeys(node for tiles in plan for node in tiles))
    nodes = store.get_nodes(wanted)
    missing = [node for node in wanted if node not in nodes]
    if missing:
        raise LookupError(f"the node store lacks {len(missing)} node(s), first {missing[0]}")
    return [fold_range([nodes[node] for node in tiles]) for tiles in plan]


def root_hash(store: NodeReader, tree_size: int) -> bytes:
    if tree_size < 0:
        raise ValueError(f"tree size {tree_size} is negative")
    if tree_size == 0:
        return empty_root()
    return _folded(store, [root_node_ids(tree_size)])[0]


def inclusion_proof(store: NodeReader, leaf_index: int, tree_size: int) -> list[bytes]:
    return _folded(store, inclusion_proof_plan(leaf_index, tree_size))


def consistency_proof(store: NodeReader, first: int, second: int) -> list[bytes]:
    return _folded(store, consistency_proof_plan(first, second))


# ----- verification (RFC 9162 §2.1.3.2 and §2.1.4.2) -------------------------------------------------------------


def _check_hash(what: str, value: bytes) -> None:
    if len(value) != HASH_SIZE:
        raise InvalidProof(f"{what} is {len(value)} bytes, not {HASH_SIZE}")


def _check_proof_hashes(proof: Sequence[bytes]) -> None:
    for position, value in enumerate(proof):
        _check_hash(f"proof hash {position}", value)


def verify_inclusion(leaf: bytes, leaf_index: int, tree_size: int, proof: Sequence[bytes], root: bytes) -> None:
    """Check that the leaf hash ``leaf`` sits at ``leaf_index`` of the tree of ``tree_size`` with ``root``."""
    _check_hash("leaf hash", leaf)
    _check_hash("root", root)
    _check_proof_hashes(proof)
    if not 0 <= leaf_index < tree_size:
        raise InvalidProof(f"leaf index {leaf_index} is outside a tree of {tree_size} leaves")
    fn, sn = leaf_index, tree_size - 1
    computed = leaf
    for sibling in proof:
        if sn == 0:
            raise InvalidProof(
                f"inclusion proof of {len(proof)} hashes is too long for leaf {leaf_index} of {tree_size}"
            )
        if fn & 1 or fn == sn:
            computed = node_hash(sibling, computed)
            while fn and not fn & 1:  # skip the levels where the last subtree has no right sibling
                fn, sn = fn >> 1, sn >> 1
        else:
            computed = node_hash(computed, sibling)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise InvalidProof(f"inclusion proof of {len(proof)} hashes is too short for leaf {leaf_index} of {tree_size}")
    if computed != root:
        raise InvalidProof(f"inclusion proof for leaf {leaf_index} does not lead to the root of size {tree_size}")


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]) -> None:
    """Check that the tree of ``second`` with ``second_root`` extends the tree of ``first`` with ``first_root``."""
    _check_hash("first root", first_root)
    _check_hash("second root", second_root)
    _check_proof_hashes(proof)
    if not 0 < first <= second:
        raise InvalidProof(f"no consistency proof from size {first} to {second}")
    if first == second:
        if proof:
            raise InvalidProof(f"a consistency proof between equal sizes is empty, not {len(proof)} hashes")
        if first_root != second_root:
            raise InvalidProof(f"two different roots for the same size {first}")
        return
    if not proof:
        raise InvalidProof(f"empty consistency proof from size {first} to {second}")
    path = [first_root, *proof] if first & (first - 1) == 0 else list(proof)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    first_computed = second_computed = path[0]
    for value in path[1:]:
        if sn == 0:
            raise InvalidProof(f"consistency proof of {len(proof)} hashes is too long for {first} → {second}")
        if fn & 1 or fn == sn:
            first_computed = node_hash(value, first_computed)
            second_computed = node_hash(value, second_computed)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            second_computed = node_hash(second_computed, value)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise InvalidProof(f"consistency proof of {len(proof)} hashes is too short for {first} → {second}")
    if first_computed != first_root:
        raise InvalidProof(f"consistency proof does not lead to the root of size {first}")
    if second_computed != second_root:
        raise InvalidProof(f"consistency proof does not lead to the root of size {second}")


# ----- an in-memory log ------------------------------------------------------------------------------------------


class MemoryLog:
    """An append-only log in memory: one bytearray per level holds that level's completed nodes back to back.

    About 64 bytes per leaf in all (32 for the leaf hash, 32 for the nodes above it), so 10^6 leaves take ~64 MB.
    """

    def __init__(self) -> None:
        self._levels: list[bytearray] = [bytearray()]
        self._size = 0

    @property
    def size(self) -> int:
        return self._size

    def append(self, data: bytes) -> int:
        """Append a leaf by its data; returns its index."""
        return self.append_leaf_hash(leaf_hash(data))

    def append_leaf_hash(self, leaf: bytes) -> int:
        """Append a leaf by its leaf hash; returns its index."""
        if len(leaf) != HASH_SIZE:
            raise ValueError(f"a leaf hash is {HASH_SIZE} bytes, not {len(leaf)}")
        leaf_index = self._size
        levels = self._levels
        levels[0] += leaf
        level, index = 0, leaf_index
        while index & 1:  # the node just stored is a right child: its parent is complete
            children = levels[level]
            level, index = level + 1, index >> 1
            if level == len(levels):
                levels.append(bytearray())
            levels[level] += hashlib.sha256(_NODE_PREFIX + children[-2 * HASH_SIZE :]).digest()
        self._size = leaf_index + 1
        return leaf_index

    def get_nodes(self, ids: Sequence[NodeId]) -> Mapping[NodeId, bytes]:
        levels = self._levels
        found: dict[NodeId, bytes] = {}
        for level, index in ids:
            if 0 <= level < len(levels) and index >= 0:
                start = index * HASH_SIZE
                value = bytes(levels[level][start : start + HASH_SIZE])
                if len(value) == HASH_SIZE:
                    found[(level, index)] = value
        return found

    def root(self, tree_size: int | None = None) -> bytes:
        """The root at ``tree_size`` (default: now); any earlier size works, the nodes never change."""
        size = self._size if tree_size is None else tree_size
        if not 0 <= size <= self._size:
            raise ValueError(f"tree size {size} is outside 0..{self._size}")
        return root_hash(self, size)
