"""`sunshine up` and `sunshine db …`."""

from __future__ import annotations

import argparse

from infra.cli import CommandError


def register(subparsers: argparse._SubParsersAction) -> None:
    up = subparsers.add_parser("up", help="start the whole platform locally (embedded services, demo data)")
    up.add_argument("--no-demo", action="store_true", help="do not seed demo data into an empty database")
    up.set_defaults(handler=_up)

    db = subparsers.add_parser("db", help="database migrations")
    db_commands = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    upgrade = db_commands.add_parser("upgrade", help="apply migrations (default: to head)")
    upgrade.add_argument("revision", nargs="?", default="head")
    upgrade.set_defaults(handler=_db_upgrade)
    downgrade = db_commands.add_parser("downgrade", help="revert migrations to REVISION (e.g. base)")
    downgrade.add_argument("revision")
    downgrade.set_defaults(handler=_db_downgrade)
    current = db_commands.add_parser("current", help="print the applied revision")
    current.set_defaults(handler=_db_current)


def _settings():
    from pydantic import ValidationError

    from infra.settings import get_settings

    try:
        return get_settings()
    except ValidationError as exc:
        raise CommandError(f"invalid configuration: {exc}") from exc


def _up(args: argparse.Namespace) -> int:
    from infra.stack import run_stack

    return run_stack(_settings(), seed_demo=not args.no_demo, printer=lambda line: print(line, flush=True))


def _with_database(action):
    from sqlalchemy.exc import OperationalError

    try:
        return action(_settings().effective_database_url)
    except OperationalError as exc:
        raise CommandError(f"cannot reach the database (SUNSHINE_DATABASE_URL): {exc.orig}") from exc


def _db_upgrade(args: argparse.Namespace) -> int:
    from infra import migrate

    _with_database(lambda url: migrate.upgrade(url, args.revision))
    return 0


def _db_downgrade(args: argparse.Namespace) -> int:
    from infra import migrate

    _with_database(lambda url: migrate.downgrade(url, args.revision))
    return 0


def _db_current(args: argparse.Namespace) -> int:
    from infra import migrate

    print(_with_database(migrate.current_revision) or "(none)")
    return 0
