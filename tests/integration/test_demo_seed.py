"""Demo data seeding (`seed_demo_data`, `sunshine demo seed`) against a real PostgreSQL."""

from collections import Counter
from datetime import date, timedelta

import pytest
from sqlmodel import Session, select

from domain.errors import Conflict
from domain.merchants.models import Camera, CameraArea, Certificate, CertificateKind, Merchant, StreetOffice
from domain.merchants.rules import food_licence_problem, is_valid_credit_code
from domain.users.models import Role, User
from domain.users.passwords import password_problems, verify_password
from infra.cli import main
from infra.demo import database_is_empty, format_accounts, seed_demo_data
from infra.settings import get_settings

pytestmark = pytest.mark.integration

TODAY = date(2025, 3, 14)


def test_seed_builds_the_hexi_district(db_session: Session) -> None:
    assert database_is_empty(db_session)
    summary = seed_demo_data(db_session, today=TODAY)
    db_session.commit()
    assert not database_is_empty(db_session)

    offices = db_session.exec(select(StreetOffice)).all()
    merchants = db_session.exec(select(Merchant)).all()
    cameras = db_session.exec(select(Camera)).all()
    certificates = db_session.exec(select(Certificate)).all()
    assert (summary.street_offices, summary.merchants, summary.cameras) == (3, 30, 60)
    assert (len(offices), len(merchants), len(cameras), len(certificates)) == (3, 30, 60, summary.certificates)

    assert {office.name for office in offices} == {"友谊路街市场监管所", "越秀路街市场监管所", "马场街市场监管所"}
    assert all(is_valid_credit_code(merchant.credit_code) for merchant in merchants)
    assert len({merchant.credit_code for merchant in merchants}) == 30
    licences = [merchant.food_licence_no for merchant in merchants if merchant.food_licence_no]
    assert all(number.startswith("JY1120103") and food_licence_problem(number) is None for number in licences)
    assert all(merchant.address.startswith("天津市河西区") and merchant.business_hours for merchant in merchants)
    assert Counter(merchant.street_office_id for merchant in merchants) == {office.id: 10 for office in offices}
    assert len({merchant.risk_level for merchant in merchants}) == 4
    assert len({merchant.credit_level for merchant in merchants}) >= 3

    assert Counter(camera.merchant_id for camera in cameras) == {merchant.id: 2 for merchant in merchants}
    assert {camera.area for camera in cameras} == {area.value for area in CameraArea}
    assert all(camera.stream_url.startswith("rtsp://127.0.0.1:") for camera in cameras)


def test_every_merchant_has_its_certificates_with_some_due_for_alerts(db_session: Session) -> None:
    seed_demo_data(db_session, today=TODAY)
    db_session.commit()
    merchants = db_session.exec(select(Merchant)).all()
    certificates = db_session.exec(select(Certificate)).all()
    by_merchant: dict[int | None, Counter[str]] = {merchant.id: Counter() for merchant in merchants}
    for certificate in certificates:
        by_merchant[certificate.merchant_id][certificate.kind] += 1
    for merchant in merchants:
        kinds = by_merchant[merchant.id]
        assert kinds[CertificateKind.business_licence] == 1
        licence_kind = (
            CertificateKind.food_business_licence if merchant.food_licence_no else CertificateKind.vendor_registration
        )
        assert kinds[licence_kind] == 1
        assert 1 <= kinds[CertificateKind.health_certificate] <= 3

    health = [c for c in certificates if c.kind == CertificateKind.health_certificate]
    assert all(c.holder_name for c in health)
    expiring = [c for c in certificates if c.valid_until and TODAY <= c.valid_until <= TODAY + timedelta(days=30)]
    expired = [c for c in certificates if c.valid_until and c.valid_until < TODAY]
    assert 3 <= len(expiring) <= 8
    assert 1 <= len(expired) <= 2
    assert all(c.valid_from <= TODAY for c in certificates)


def test_accounts_of_every_role_with_random_policy_passing_passwords(db_session: Session) -> None:
    first = seed_demo_data(db_session, today=TODAY)
    db_session.commit()
    users = {user.username: user for user in db_session.exec(select(User))}

    assert {account.role for account in first.accounts} == set(Role)
    assert Counter(account.role for account in first.accounts)[Role.street_officer] == 3
    assert {user.street_office_id for user in users.values() if user.role == Role.street_officer} == {
        office.id for office in db_session.exec(select(StreetOffice))
    }
    assert all(user.merchant_id for user in users.values() if user.role == Role.merchant)
    for account in first.accounts:
        user = users[account.username]
        assert password_problems(account.password) == []
        assert user.password_hash.startswith("$argon2id$")
        assert user.must_change_password and not user.disabled
    for account in (first.accounts[0], first.accounts[-1]):  # argon2 is slow on purpose: two samples suffice
        assert verify_password(users[account.username].password_hash, account.password)

    # Passwords are generated at every seeding, never fixed.
    db_session.close()
    from tests.fixtures.database import truncate_all

    truncate_all(db_session.get_bind())  # type: ignore[arg-type]
    second = seed_demo_data(db_session, today=TODAY)
    db_session.commit()
    assert [a.username for a in second.accounts] == [a.username for a in first.accounts]
    assert not {a.password for a in second.accounts} & {a.password for a in first.accounts}


def test_seeding_twice_is_refused(db_session: Session) -> None:
    seed_demo_data(db_session, today=TODAY)
    db_session.commit()
    with pytest.raises(Conflict, match="only seeded into an empty database"):
        seed_demo_data(db_session, today=TODAY)


def test_any_user_makes_the_database_non_empty(db_session: Session) -> None:
    db_session.add(User(username="admin", role="admin", password_hash="x"))
    db_session.commit()
    assert not database_is_empty(db_session)


def test_accounts_table_lists_every_account(db_session: Session) -> None:
    summary = seed_demo_data(db_session, today=TODAY)
    table = format_accounts(summary)
    for account in summary.accounts:
        line = next(line for line in table.splitlines() if line.startswith(account.username + " "))
        assert account.password in line and account.role.value in line and account.scope in line


def test_demo_seed_command(
    database_url: str, db_session: Session, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SUNSHINE_DATABASE_URL", database_url)
    get_settings.cache_clear()
    try:
        assert main(["demo", "seed"]) == 0
        out = capsys.readouterr().out
        assert "3 street offices, 30 merchants" in out and "60 cameras" in out
        users = db_session.exec(select(User)).all()
        assert {user.username for user in users} <= set(out.split())
        assert "officer.youyilu" in out and "shown only now" in out

        assert main(["demo", "seed"]) == 1
        err = capsys.readouterr().err
        assert err.startswith("error: the database already has data")
        assert len(db_session.exec(select(Merchant)).all()) == 30
    finally:
        get_settings.cache_clear()
