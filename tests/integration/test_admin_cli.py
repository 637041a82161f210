"""`sunshine user …` and `sunshine device …` against a real PostgreSQL."""

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import Session, select

from domain.devices.models import Device
from domain.devices.service import authenticate_device, create_device
from domain.merchants.models import Merchant, StreetOffice
from domain.users.models import User
from domain.users.passwords import verify_password
from infra.cli import main
from infra.settings import get_settings
from tests.integration.conftest import Cli

pytestmark = pytest.mark.integration

STRONG_PASSWORD = "Hexi-Market-2024"
MERCHANT_CODE = "91350100M000100Y43"

@pytest.fixture
def district(db_session: Session) -> None:
    office = StreetOffice(code="youyilu", name="友谊路街市场监管所")
    db_session.add(office)
    db_session.flush()
    assert office.id is not None
    db_session.add(
        Merchant(
            credit_code=MERCHANT_CODE, name="津味小馆", address="天津市河西区友谊路1号", street_office_id=office.id
        )
    )
    db_session.commit()


def stored_user(session: Session, username: str) -> User:
    session.expire_all()
    user = session.exec(select(User).where(User.username == username)).one()
    return user


# user create


@pytest.mark.usefixtures("district")
def test_create_street_officer_stores_an_argon2id_hash(
    cli: Cli, db_session: Session, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli(
        "user", "create", "--username", "Li.Ming", "--role", "street_officer", "--street-office", "youyilu",
        "--display-name", "李明", "--password-stdin", stdin=STRONG_PASSWORD + "\n",
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "created user li.ming" in out
    assert STRONG_PASSWORD not in out + err
    user = stored_user(db_session, "li.ming")
    assert user.password_hash.startswith("$argon2id$")
    assert verify_password(user.password_hash, STRONG_PASSWORD)
    assert user.role == "street_officer"
    assert user.street_office_id is not None and user.merchant_id is None
    assert user.display_name == "李明"
    assert user.must_change_password


@pytest.mark.usefixtures("district")
def test_create_merchant_user_and_district_wide_user(cli: Cli, db_session: Session) -> None:
    assert cli(
        "user", "create", "--username", "shop1", "--role", "merchant", "--merchant", MERCHANT_CODE.lower(),
        "--password-stdin", stdin=STRONG_PASSWORD + "\r\n",
    ) == 0  # fmt: skip
    assert stored_user(db_session, "shop1").merchant_id is not None
    assert verify_password(stored_user(db_session, "shop1").password_hash, STRONG_PASSWORD)
    assert cli(
        "user", "create", "--username", "audit", "--role", "auditor", "--password-stdin",
        "--no-must-change-password", stdin=STRONG_PASSWORD,
    ) == 0  # fmt: skip
    auditor = stored_user(db_session, "audit")
    assert auditor.street_office_id is None and auditor.merchant_id is None
    assert not auditor.must_change_password


def test_unknown_role_is_argparse_misuse(cli: Cli, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli("user", "create", "--username", "x1x", "--role", "superuser", "--password-stdin", stdin=STRONG_PASSWORD)
    assert exit_info.value.code == 2
    assert "invalid choice: 'superuser'" in capsys.readouterr().err


def test_password_on_the_command_line_is_refused(
    cli: Cli, db_session: Session, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli("user", "create", "--username", "admin1", "--role", "admin", stdin=STRONG_PASSWORD)
    err = capsys.readouterr().err
    assert code == 2
    assert "--password-stdin is required" in err
    assert db_session.exec(select(User)).all() == []


@pytest.mark.parametrize("stdin", ["", "\n"])
def test_empty_password_is_refused(cli: Cli, stdin: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli("user", "create", "--username", "admin1", "--role", "admin", "--password-stdin", stdin=stdin)
    assert code == 1
    assert "no password on standard input" in capsys.readouterr().err


def test_weak_password_lists_each_problem_without_echoing_it(
    cli: Cli, db_session: Session, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli("user", "create", "--username", "admin1", "--role", "admin", "--password-stdin", stdin="secret1\n")
    out, err = capsys.readouterr()
    assert code == 1
    assert err.startswith("error: the password is too weak")
    assert "at least 8" in err and "2 of the 4" in err
    assert "secret1" not in out + err
    assert db_session.exec(select(User)).all() == []


@pytest.mark.usefixtures("district")
@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--role", "street_officer"], "needs the code of their street office"),
        (["--role", "merchant"], "needs the credit code of their merchant"),
        (["--role", "auditor", "--street-office", "youyilu"], "not scoped to a street office"),
        (["--role", "command_center", "--merchant", MERCHANT_CODE], "not scoped to a merchant"),
        (["--role", "merchant", "--merchant", MERCHANT_CODE, "--street-office", "youyilu"], "not scoped to a street"),
        (["--role", "street_officer", "--street-office", "nowhere"], "no street office with code 'nowhere'"),
        (["--role", "merchant", "--merchant", "91350100M000100Y44"], "no merchant with credit code"),
    ],
)
def test_scope_mistakes_are_refused(
    cli: Cli, db_session: Session, capsys: pytest.CaptureFixture[str], args: list[str], fragment: str
) -> None:
    code = cli("user", "create", "--username", "someone", *args, "--password-stdin", stdin=STRONG_PASSWORD)
    err = capsys.readouterr().err
    assert code == 1
    assert fragment in err
    assert len(err.strip().splitlines()) == 1
    assert db_session.exec(select(User)).all() == []


@pytest.mark.parametrize("username", ["ab", "has space", "名字", "-leading", "x" * 65, "a@b.cn"])
def test_bad_usernames_are_refused(cli: Cli, username: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli("user", "create", f"--username={username}", "--role", "admin", "--password-stdin", stdin=STRONG_PASSWORD)
    assert code == 1
    assert "is not valid" in capsys.readouterr().err


def test_duplicate_username_is_refused_whatever_its_case(cli: Cli, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        cli("user", "create", "--username", "admin1", "--role", "admin", "--password-stdin", stdin=STRONG_PASSWORD) == 0
    )
    code = cli("user", "create", "--username", "ADMIN1", "--role", "auditor", "--password-stdin", stdin=STRONG_PASSWORD)
    assert code == 1
    assert "a user named 'admin1' already exists" in capsys.readouterr().err


# user disable


def test_disable_user(cli: Cli, db_session: Session, capsys: pytest.CaptureFixture[str]) -> None:
    cli("user", "create", "--username", "admin1", "--role", "admin", "--password-stdin", stdin=STRONG_PASSWORD)
    assert cli("user", "disable", "--username", "admin1") == 0
    assert "disabled user admin1" in capsys.readouterr().out
    assert stored_user(db_session, "admin1").disabled
    assert cli("user", "disable", "--username", "admin1") == 0  # harmless twice


def test_disable_unknown_user(cli: Cli, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("user", "disable", "--username", "ghost") == 1
    assert "no user named 'ghost'" in capsys.readouterr().err


# device create


@pytest.mark.usefixtures("district")
def test_device_key_is_shown_once_and_only_its_hash_is_stored(
    cli: Cli, db_session: Session, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli("device", "create", "--name", "厨房边缘盒 1", "--merchant", MERCHANT_CODE) == 0
    out = capsys.readouterr().out
    assert "shown only this once" in out
    key = out.strip().splitlines()[-1]
    assert key.startswith("sk_")
    prefix, key_id, secret = key[:3], key[3:15], key[16:]
    assert prefix == "sk_" and key[15] == "_" and len(key_id) == 12 and len(secret) == 43

    db_session.expire_all()
    device = db_session.exec(select(Device)).one()
    assert device.key_id == key_id
    assert device.key_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in str(device.model_dump())
    assert device.kind == "edge_box" and device.merchant_id is not None

    authenticated = authenticate_device(db_session, presented_key=key)
    assert authenticated is not None and authenticated.id == device.id


def test_district_wide_integration_device(cli: Cli, db_session: Session, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("device", "create", "--name", "vendor platform", "--kind", "integration") == 0
    assert "district-wide" in capsys.readouterr().out
    device = db_session.exec(select(Device)).one()
    assert device.kind == "integration" and device.merchant_id is None


def test_device_for_unknown_merchant(cli: Cli, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("device", "create", "--name", "box", "--merchant", MERCHANT_CODE) == 1
    err = capsys.readouterr().err
    assert "no merchant with credit code" in err and "sk_" not in err


def test_device_kind_must_be_known(cli: Cli) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli("device", "create", "--name", "box", "--kind", "toaster")
    assert exit_info.value.code == 2


def test_wrong_malformed_and_revoked_keys_are_refused(db_session: Session) -> None:
    device, key = create_device(db_session, name="box")
    other_device, other_key = create_device(db_session, name="box 2")
    db_session.commit()
    assert device.key_id != other_device.key_id
    assert authenticate_device(db_session, presented_key=key) == device

    wrong_secret = key[:-1] + ("A" if key[-1] != "A" else "B")
    for presented in [wrong_secret, "", "sk_", "sk_short_secret", key + "x", key.replace("sk_", "pk_"), "x" * 5000,
                      key[:16] + other_key[16:], "sk_" + "z" * 12 + key[15:]]:  # fmt: skip
        assert authenticate_device(db_session, presented_key=presented) is None, presented

    device.revoked_at = datetime.now(UTC)
    db_session.add(device)
    db_session.commit()
    assert authenticate_device(db_session, presented_key=key) is None
    assert authenticate_device(db_session, presented_key=other_key) == other_device


# configuration and files


def test_unreachable_database_is_one_line_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SUNSHINE_DATABASE_URL", "postgresql://sunshine:hunter2@127.0.0.1:1/sunshine")
    get_settings.cache_clear()
    try:
        code = main(["user", "disable", "--username", "anyone"])
    finally:
        get_settings.cache_clear()
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("error: cannot reach the database")
    assert "SUNSHINE_DATABASE_URL" in err
    assert "hunter2" not in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_import_of_missing_file(cli: Cli, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("merchant", "import", str(tmp_path / "nope.csv")) == 1
    assert "no such file" in capsys.readouterr().err


def test_import_of_unsupported_file_type(cli: Cli, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "merchants.xls"
    path.write_bytes(b"\xd0\xcf\x11\xe0")
    assert cli("merchant", "import", str(path)) == 1
    assert "unsupported file type '.xls'" in capsys.readouterr().err


def test_group_without_action_is_misuse(cli: Cli) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli("user")
    assert exit_info.value.code == 2


def test_invalid_database_setting_is_named(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SUNSHINE_DATABASE_URL", "not a url")
    get_settings.cache_clear()
    try:
        assert main(["user", "disable", "--username", "anyone"]) == 1
    finally:
        get_settings.cache_clear()
    assert capsys.readouterr().err.startswith("error: invalid configuration: SUNSHINE_DATABASE_URL:")


def test_database_without_migrations_says_so(
    fresh_database: Callable[[], str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SUNSHINE_DATABASE_URL", fresh_database())
    get_settings.cache_clear()
    try:
        assert main(["user", "disable", "--username", "anyone"]) == 1
    finally:
        get_settings.cache_clear()
    err = capsys.readouterr().err
    assert "has no Sunshine tables; run `sunshine db upgrade` first" in err
    assert "Traceback" not in err
