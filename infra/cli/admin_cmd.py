"""Administration: `sunshine user …`, `sunshine device …`, `sunshine merchant import`, `sunshine demo seed`.

Each command is one database transaction. Domain refusals print ``error: <reason>`` and exit 1; misuse exits 2.
Secrets are printed only where that is the command's purpose (a new device key, seeded demo passwords).
"""

from __future__ import annotations

import argparse
import functools
import getpass
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlmodel import Session

from infra.cli import CommandError, Handler

DATABASE_SETTING = "SUNSHINE_DATABASE_URL"
_CONNECT_TIMEOUT_SECONDS = 10


def register(subparsers: argparse._SubParsersAction) -> None:
    from domain.devices.models import DeviceKind
    from domain.users.models import Role

    user = subparsers.add_parser("user", help="user accounts")
    user_commands = user.add_subparsers(dest="user_command", metavar="ACTION", required=True)
    create = user_commands.add_parser(
        "create",
        help="create a user; the password is read from stdin",
        description="Create a user. The password is read from standard input (one line), never from the "
        "command line, where it would be kept in shell history and visible to other users.",
    )
    create.add_argument("--username", required=True)
    create.add_argument("--role", required=True, choices=[role.value for role in Role])
    create.add_argument("--street-office", metavar="CODE", help="street office code (street_officer only)")
    create.add_argument("--merchant", metavar="CREDIT_CODE", help="merchant credit code (merchant only)")
    create.add_argument("--display-name", default="")
    create.add_argument("--password-stdin", action="store_true", help="read the password from stdin (required)")
    create.add_argument(
        "--must-change-password",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="require a new password at first sign-in (default: yes)",
    )
    create.set_defaults(handler=_user_create)
    disable = user_commands.add_parser("disable", help="stop a user from signing in")
    disable.add_argument("--username", required=True)
    disable.set_defaults(handler=_user_disable)

    device = subparsers.add_parser("device", help="edge boxes and integrations that post alerts")
    device_commands = device.add_subparsers(dest="device_command", metavar="ACTION", required=True)
    device_create = device_commands.add_parser("create", help="register a device and print its one-time key")
    device_create.add_argument("--name", required=True)
    device_create.add_argument(
        "--merchant", metavar="CREDIT_CODE", help="the merchant it serves (default: district-wide)"
    )
    device_create.add_argument("--kind", choices=[kind.value for kind in DeviceKind], default=DeviceKind.edge_box)
    device_create.set_defaults(handler=_device_create)

    merchant = subparsers.add_parser("merchant", help="merchant records")
    merchant_commands = merchant.add_subparsers(dest="merchant_command", metavar="ACTION", required=True)
    merchant_import = merchant_commands.add_parser(
        "import",
        help="import merchants from a CSV (UTF-8) or XLSX file",
        description="Import merchants. Columns: credit_code/统一社会信用代码, name/名称, address/地址, "
        "street_office/街道所代码 (required); food_licence_no/食品经营许可证号, risk_level/风险等级, "
        "credit_level/信用等级, business_hours/营业时间 (optional). Every bad row is reported; nothing is "
        "imported while any row is bad unless --skip-invalid.",
    )
    merchant_import.add_argument("file", type=Path, metavar="FILE")
    merchant_import.add_argument(
        "--skip-invalid", action="store_true", help="import the good rows and report the bad ones"
    )
    merchant_import.add_argument(
        "--update", action="store_true", help="update merchants already registered (matched by credit code)"
    )
    merchant_import.set_defaults(handler=_merchant_import)

    demo = subparsers.add_parser("demo", help="demo data for a local stack")
    demo_commands = demo.add_subparsers(dest="demo_command", metavar="ACTION", required=True)
    seed = demo_commands.add_parser(
        "seed",
        help="seed the Hexi demo district into an empty database and print the demo accounts",
        description="Seed demo data. Refused when the database already has street offices, merchants, users "
        "or devices: demo records must never mix with real ones. Start from a fresh database instead.",
    )
    seed.set_defaults(handler=_demo_seed)


def _domain_errors_as_refusals(handler: Callable[[argparse.Namespace], int]) -> Handler:
    """Domain refusals become ``error: …`` lines (exit 1) rather than tracebacks."""

    @functools.wraps(handler)
    def wrapper(args: argparse.Namespace) -> int:
        from domain.errors import DomainError

        try:
            return handler(args)
        except DomainError as exc:
            raise CommandError(str(exc)) from exc

    return wrapper


@contextmanager
def _transaction() -> Iterator[Session]:
    """One committed unit of work on the configured database, with unreachable databases reported plainly."""
    from psycopg.errors import UndefinedTable
    from pydantic import ValidationError
    from sqlalchemy.exc import OperationalError, ProgrammingError

    from infra.db import make_engine, session_scope
    from infra.settings import get_settings

    try:
        url = get_settings().effective_database_url
    except ValidationError as exc:
        problems = "; ".join(
            f"SUNSHINE_{'_'.join(str(part) for part in error['loc']).upper()}: {error['msg']}" for error in exc.errors()
        )
        raise CommandError(f"invalid configuration: {problems}") from None
    engine = make_engine(url, connect_args={"connect_timeout": _CONNECT_TIMEOUT_SECONDS})
    shown_url = engine.url.render_as_string(hide_password=True)
    try:
        try:
            with engine.connect():
                pass
        except OperationalError as exc:
            raise CommandError(
                f"cannot reach the database at {shown_url} (set {DATABASE_SETTING}, or start the local stack "
                f"with `sunshine up`): {_first_line(str(exc.orig))}"
            ) from None
        try:
            with session_scope(engine) as session:
                yield session
        except ProgrammingError as exc:
            if isinstance(exc.orig, UndefinedTable):
                raise CommandError(
                    f"the database at {shown_url} has no Sunshine tables; run `sunshine db upgrade` first"
                ) from None
            raise
    finally:
        engine.dispose()


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text


def _read_password(args: argparse.Namespace) -> str:
    if not args.password_stdin:
        raise CommandError(
            "--password-stdin is required: the password is read from standard input, never from the command "
            "line (e.g. `printf '%s\\n' \"$PASSWORD\" | sunshine user create … --password-stdin`)",
            exit_code=2,
        )
    if sys.stdin is None:
        raise CommandError("no standard input to read the password from")
    # At a terminal, read without echo; from a pipe, take exactly the first line.
    password = getpass.getpass("password: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise CommandError("no password on standard input (expected one line)")
    return password


@_domain_errors_as_refusals
def _user_create(args: argparse.Namespace) -> int:
    from domain.users.service import create_user

    password = _read_password(args)
    with _transaction() as session:
        user = create_user(
            session,
            username=args.username,
            role=args.role,
            password=password,
            street_office_code=args.street_office,
            merchant_credit_code=args.merchant,
            display_name=args.display_name,
            must_change_password=args.must_change_password,
        )
        scope = f", street office {args.street_office}" if args.street_office else ""
        scope += f", merchant {args.merchant}" if args.merchant else ""
        print(f"created user {user.username} (role {user.role}{scope})")
    return 0


@_domain_errors_as_refusals
def _user_disable(args: argparse.Namespace) -> int:
    from domain.users.service import disable_user

    with _transaction() as session:
        user = disable_user(session, username=args.username)
        print(f"disabled user {user.username}; they can no longer sign in")
    return 0


@_domain_errors_as_refusals
def _device_create(args: argparse.Namespace) -> int:
    from domain.devices.service import create_device

    with _transaction() as session:
        device, key = create_device(session, name=args.name, merchant_credit_code=args.merchant, kind=args.kind)
        scope = f"merchant {args.merchant}" if args.merchant else "district-wide"
        print(f"created device {device.name!r} ({device.kind}, {scope}), key id {device.key_id}")
    # Printed after the commit: a key shown for a device that was then rolled back would be useless.
    print("device key (shown only this once; store it in the device's configuration now):")
    print(key)
    return 0


@_domain_errors_as_refusals
def _merchant_import(args: argparse.Namespace) -> int:
    from domain.merchants.importer import read_merchant_file
    from domain.merchants.service import import_merchants

    path: Path = args.file
    merchant_file = read_merchant_file(path)  # file problems (missing, wrong type, bad header) need no database
    with _transaction() as session:
        report = import_merchants(
            session, merchant_file=merchant_file, skip_invalid=args.skip_invalid, update=args.update
        )
        if report.problems and not args.skip_invalid:
            for problem in report.problems:
                print(problem, file=sys.stderr)
            raise CommandError(
                f"{len(report.problems)} of {report.rows_read} rows are invalid; nothing was imported "
                "(fix them, or use --skip-invalid to import the other rows)"
            )
    if report.ignored_headers:
        print(f"ignored columns: {', '.join(report.ignored_headers)}")
    for problem in report.problems:
        print(f"skipped {problem}", file=sys.stderr)
    print(
        f"imported {path.name}: {report.created} created, {report.updated} updated, "
        f"{len(report.problems)} skipped, of {report.rows_read} rows"
    )
    return 0


@_domain_errors_as_refusals
def _demo_seed(args: argparse.Namespace) -> int:
    from infra.demo import database_is_empty, format_accounts, seed_demo_data

    with _transaction() as session:
        if not database_is_empty(session):
            raise CommandError(
                "the database already has data (street offices, merchants, users or devices); demo data is "
                "only seeded into an empty database, so that it never mixes with real records"
            )
        summary = seed_demo_data(session)
    print(format_accounts(summary))
    return 0
