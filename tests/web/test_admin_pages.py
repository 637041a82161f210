"""The administrator's pages: users (create with a one-time password, disable, enable, reset the second factor)
and devices (a one-time key that works); every change audited; no case content for the administrator; CSRF."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from domain.audit.models import AuditEvent
from domain.devices.models import Device
from domain.users.models import User
from domain.users.web_sessions import WebSession
from tests.api.conftest import PASSWORD, World
from tests.web.conftest import csrf_of, sign_in

SECRET = re.compile(r'<code class="secret">([^<]+)</code>')


@pytest.fixture
def admin(browser_for: Callable[[str], TestClient]) -> TestClient:
    return browser_for("admin")


def audit_of(engine: Engine, action: str) -> list[AuditEvent]:
    with Session(engine) as session:
        return list(session.exec(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def post_form(client: TestClient, path: str, page: str = "/admin", **data: str):
    token = csrf_of(client.get(page).text)
    return client.post(path, data={"csrf_token": token, **data}, follow_redirects=False)


def error_of(response) -> str:
    return response.text.split('class="flash error"')[1].split("</div>")[0]


def login_status(app_client: TestClient, username: str, password: str) -> int:
    client = TestClient(app_client.app)
    page = client.get("/login")
    response = client.post("/login", data={"username": username, "password": password,
                                           "csrf_token": csrf_of(page.text)}, follow_redirects=False)
    return response.status_code


def test_others_get_a_403_page(browser_for: Callable[[str], TestClient], world: World) -> None:
    for username in ("merchant1", "officer1", "brigade", "command", "auditor"):
        client = browser_for(username)
        for path in ("/admin", "/admin/devices"):
            assert client.get(path).status_code == 403, (username, path)
        assert post_form(client, "/admin/users", page="/account", username="sneaky", role="admin"
                         ).status_code == 403
        assert post_form(client, "/admin/users/officer1/disable", page="/account").status_code == 403


def test_the_administrator_sees_no_case_content(admin: TestClient, world: World) -> None:
    for path in ("/audit", "/audit/log", "/audit/cases/case-m1", "/brigade",
                 "/brigade/handoffs/handoff-case-m3-transferred", "/evidence/00000000-0000-0000-0000-000000000000"
                 "?case=case-m1"):
        assert admin.get(path).status_code == 403, path
    for path in ("/admin", "/admin/devices"):
        page = admin.get(path).text
        assert "case-m" not in page and "逾期未整改" not in page and "handoff" not in page


def test_the_users_list_shows_accounts_and_their_state(admin: TestClient, world: World, db_engine: Engine) -> None:
    with Session(db_engine) as session:
        officer = session.exec(select(User).where(User.username == "officer2")).one()
        officer.totp_secret, officer.totp_confirmed_at = "JBSWY3DPEHPK3PXP", datetime.now(UTC)
        session.add(officer)
        session.commit()
    page = admin.get("/admin")
    assert page.status_code == 200, page.text
    for username in ("merchant1", "officer1", "officer2", "brigade", "auditor", "admin"):
        assert f"<td>{username}" in page.text
    assert "友谊路街市场监管所" in page.text and "津味小馆" in page.text
    assert "/admin/users/officer2/reset-mfa" in page.text and "/admin/users/officer1/reset-mfa" not in page.text
    assert "/admin/users/admin/disable" not in page.text  # not oneself
    assert "$argon2" not in page.text


def test_a_created_user_signs_in_with_the_password_shown_once_and_must_change_it(
    admin: TestClient, world: World, db_engine: Engine
) -> None:
    created = post_form(admin, "/admin/users", username="Officer3", display_name="王三", role="street_officer",
                        street_office_code="machang", merchant_credit_code="ignored for this role")
    assert created.status_code == 200, created.text
    [password] = SECRET.findall(created.text)
    assert "马场街市场监管所" in created.text
    assert password not in admin.get("/admin").text
    with Session(db_engine) as session:
        user = session.exec(select(User).where(User.username == "officer3")).one()
        assert user.must_change_password and user.street_office_id == world.offices["machang"].id
        assert password not in user.password_hash
    [entry] = audit_of(db_engine, "user_created")
    assert (entry.username, entry.target, entry.outcome) == ("admin", "user:officer3", "success")

    newcomer = sign_in(TestClient(admin.app), "officer3", password)
    assert newcomer.get("/account", follow_redirects=False).headers["location"] == "/password"


@pytest.mark.parametrize(
    ("form", "status", "hint"),
    [
        ({"username": "x", "role": "auditor"}, 422, "username"),
        ({"username": "merchant1", "role": "auditor"}, 409, "already exists"),
        ({"username": "officer9", "role": "street_officer"}, 422, "street office"),
        ({"username": "shop9", "role": "merchant", "merchant_credit_code": "91120103MA05NOPE0X"}, 422, "merchant"),
        ({"username": "who9", "role": "janitor"}, 422, "role"),
    ],
)
def test_a_user_form_with_problems_says_so(
    admin: TestClient, world: World, db_engine: Engine, form: dict[str, str], status: int, hint: str
) -> None:
    response = post_form(admin, "/admin/users", **form)
    assert response.status_code == status, response.text
    assert hint in error_of(response)
    assert form.get("username", "") in response.text  # what was typed is kept
    assert not audit_of(db_engine, "user_created")


def test_a_disabled_user_cannot_sign_in_until_enabled(
    admin: TestClient, browser_for: Callable[[str], TestClient], world: World, db_engine: Engine
) -> None:
    officer = browser_for("officer1")
    disabled = post_form(admin, "/admin/users/officer1/disable")
    assert disabled.status_code == 303 and disabled.headers["location"] == "/admin?done=disabled"
    assert 'class="flash ok"' in admin.get(disabled.headers["location"]).text
    assert officer.get("/account", follow_redirects=False).headers["location"].startswith("/login")
    assert login_status(admin, "officer1", PASSWORD) == 401
    with Session(db_engine) as session:
        assert session.exec(select(WebSession).where(WebSession.end_reason == "disabled")).all()

    assert post_form(admin, "/admin/users/officer1/enable").status_code == 303
    assert login_status(admin, "officer1", PASSWORD) == 303
    assert [e.target for e in audit_of(db_engine, "user_disabled")] == ["user:officer1"]
    assert [e.target for e in audit_of(db_engine, "user_enabled")] == ["user:officer1"]
    assert post_form(admin, "/admin/users/nobody/disable").status_code == 404


def test_the_administrator_cannot_disable_themselves(admin: TestClient, world: World, db_engine: Engine) -> None:
    response = post_form(admin, "/admin/users/admin/disable")
    assert response.status_code == 409
    assert admin.get("/admin").status_code == 200
    assert not audit_of(db_engine, "user_disabled")


def test_resetting_the_second_factor_clears_the_secret(admin: TestClient, world: World, db_engine: Engine) -> None:
    with Session(db_engine) as session:
        user = session.exec(select(User).where(User.username == "command")).one()
        user.totp_secret, user.totp_confirmed_at, user.totp_last_step = "JBSWY3DPEHPK3PXP", datetime.now(UTC), 7
        session.add(user)
        session.commit()
    assert post_form(admin, "/admin/users/command/reset-mfa").status_code == 303
    with Session(db_engine) as session:
        user = session.exec(select(User).where(User.username == "command")).one()
        assert (user.totp_secret, user.totp_confirmed_at, user.totp_last_step) == (None, None, None)
        reset = session.exec(select(AuditEvent).where(AuditEvent.action == "mfa_reset")).one()
        assert (reset.username, reset.target) == ("admin", "user:command")


def test_forms_without_the_csrf_token_are_refused(admin: TestClient, world: World, db_engine: Engine) -> None:
    for path, data in (("/admin/users", {"username": "forged1", "role": "admin"}),
                       ("/admin/users/officer1/disable", {}), ("/admin/users/officer1/enable", {}),
                       ("/admin/users/officer1/reset-mfa", {}), ("/admin/devices", {"name": "forged box"})):
        response = admin.post(path, data={**data, "csrf_token": "not-the-token"}, follow_redirects=False)
        assert response.status_code == 403, path
    with Session(db_engine) as session:
        assert session.exec(select(User).where(User.username == "forged1")).first() is None
        assert not session.exec(select(User).where(User.disabled)).all()
        assert session.exec(select(Device).where(Device.name == "forged box")).first() is None
    assert len(audit_of(db_engine, "csrf_refused")) == 5


def test_a_device_key_is_shown_once_and_works(admin: TestClient, world: World, db_engine: Engine) -> None:
    page = admin.get("/admin/devices")
    assert page.status_code == 200
    assert "m1 edge box" in page.text and "vendor platform" in page.text
    with Session(db_engine) as session:
        hashes = [d.key_hash for d in session.exec(select(Device))]
    assert all(h not in page.text for h in hashes)

    created = post_form(admin, "/admin/devices", page="/admin/devices", name="马场道 edge box", kind="edge_box",
                        merchant_credit_code="91120103MA05TEST3C")
    assert created.status_code == 200, created.text
    [key] = SECRET.findall(created.text)
    assert key.startswith("sk_") and "马场道西点烘焙坊" in created.text
    after = admin.get("/admin/devices").text
    assert key not in after and "马场道 edge box" in after
    [entry] = audit_of(db_engine, "device_created")
    assert entry.target.startswith("device:") and entry.target[len("device:"):] in key

    cameras = admin.get("/api/v1/cameras", headers={"Authorization": f"Bearer {key}"})
    assert cameras.status_code == 200, cameras.text
    assert {c["merchant_credit_code"] for c in cameras.json()["items"]} == {"91120103MA05TEST3C"}


def test_a_device_form_with_problems_says_so(admin: TestClient, world: World, db_engine: Engine) -> None:
    empty = post_form(admin, "/admin/devices", page="/admin/devices", name="  ")
    assert empty.status_code == 422 and "name" in error_of(empty)
    unknown = post_form(admin, "/admin/devices", page="/admin/devices", name="box", merchant_credit_code="nope")
    assert unknown.status_code == 422 and "NOPE" in error_of(unknown)
    assert not audit_of(db_engine, "device_created")
