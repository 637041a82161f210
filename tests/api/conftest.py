"""A seeded district for the API tests: two street offices, three merchants with a camera each, one user of
every role (two merchants, two street officers), devices, and case projection rows written directly."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from api.app import create_app
from api.auth import AuthPolicy, issue_token, signing_key
from domain.cases.models import AlertCase, EnforcementHandoff
from domain.devices.service import create_device
from domain.merchants.models import Camera, Merchant, StreetOffice
from domain.users.models import Role, User
from domain.users.passwords import hash_password
from infra.components.process import free_port
from infra.settings import Settings
from tests.fixtures.database import truncate_all

TEST_SECRET_KEY = "api-tests-secret-key-0123456789abcdef"
PASSWORD = "Sunsh1ne!pass"
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@lru_cache(maxsize=1)
def password_hash() -> str:
    """One argon2 hash shared by every seeded user: hashing per user would dominate the test time."""
    return hash_password(PASSWORD)


@dataclass
class World:
    offices: dict[str, StreetOffice] = field(default_factory=dict)
    merchants: dict[str, Merchant] = field(default_factory=dict)
    cameras: dict[str, Camera] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)
    cases: dict[str, AlertCase] = field(default_factory=dict)
    device_keys: dict[str, str] = field(default_factory=dict)


def api_settings_for(database_url: str, tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "temporal_address": f"127.0.0.1:{free_port()}",  # nothing listens: Temporal is "down"
        "s3_endpoint": f"http://127.0.0.1:{free_port()}",
        "secret_key": TEST_SECRET_KEY,
        "var_dir": tmp_path / "var",
    }
    values.update(overrides)
    return Settings(**values)


def bearer_for(settings: Settings, user: User, **issue: Any) -> dict[str, str]:
    token = issue_token(signing_key(settings), user=user, policy=AuthPolicy.from_settings(settings), **issue)
    return {"Authorization": f"Bearer {token.access_token}"}


def add_user(session: Session, username: str, role: Role, **fields: Any) -> User:
    user = User(username=username, role=role.value, password_hash=password_hash(), **fields)
    session.add(user)
    session.flush()
    return user


def add_case(
    session: Session,
    world: World,
    case_id: str,
    *,
    merchant: str,
    status: str = "awaiting_verification",
    alert_type: str = "no_hat",
    next_due_at: datetime | None = None,
    overdue: bool = False,
    summary: str = "",
    transferred: bool = False,
) -> AlertCase:
    shop = world.merchants[merchant]
    camera = world.cameras[merchant]
    assert shop.id is not None and camera.id is not None
    case = AlertCase(
        case_id=case_id,
        version=1,
        merchant_id=shop.id,
        street_office_id=shop.street_office_id,
        camera_id=camera.id,
        alert_type=alert_type,
        category="dress",
        status=status,
        opened_at=T0,
        last_alert_at=T0,
        next_due_at=next_due_at,
        overdue=overdue,
        summary=summary or f"{shop.name} {alert_type}",
        handoff_id=f"handoff-{case_id}" if transferred else None,
    )
    session.add(case)
    if transferred:
        session.add(
            EnforcementHandoff(
                handoff_id=f"handoff-{case_id}",
                version=1,
                case_id=case_id,
                merchant_id=shop.id,
                street_office_id=shop.street_office_id,
                status="awaiting_acceptance",
                reason="逾期未整改",
                transferred_by="officer1",
                transferred_at=T0 + timedelta(days=2),
            )
        )
    session.flush()
    world.cases[case_id] = case
    return case


def seed_world(engine: Engine) -> World:
    world = World()
    with Session(engine, expire_on_commit=False) as session:
        for code, name in (("youyilu", "友谊路街市场监管所"), ("machang", "马场街市场监管所")):
            office = StreetOffice(code=code, name=name)
            session.add(office)
            world.offices[code] = office
        session.flush()
        for key, name, credit_code, office in (
            ("m1", "津味小馆", "92120103MA05TEST1A", "youyilu"),
            ("m2", "粤珍茶餐厅", "91120103MA05TEST2B", "youyilu"),
            ("m3", "马场道西点烘焙坊", "91120103MA05TEST3C", "machang"),
        ):
            merchant = Merchant(
                credit_code=credit_code,
                name=name,
                address=f"{name} 地址",
                street_office_id=world.offices[office].id,
            )
            session.add(merchant)
            world.merchants[key] = merchant
        session.flush()
        for key, merchant in world.merchants.items():
            camera = Camera(
                merchant_id=merchant.id,
                name=f"{merchant.name} 烹饪区",
                area="cooking",
                stream_url=f"rtsp://admin:secret@10.0.0.{merchant.id}/stream",
            )
            session.add(camera)
            world.cameras[key] = camera
        session.flush()

        users = world.users
        users["merchant1"] = add_user(session, "merchant1", Role.merchant, merchant_id=world.merchants["m1"].id)
        users["merchant2"] = add_user(session, "merchant2", Role.merchant, merchant_id=world.merchants["m2"].id)
        users["merchant3"] = add_user(session, "merchant3", Role.merchant, merchant_id=world.merchants["m3"].id)
        users["officer1"] = add_user(
            session, "officer1", Role.street_officer, street_office_id=world.offices["youyilu"].id
        )
        users["officer2"] = add_user(
            session, "officer2", Role.street_officer, street_office_id=world.offices["machang"].id
        )
        users["brigade"] = add_user(session, "brigade", Role.brigade_officer)
        users["command"] = add_user(session, "command", Role.command_center)
        users["auditor"] = add_user(session, "auditor", Role.auditor)
        users["admin"] = add_user(session, "admin", Role.admin)

        add_case(session, world, "case-m1", merchant="m1", next_due_at=T0 + timedelta(hours=24))
        add_case(session, world, "case-m2", merchant="m2", next_due_at=T0 + timedelta(hours=30))
        add_case(session, world, "case-m3", merchant="m3", next_due_at=T0 + timedelta(hours=20))
        add_case(session, world, "case-m3-transferred", merchant="m3", status="closed", transferred=True)

        _, world.device_keys["m1"] = create_device(
            session, name="m1 edge box", merchant_credit_code="92120103MA05TEST1A"
        )
        _, world.device_keys["district"] = create_device(session, name="vendor platform", kind="integration")
        session.commit()
    return world


@pytest.fixture
def world(db_engine: Engine) -> Iterator[World]:
    yield seed_world(db_engine)
    truncate_all(db_engine)


@pytest.fixture
def api_settings(database_url: str, tmp_path: Path) -> Settings:
    return api_settings_for(database_url, tmp_path)


@pytest.fixture
def api(api_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(api_settings)) as client:
        yield client


@pytest.fixture
def as_user(api_settings: Settings, world: World):
    """Authorization headers of a seeded user, by username."""

    def headers(username: str) -> dict[str, str]:
        return bearer_for(api_settings, world.users[username])

    return headers
