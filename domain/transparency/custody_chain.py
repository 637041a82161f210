"""The custody log's hash chain: each row commits to the row before it, so a deleted, edited or moved row shows.

``row_hash = SHA-256(prev_hash ‖ canonical_json(the row without prev_hash and row_hash))``; the first row links to
``GENESIS_HASH``. A bundle carries only some rows, so an auditor can recompute each row's own hash from its
``prev_hash`` but can follow links only between rows whose ``seq`` are consecutive.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any

from domain.transparency.canonical import canonical_json

GENESIS_HASH = "0" * 64
LINK_FIELDS = frozenset({"prev_hash", "row_hash"})

_HASH_HEX = re.compile(r"[0-9a-f]{64}")


def custody_row_hash(prev_hash_hex: str, fields: Mapping[str, Any]) -> str:
    """The row hash of ``fields`` chained after ``prev_hash_hex``; ``prev_hash``/``row_hash`` in fields are ignored."""
    if not isinstance(prev_hash_hex, str) or not _HASH_HEX.fullmatch(prev_hash_hex):
        raise ValueError("prev_hash must be 64 lowercase hexadecimal digits")
    hashed = {key: value for key, value in fields.items() if key not in LINK_FIELDS}
    return hashlib.sha256(bytes.fromhex(prev_hash_hex) + canonical_json(hashed)).hexdigest()


def verify_chain(rows: Sequence[Mapping[str, Any]], *, starts_at_genesis: bool = True) -> list[str]:
    """The problems of a contiguous run of rows, in order, each naming the row's seq; empty when the chain holds.

    ``starts_at_genesis=False`` checks a run that starts later in the log (its first link cannot be followed).
    """
    problems: list[str] = []
    previous_hash: str | None = GENESIS_HASH if starts_at_genesis else None
    previous_label = "the genesis hash"
    for position, row in enumerate(rows):
        label = row_label(row, position)
        prev_hash, row_hash = row.get("prev_hash"), row.get("row_hash")
        if previous_hash is not None and prev_hash != previous_hash:
            problems.append(f"{label}: prev_hash does not link to {previous_label} (a row was removed, inserted or "
                            "moved)")
        try:
            expected = custody_row_hash(prev_hash, row) if isinstance(prev_hash, str) else None
        except (ValueError, TypeError):
            expected = None
        if expected is None:
            problems.append(f"{label}: prev_hash is not a SHA-256 hash, or a field is not JSON")
        elif row_hash != expected:
            problems.append(f"{label}: row_hash does not match the row's fields (the row was edited)")
        previous_hash = row_hash if isinstance(row_hash, str) else None
        previous_label = label
    return problems


def row_label(row: Mapping[str, Any], position: int) -> str:
    """``custody #<seq>``, or the row's position where it has no usable seq."""
    seq = row.get("seq")
    if isinstance(seq, int) and not isinstance(seq, bool):
        return f"custody #{seq}"
    return f"custody row {position + 1}"
