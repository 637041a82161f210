"""`sunshine audit replay CASE_ID` and `sunshine audit export CASE_ID`: a case's exported workflow histories;
`sunshine audit verify-custody`: the evidence custody log's hash chain.

``replay`` checks an exported history against its signed manifest (the per-event SHA-256 chain, the file digest,
the signature) and replays it with the Temporal Replayer against the workflow code of this checkout, then prints
the timeline (Beijing time) and one verdict line per workflow:

    DETERMINISTIC                      exit 0
    DIVERGED at event N: <message>     exit 1   (this code would not make the recorded decisions)
    TAMPERED: <what>                   exit 2   (the history is not what was exported)

By default the copies in the evidence bucket are read (through the ``workflow_history_export`` rows); with
``--history`` and ``--manifest`` it runs fully offline on files, trusting only ``--key``. To judge what the code
that ran the case did, check out the history's recorded code version first (patches disappear from HEAD).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

from infra.cli import CommandError

if TYPE_CHECKING:
    from domain.audit.history_chain import HistoryCheck
    from domain.transparency.signed_note import NoteVerifier
    from infra.history_export import HistoryArchive
    from infra.history_replay import ReplayVerdict

EXIT_BY_VERDICT = {"deterministic": 0, "diverged": 1, "tampered": 2}


def register(subparsers: argparse._SubParsersAction) -> None:
    audit = subparsers.add_parser("audit", help="exported workflow histories (审计)")
    commands = audit.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    replay = commands.add_parser(
        "replay",
        help="verify a case's exported history and replay it against this code",
        description="Verify the per-event chain and signed manifest of a case's exported history, replay it with "
                    "the current workflow code, print its timeline and the verdict. Exit 0 DETERMINISTIC, "
                    "1 DIVERGED, 2 TAMPERED (or misuse).",
    )
    replay.add_argument("case_id", metavar="CASE_ID", help="the case (its hand-off's history is replayed too)")
    replay.add_argument("--history", type=Path, default=None, metavar="FILE",
                        help="an exported history JSON (offline: needs --manifest)")
    replay.add_argument("--manifest", type=Path, default=None, metavar="FILE", help="its signed manifest")
    replay.add_argument("--key", default=None, metavar="VKEY_OR_FILE",
                        help="the bureau's published verifier key, or a file holding it (default: the verifier of "
                             "this installation's signer key)")
    replay.set_defaults(handler=_replay)
    export = commands.add_parser(
        "export",
        help="export a closed case's history (and its hand-off's) now",
        description="Export the histories of a closed case and of its closed hand-off to the locked bucket "
                    "(the schedules do this within minutes of closing; this does it at once). Idempotent.",
    )
    export.add_argument("case_id", metavar="CASE_ID")
    export.set_defaults(handler=_export)
    custody = commands.add_parser(
        "verify-custody",
        help="check the hash chain of the evidence custody log",
        description="Walk the whole custody log (every view, download, export and transfer of evidence) in order: "
                    "each row must link to the row before it and match its own hash, and every chain head a "
                    "signed checkpoint recorded must still be there. Exit 0 intact, 1 with the rows named.",
    )
    custody.set_defaults(handler=_verify_custody)


# verify-custody


def _verify_custody(args: argparse.Namespace) -> int:
    from domain.evidence.custody_chain import verify_custody_chain
    from domain.transparency.log import custody_anchors
    from infra.cli.admin_cmd import _transaction

    with _transaction() as session:
        anchors = custody_anchors(session)
        report = verify_custody_chain(session, anchors=anchors)
    for problem in report.problems:
        print(f"✗ {problem}")
    head = "empty" if report.head_seq is None else f"head #{report.head_seq} {report.head_hash}"
    verdict = "INTACT" if report.ok else f"BROKEN ({len(report.problems)} problem(s))"
    print(f"{verdict}: {report.rows} custody row(s), {len(anchors)} checkpoint anchor(s), {head}")
    return 0 if report.ok else 1


# replay


def _replay(args: argparse.Namespace) -> int:
    import urllib3
    from minio.error import S3Error

    from infra.history_export import HistoryMissing

    if (args.history is None) != (args.manifest is None):
        raise CommandError("--history and --manifest go together", exit_code=2)
    if args.history is not None:
        verifier = _verifier(args.key)
        history = _read_file(args.history)
        note = _read_file(args.manifest).decode("utf-8", "replace")
        return _report(asyncio.run(_replay_files(args.case_id, history, note, verifier)), history)
    archive = _archive()
    verifier = _verifier(args.key) if args.key is not None else archive.verifier
    records = archive.for_case(args.case_id) or [row for row in [archive.find(args.case_id)] if row is not None]
    if not records:
        raise CommandError(f"no exported history for case {args.case_id} (export it: sunshine audit export "
                           f"{args.case_id})", exit_code=2)
    worst = 0
    for record in records:
        try:
            stored = archive.load(record.workflow_id)
        except HistoryMissing as missing:  # a locked object cannot be deleted: missing means the store lost it
            print(f"TAMPERED: the stored copy of {record.workflow_id} cannot be read: {missing}")
            worst = max(worst, EXIT_BY_VERDICT["tampered"])
            continue
        except (S3Error, urllib3.exceptions.HTTPError, OSError) as error:
            raise CommandError(f"the bucket {record.bucket} cannot be read: {error}") from None
        verdict = asyncio.run(_replay_files(record.workflow_id, stored.history, stored.manifest_note, verifier))
        worst = max(worst, _report(verdict, stored.history))
    return worst


async def _replay_files(workflow_id: str, history: bytes, note: str, verifier: NoteVerifier) -> ReplayVerdict:
    from domain.audit.history_chain import HistoryManifest
    from infra.history_replay import check_and_replay

    # Replay under the workflow id the signed manifest names; a bad signature or manifest is verification's to report.
    with contextlib.suppress(ValueError):
        workflow_id = HistoryManifest.parse(verifier.verify(note)).workflow_id
    return await check_and_replay(workflow_id, history, note, verifier)


def _report(verdict: ReplayVerdict, history: bytes) -> int:
    from domain.audit.history_chain import MalformedHistory, history_events
    from domain.audit.history_timeline import timeline

    check = verdict.check
    _print_header(check)
    try:
        events = history_events(history)
    except MalformedHistory:
        events = []
    for line in timeline(events):
        marks = []
        if line.event_id == check.first_bad_event_id:
            marks.append("✗ differs from the export")
        if line.event_id == verdict.divergence_event_id:
            marks.append("✗ replay diverged here")
        print(line.render() + (f"   {'; '.join(marks)}" if marks else ""))
    for problem in check.problems:
        print(f"✗ {problem}")
    if check.problems and events:  # what replay says of a tampered history: informative, never a clearance
        replayed = verdict.divergence or "deterministic (replay cannot see edited inputs)"
        print(f"  replay of the history as given: {replayed}")
    print(verdict.line())
    return EXIT_BY_VERDICT[verdict.verdict.value]


def _print_header(check: HistoryCheck) -> None:
    from domain.audit.history_timeline import BEIJING

    manifest = check.manifest
    if manifest is None:
        print(f"history of {check.event_count} events, without a readable manifest")
        return
    exported = manifest.exported_at.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")
    print(f"workflow {manifest.workflow_id} run {manifest.run_id} ({manifest.workflow_type}), "
          f"{manifest.event_count} events, exported {exported} Beijing time")
    print(f"ran on code {manifest.code_version or '?'}, build ids {', '.join(manifest.build_ids) or '-'}")
    print(f"chain head {manifest.chain_head}, file sha256 {manifest.history_sha256}")


def _verifier(key: str | None) -> NoteVerifier:
    from domain.transparency.signed_note import NoteVerifier
    from infra.cli.evidence_cmd import read_trusted_key

    if key is not None:
        return NoteVerifier.from_verifier_key(read_trusted_key(key))
    from infra.settings import get_settings
    from infra.transparency_key import SignerKeyMissing, load_signer

    try:
        return NoteVerifier.from_verifier_key(load_signer(get_settings()).verifier_key())
    except SignerKeyMissing as missing:
        raise CommandError(f"no --key given and {missing}", exit_code=2) from None


def _read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise CommandError(f"cannot read {path}: {error.strerror or error}", exit_code=2) from None


def _archive() -> HistoryArchive:
    from infra.db import make_engine
    from infra.history_export import HistoryArchive
    from infra.settings import get_settings
    from infra.transparency_key import SignerKeyMissing

    settings = get_settings()
    try:
        return HistoryArchive.from_settings(settings, make_engine(settings.effective_database_url))
    except SignerKeyMissing as missing:
        raise CommandError(str(missing), exit_code=2) from None


# export


def _export(args: argparse.Namespace) -> int:
    return asyncio.run(_export_case(args.case_id))


async def _export_case(case_id: str) -> int:
    from temporalio.service import RPCError, RPCStatusCode

    from activities.handoffs import handoff_workflow_id
    from infra.clients import connect_temporal
    from infra.history_export import HistoryExporter, NotClosed
    from infra.settings import get_settings

    settings = get_settings()
    try:
        client = await connect_temporal(settings)
    except Exception as error:
        raise CommandError(f"Temporal at {settings.effective_temporal_address} unreachable: {error}") from None
    exporter = HistoryExporter(client, _archive())
    exported = 0
    for workflow_id in (case_id, handoff_workflow_id(case_id)):
        try:
            record = await exporter.export(workflow_id)
        except NotClosed as running:
            raise CommandError(f"{running}: a history is exported once its workflow has closed") from None
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                if workflow_id == case_id:
                    raise CommandError(f"Temporal knows no case {case_id} (retention may have removed it)") from None
                continue  # never transferred
            raise
        exported += 1
        print(f"{record.workflow_id} run {record.run_id}: {record.event_count} events, chain head {record.chain_head}, "
              f"in {record.bucket}/{record.history_key} (exported {record.exported_at.isoformat()})")
    return 0 if exported else 1

