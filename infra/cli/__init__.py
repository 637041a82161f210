"""The ``sunshine`` command line.

Each command group lives in its own module exposing ``register(subparsers)``; a command's handler takes the
parsed arguments and returns the process exit code. Misuse exits with 2 and a message naming the problem;
a refused operation (bad data, conflict) exits with 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

Handler = Callable[[argparse.Namespace], int]

# Modules that contribute command groups, in help order.
_COMMAND_MODULES = (
    "infra.cli.stack_cmd",
    "infra.cli.admin_cmd",
    "infra.cli.calendar_cmd",
    "infra.cli.model_cmd",
    "infra.cli.vision_cmd",
    "infra.cli.evidence_cmd",
    "infra.cli.audit_cmd",
)


class CommandError(Exception):
    """A refused command: printed as ``error: <message>`` and exits with ``exit_code``."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(prog="sunshine", description="阳光食品工程智慧监管平台 Sunshine")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in _COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return handler(args)
    except CommandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
