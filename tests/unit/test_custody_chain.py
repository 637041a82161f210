"""The custody hash chain: a deleted, edited, reordered or inserted row breaks it, and the problem names the row."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from domain.transparency.canonical import canonical_json
from domain.transparency.custody_chain import GENESIS_HASH, custody_row_hash, verify_chain


def chained(count: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    prev_hash = GENESIS_HASH
    for seq in range(1, count + 1):
        fields = {
            "seq": seq,
            "evidence_id": f"ev-{seq % 3}",
            "action": "viewed" if seq % 2 else "collected",
            "at": f"2025-03-0{1 + seq % 9}T08:00:00+00:00",
            "actor": f"user:officer{seq}",
            "actor_role": "officer",
            "unit": "示例区市场监督管理局",
            "reason": "核查预警",
            "detail": {"note": seq},
        }
        row_hash = custody_row_hash(prev_hash, fields)
        rows.append({**fields, "prev_hash": prev_hash, "row_hash": row_hash})
        prev_hash = row_hash
    return rows


def test_row_hash_is_sha256_of_prev_hash_and_canonical_fields() -> None:
    fields = {"seq": 1, "action": "collected", "detail": {"b": 1, "a": "值"}}
    expected = hashlib.sha256(bytes.fromhex(GENESIS_HASH) + canonical_json(fields)).hexdigest()
    assert custody_row_hash(GENESIS_HASH, fields) == expected
    assert custody_row_hash(GENESIS_HASH, {**fields, "prev_hash": "x", "row_hash": "y"}) == expected


@pytest.mark.parametrize("prev_hash", ["", "ab", "A" * 64, "g" * 64])
def test_row_hash_refuses_a_malformed_prev_hash(prev_hash: str) -> None:
    with pytest.raises(ValueError, match="prev_hash"):
        custody_row_hash(prev_hash, {"seq": 1})


def test_an_intact_chain_has_no_problems() -> None:
    assert verify_chain(chained(6)) == []
    assert verify_chain([]) == []


def test_a_deleted_row_breaks_the_next_link() -> None:
    rows = chained(6)
    del rows[2]
    assert verify_chain(rows) == [
        "custody #4: prev_hash does not link to custody #2 (a row was removed, inserted or moved)"
    ]


def test_deleting_the_first_row_is_seen_against_the_genesis_hash() -> None:
    rows = chained(4)[1:]
    assert verify_chain(rows) == [
        "custody #2: prev_hash does not link to the genesis hash (a row was removed, inserted or moved)"
    ]
    assert verify_chain(rows, starts_at_genesis=False) == []


def test_an_edited_row_fails_its_own_hash() -> None:
    rows = chained(5)
    rows[1]["reason"] = "另有事由"
    assert verify_chain(rows) == ["custody #2: row_hash does not match the row's fields (the row was edited)"]


def test_an_edited_and_rehashed_row_breaks_the_next_link() -> None:
    rows = chained(5)
    rows[1]["actor"] = "user:someone_else"
    rows[1]["row_hash"] = custody_row_hash(rows[1]["prev_hash"], rows[1])
    assert verify_chain(rows) == [
        "custody #3: prev_hash does not link to custody #2 (a row was removed, inserted or moved)"
    ]


def test_reordered_rows_break_the_links() -> None:
    rows = chained(5)
    rows[1], rows[2] = rows[2], rows[1]
    problems = verify_chain(rows)
    assert [problem.split(":")[0] for problem in problems] == ["custody #3", "custody #2", "custody #4"]


def test_an_inserted_row_breaks_the_chain() -> None:
    rows = chained(4)
    forged = {**rows[1], "seq": 99, "action": "downloaded", "prev_hash": rows[1]["row_hash"]}
    forged["row_hash"] = custody_row_hash(forged["prev_hash"], forged)
    rows.insert(2, forged)
    assert verify_chain(rows) == [
        "custody #3: prev_hash does not link to custody #99 (a row was removed, inserted or moved)"
    ]


def test_malformed_rows_are_problems_not_exceptions() -> None:
    rows: list[dict[str, Any]] = [{"seq": 1, "prev_hash": 7, "row_hash": None}, {"action": "x", "prev_hash": "zz"}]
    problems = verify_chain(rows)
    assert any(problem.startswith("custody #1: prev_hash does not link") for problem in problems)
    assert "custody #1: prev_hash is not a SHA-256 hash, or a field is not JSON" in problems
    assert "custody row 2: prev_hash is not a SHA-256 hash, or a field is not JSON" in problems
