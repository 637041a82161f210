"""The per-event chain and signed manifest of an exported history (pure), over a committed recorded history:
round trip of the manifest, and what verification names for a dropped, an added or a reordered event."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from domain.audit.history_chain import (
    MalformedManifest,
    build_ids_of,
    build_manifest,
    chain_links,
    history_events,
    verify_history,
)
from domain.audit.history_timeline import timeline
from domain.transparency.signed_note import NoteSigner, NoteVerifier, generate_signer_key

RECORDED = Path(__file__).resolve().parents[1] / "replay" / "histories" / "transfer_case.json"
SIGNER = NoteSigner.from_signer_key(generate_signer_key("test.local/histories"))
VERIFIER = NoteVerifier.from_verifier_key(SIGNER.verifier_key())
EXPORTED_AT = datetime(2026, 12, 18, 16, 5, tzinfo=UTC)


def signed(history: bytes, build_ids: list[str] | None = None) -> str:
    manifest = build_manifest(history, workflow_id="case-1", run_id="run-1", workflow_type="AlertCaseWorkflow",
                              code_version="0123abc-dirty", exported_at=EXPORTED_AT,
                              build_ids=build_ids_of(history_events(history)) if build_ids is None else build_ids)
    return SIGNER.sign(manifest.body())


def with_events(history: bytes, change) -> bytes:
    document = json.loads(history)
    document["events"] = change(document["events"])
    return json.dumps(document).encode()


def test_the_manifest_round_trips_and_its_chain_head_is_the_last_link() -> None:
    history = RECORDED.read_bytes()
    check = verify_history(history, signed(history, ["git:1a2b,c d"]), VERIFIER)
    assert check.ok, check.problems
    manifest = check.manifest
    assert manifest is not None
    links = chain_links(history_events(history))
    assert (manifest.event_count, manifest.chain_head) == (len(links), links[-1].link)
    assert manifest.build_ids == ("git:1a2b,c d",)  # written percent-encoded, read back as it was
    assert (manifest.code_version, manifest.exported_at) == ("0123abc-dirty", EXPORTED_AT)
    assert [link.event_id for link in manifest.links] == list(range(1, len(links) + 1))
    assert build_ids_of(history_events(history)) == ["d5289763a77ae6261f9d903d05af4815"]  # the binary checksum


def test_a_dropped_an_added_or_a_reordered_event_is_named() -> None:
    history = RECORDED.read_bytes()
    note = signed(history)
    events = history_events(history)

    dropped = verify_history(with_events(history, lambda e: e[:5] + e[6:]), note, VERIFIER)
    assert dropped.first_bad_index == 5 and dropped.problem == "event id 7 (index 5) differs from the exported one"
    truncated = verify_history(with_events(history, lambda e: e[:-2]), note, VERIFIER)
    assert truncated.problem == f"the history ends after {len(events) - 2} events; {len(events)} were exported"
    added = verify_history(with_events(history, lambda e: [*e, {**e[-1], "eventId": str(len(e) + 1)}]), note,
                           VERIFIER)
    assert added.problem == f"event id {len(events) + 1} (index {len(events)}) and any after it were not exported"
    swapped = verify_history(with_events(history, lambda e: [*e[:3], e[4], e[3], *e[5:]]), note, VERIFIER)
    assert (swapped.first_bad_index, swapped.first_bad_event_id) == (3, 5)


def test_garbage_is_reported_not_raised() -> None:
    history = RECORDED.read_bytes()
    assert verify_history(b"not json", signed(history), VERIFIER).problems[0].startswith("the history is not JSON")
    unsigned = verify_history(history, "sunshine-workflow-history/1\n", VERIFIER)
    assert unsigned.problem is not None and unsigned.problem.startswith("manifest signature: malformed note")
    with pytest.raises(MalformedManifest):
        build_manifest(history, workflow_id="case\n1", run_id="r", workflow_type="t", code_version="c",
                       build_ids=[], exported_at=EXPORTED_AT).body()


def test_the_timeline_names_who_did_what_in_beijing_time() -> None:
    lines = [line.render() for line in timeline(history_events(RECORDED.read_bytes()))]
    assert any("2026-12-19 00:00:01" in line and "update transfer by o79ecf2 (street_officer)" in line
               for line in lines)
    assert any("activity start_handoff completed, result sha256 " in line for line in lines)
    assert any("timer " in line and "«24h核查时限»" in line for line in lines)
