"""`sunshine evidence verify BUNDLE.zip`: check an evidence bundle offline, as an auditor would.

Needs no database or network: everything is checked against the bundle's signed checkpoint and the verifier key,
which should come from the bureau's published key (``--key``) rather than from the bundle itself.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from infra.cli import CommandError


def register(subparsers: argparse._SubParsersAction) -> None:
    evidence = subparsers.add_parser("evidence", help="evidence bundles (证据包)")
    commands = evidence.add_subparsers(dest="evidence_command", metavar="ACTION", required=True)
    verify = commands.add_parser(
        "verify",
        help="verify an evidence bundle offline",
        description="Check every member of an evidence bundle: the signed checkpoint and manifest, each file's "
                    "SHA-256/SM3/size, its Merkle inclusion proof, the custody rows and the 提取笔录. "
                    "Exits 0 when every check passes, 1 when any fails.",
    )
    verify.add_argument("bundle", type=Path, metavar="BUNDLE.zip")
    verify.add_argument("--key", default=None, metavar="KEYFILE_OR_LINE",
                        help="the bureau's published verifier key, or a file holding it (default: trust key.txt "
                             "from the bundle, and say so)")
    verify.add_argument("--json", action="store_true", help="print the report as one JSON object")
    verify.set_defaults(handler=_verify)


def _verify(args: argparse.Namespace) -> int:
    from domain.transparency.bundle import verify_bundle

    if not args.bundle.is_file():
        raise CommandError(f"no bundle file at {args.bundle}", exit_code=2)
    trusted_key = None if args.key is None else read_trusted_key(args.key)
    report = verify_bundle(args.bundle, trusted_key=trusted_key)
    if args.json:
        print(json.dumps(dataclasses.asdict(report), ensure_ascii=False, indent=2))
        return 0 if report.ok else 1
    for item in report.items:
        print(f"{'✓' if item.ok else '✗'} {item.name}: {item.detail}")
    failed = len(report.failures)
    if report.ok:
        trust = "against the trusted key" if trusted_key else "against the bundle's own key (compare it, see above)"
        print(f"VERIFIED: all {len(report.items)} checks passed, {trust}")
    else:
        print(f"NOT VERIFIED: {failed} of {len(report.items)} checks failed")
    return 0 if report.ok else 1


def read_trusted_key(value: str) -> str:
    """The verifier key line given, or the one line (ignoring blanks and # comments) of the file it names."""
    from domain.transparency.signed_note import InvalidNote, NoteVerifier

    key = value.strip()
    path = Path(value)
    try:
        is_file = path.is_file()
    except OSError:  # a key line too long or odd to be a file name
        is_file = False
    if is_file:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise CommandError(f"cannot read the key file {path}: {error}", exit_code=2) from None
        lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
        if len(lines) != 1:
            raise CommandError(f"the key file {path} should hold one verifier key line, not {len(lines)}",
                               exit_code=2)
        key = lines[0]
    try:
        NoteVerifier.from_verifier_key(key)
    except (InvalidNote, ValueError) as error:
        raise CommandError(f"--key is neither a key file nor a verifier key: {error}", exit_code=2) from None
    return key
