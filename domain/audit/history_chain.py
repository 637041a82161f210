"""The per-event SHA-256 chain over an exported Temporal history, and its signed manifest (pure).

The history is stored exactly as ``WorkflowHistory.to_json()`` wrote it (proto JSON, ``{"events": [...]}``). Each
event is hashed in canonical JSON, chained to the one before:

    link_0 = SHA-256(32 zero bytes ‖ canonical_json(event_0))
    link_i = SHA-256(link_{i-1} ‖ canonical_json(event_i))

The manifest is the body of a C2SP signed note: the workflow and run, the event count, the SHA-256 of the stored
bytes, the chain head, the code that ran the workflow, the export time, and then one ``link <event id> <hex>`` line
per event. The links are in the signed body (not a side file) so that an edited event is named by the signature's
own authority, and an auditor needs only two files: the history and the manifest.

Canonical JSON of the parsed events (rather than the raw bytes) makes the chain independent of how the JSON was
pretty-printed; the file digest still pins the exact bytes.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import quote, unquote

from domain.transparency.canonical import canonical_json
from domain.transparency.signed_note import InvalidNote

MANIFEST_FORMAT = "sunshine-workflow-history/1"
GENESIS = bytes(32)
NO_BUILD_IDS = "-"
BUILD_ID_SAFE = "-._~+:/@="  # a build id is written percent-encoded beyond these (never a comma or a space)
_HEX64 = re.compile(r"[0-9a-f]{64}")
_DECIMAL = re.compile(r"0|[1-9][0-9]*")
_HEADER_KEYS = (
    "workflow", "run", "type", "events", "history-sha256", "chain-head", "code-version", "build-ids", "exported-at",
)


class MalformedHistory(ValueError):
    """The bytes are not a history export (JSON object with an ``events`` list of objects)."""


class MalformedManifest(ValueError):
    """The manifest text is not a ``sunshine-workflow-history/1`` body; the message says where."""


class NoteChecker(Protocol):
    """What verification needs of a key: ``NoteVerifier.verify`` (the note's text, or InvalidNote)."""

    def verify(self, note: str) -> str: ...


@dataclass(frozen=True)
class ChainLink:
    event_id: int
    link: str  # hex SHA-256


@dataclass(frozen=True)
class HistoryManifest:
    workflow_id: str
    run_id: str
    workflow_type: str
    event_count: int
    history_sha256: str
    chain_head: str
    code_version: str
    build_ids: tuple[str, ...]
    exported_at: datetime
    links: tuple[ChainLink, ...] = field(default=(), repr=False)

    def body(self) -> str:
        """The note text (ends with a newline, as a signed note's text must)."""
        values = {
            "workflow": self.workflow_id,
            "run": self.run_id,
            "type": self.workflow_type,
            "events": str(self.event_count),
            "history-sha256": self.history_sha256,
            "chain-head": self.chain_head,
            "code-version": self.code_version or "-",
            "build-ids": ",".join(quote(build_id, safe=BUILD_ID_SAFE) for build_id in self.build_ids) or NO_BUILD_IDS,
            "exported-at": _iso_utc(self.exported_at),
        }
        for key, value in values.items():
            _check_value(key, value)
        lines = [MANIFEST_FORMAT, *(f"{key} {values[key]}" for key in _HEADER_KEYS)]
        lines += [f"link {link.event_id} {link.link}" for link in self.links]
        return "".join(f"{line}\n" for line in lines)

    @classmethod
    def parse(cls, body: str) -> HistoryManifest:
        if not body.endswith("\n"):
            raise MalformedManifest("the manifest does not end with a newline")
        lines = body[:-1].split("\n")
        if lines[0] != MANIFEST_FORMAT:
            raise MalformedManifest(f"the first line is {lines[0]!r}, not {MANIFEST_FORMAT!r}")
        if len(lines) < 1 + len(_HEADER_KEYS):
            raise MalformedManifest(f"the manifest has {len(lines)} lines; its header needs {1 + len(_HEADER_KEYS)}")
        values: dict[str, str] = {}
        for number, (expected, line) in enumerate(zip(_HEADER_KEYS, lines[1:], strict=False), start=2):
            key, _, value = line.partition(" ")
            if key != expected or not value:
                raise MalformedManifest(f"line {number} should be '{expected} <value>', not {line!r}")
            values[key] = value
        if not _DECIMAL.fullmatch(values["events"]):
            raise MalformedManifest(f"'events' is not a decimal number: {values['events']!r}")
        for key in ("history-sha256", "chain-head"):
            if not _HEX64.fullmatch(values[key]):
                raise MalformedManifest(f"'{key}' is not 64 lower-case hex digits: {values[key]!r}")
        try:
            exported_at = datetime.fromisoformat(values["exported-at"].replace("Z", "+00:00"))
        except ValueError:
            raise MalformedManifest(f"'exported-at' is not an ISO time: {values['exported-at']!r}") from None
        links = tuple(_parse_link(number, line) for number, line in
                      enumerate(lines[1 + len(_HEADER_KEYS):], start=2 + len(_HEADER_KEYS)))
        build_ids = values["build-ids"]
        return cls(
            workflow_id=values["workflow"],
            run_id=values["run"],
            workflow_type=values["type"],
            event_count=int(values["events"]),
            history_sha256=values["history-sha256"],
            chain_head=values["chain-head"],
            code_version="" if values["code-version"] == "-" else values["code-version"],
            build_ids=() if build_ids == NO_BUILD_IDS else tuple(unquote(part) for part in build_ids.split(",")),
            exported_at=exported_at,
            links=links,
        )


@dataclass(frozen=True)
class HistoryCheck:
    """What verification found. ``problems`` lists every failure, the most telling first: the signature, then the
    first event that differs (or the event count), then the file digest."""

    problems: tuple[str, ...]
    manifest: HistoryManifest | None
    event_count: int  # events in the history as given
    first_bad_index: int | None = None  # 0-based position of the first event whose chain link differs
    first_bad_event_id: int | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def problem(self) -> str | None:
        return self.problems[0] if self.problems else None


# The chain


def history_events(history: bytes | str) -> list[dict[str, Any]]:
    try:
        document = json.loads(history)
    except (ValueError, UnicodeDecodeError) as error:
        raise MalformedHistory(f"the history is not JSON: {error}") from None
    events = document.get("events") if isinstance(document, dict) else None
    if not isinstance(events, list) or not all(isinstance(event, dict) for event in events):
        raise MalformedHistory("the history has no 'events' list of objects")
    return events


def event_id_of(event: dict[str, Any], index: int) -> int:
    """The event's own id (proto JSON writes int64 as text); its position + 1 when missing or odd."""
    try:
        return int(event.get("eventId", index + 1))
    except (TypeError, ValueError):
        return index + 1


def chain_links(events: Sequence[dict[str, Any]]) -> list[ChainLink]:
    previous = GENESIS
    links = []
    for index, event in enumerate(events):
        previous = hashlib.sha256(previous + canonical_json(event)).digest()
        links.append(ChainLink(event_id=event_id_of(event, index), link=previous.hex()))
    return links


def build_ids_of(events: Sequence[dict[str, Any]]) -> list[str]:
    """The build ids of the workers that completed the workflow tasks, in order of first appearance.

    Where a server records it depends on its version and on Worker Versioning: the deployment version (string or
    object), the worker version stamp (what a Worker's ``build_id`` becomes), or the legacy binary checksum.
    """
    found: list[str] = []
    for event in events:
        attributes = event.get("workflowTaskCompletedEventAttributes")
        if not isinstance(attributes, dict):
            continue
        candidates = (
            attributes.get("workerDeploymentVersion"),
            _field(attributes.get("deploymentVersion"), "buildId"),
            _field(attributes.get("deployment"), "buildId"),
            _field(attributes.get("workerVersion"), "buildId"),
            attributes.get("binaryChecksum"),
        )
        build_id = next((value for value in candidates if isinstance(value, str) and value), None)
        if build_id is not None and build_id not in found:
            found.append(build_id)
    return found


def _field(value: Any, name: str) -> Any:
    return value.get(name) if isinstance(value, dict) else None


def build_manifest(
    history: bytes,
    *,
    workflow_id: str,
    run_id: str,
    workflow_type: str,
    code_version: str,
    build_ids: Sequence[str],
    exported_at: datetime,
) -> HistoryManifest:
    links = chain_links(history_events(history))
    return HistoryManifest(
        workflow_id=workflow_id,
        run_id=run_id,
        workflow_type=workflow_type,
        event_count=len(links),
        history_sha256=hashlib.sha256(history).hexdigest(),
        chain_head=links[-1].link if links else GENESIS.hex(),
        code_version=code_version,
        build_ids=tuple(build_ids),
        exported_at=exported_at,
        links=tuple(links),
    )


# Verification


def verify_history(history: bytes, manifest_note: str, verifier: NoteChecker) -> HistoryCheck:
    """Check the stored bytes against the signed manifest; never raises for bad input, reports it instead."""
    problems: list[str] = []
    body: str | None
    try:
        body = verifier.verify(manifest_note)
    except InvalidNote as error:
        problems.append(f"manifest signature: {error}")
        body = _unverified_body(manifest_note)
    try:
        manifest = HistoryManifest.parse(body) if body is not None else None
    except MalformedManifest as error:
        problems.append(f"manifest: {error}")
        manifest = None
    try:
        events = history_events(history)
    except MalformedHistory as error:
        return HistoryCheck(problems=(*problems, str(error)), manifest=manifest, event_count=0)
    if manifest is None:
        return HistoryCheck(problems=tuple(problems) or ("no manifest",), manifest=None, event_count=len(events))
    links = chain_links(events)
    bad_index = _first_divergent_link(links, manifest)
    bad_event_id = None
    if bad_index is None:
        if len(links) != manifest.event_count:
            problems.append(f"the history has {len(links)} events; the manifest says {manifest.event_count}")
        if (links[-1].link if links else GENESIS.hex()) != manifest.chain_head:
            problems.append("the chain head differs from the manifest's")
    elif bad_index >= len(links):
        problems.append(f"the history ends after {len(links)} events; {len(manifest.links)} were exported")
    else:
        bad_event_id = links[bad_index].event_id
        if bad_index >= len(manifest.links):
            problems.append(f"event id {bad_event_id} (index {bad_index}) and any after it were not exported")
        else:
            problems.append(f"event id {bad_event_id} (index {bad_index}) differs from the exported one")
    signed_links = manifest.links
    if signed_links and (len(signed_links) != manifest.event_count or signed_links[-1].link != manifest.chain_head):
        problems.append("the manifest's links do not match its event count and chain head")
    if hashlib.sha256(history).hexdigest() != manifest.history_sha256:
        problems.append("the file's SHA-256 differs from the manifest's")
    return HistoryCheck(
        problems=tuple(problems), manifest=manifest, event_count=len(events),
        first_bad_index=bad_index, first_bad_event_id=bad_event_id,
    )


def _first_divergent_link(links: Sequence[ChainLink], manifest: HistoryManifest) -> int | None:
    """The index of the first event whose link is not the manifest's (a missing or extra event counts too)."""
    expected = manifest.links
    for index, (found, signed) in enumerate(zip(links, expected, strict=False)):
        if found.link != signed.link:
            return index
    if len(links) != len(expected) and expected:
        return min(len(links), len(expected))
    return None


def _unverified_body(note: str) -> str | None:
    """The text of a note whose signature failed, to say more than "bad signature" (never trusted)."""
    split = note.rfind("\n\n")
    return note[: split + 1] if split >= 0 else None


def _parse_link(number: int, line: str) -> ChainLink:
    parts = line.split(" ")
    if len(parts) != 3 or parts[0] != "link" or not _DECIMAL.fullmatch(parts[1]) or not _HEX64.fullmatch(parts[2]):
        raise MalformedManifest(f"line {number} should be 'link <event id> <64 hex>', not {line!r}")
    return ChainLink(event_id=int(parts[1]), link=parts[2])


def _check_value(key: str, value: str) -> None:
    if not value or "\n" in value or any(ord(char) < 0x20 for char in value):
        raise MalformedManifest(f"manifest value of '{key}' is empty or holds a control character: {value!r}")


def _iso_utc(instant: datetime) -> str:
    if instant.utcoffset() is None:
        raise MalformedManifest("exported-at must carry a time zone")
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")
