"""Signing in and out in the browser: lockout, idle expiry, CSRF, password change, TOTP, audit log."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlmodel import Session, select

from api.app import create_app
from domain.audit.models import AuditEvent
from domain.users import totp
from domain.users.models import User
from domain.users.web_sessions import WebSession
from tests.api.conftest import PASSWORD, World, api_settings_for
from tests.web.conftest import csrf_of, sign_in


def audit_actions(engine: Engine, username: str) -> list[str]:
    with Session(engine) as session:
        rows = session.exec(select(AuditEvent).where(AuditEvent.username == username).order_by(AuditEvent.id))
        return [f"{row.action}:{row.outcome}" for row in rows]


def login_post(client: TestClient, username: str, password: str, **extra: str):
    page = client.get("/login")
    data = {"username": username, "password": password, "csrf_token": csrf_of(page.text), **extra}
    return client.post("/login", data=data, follow_redirects=False)


def test_the_sign_in_page_speaks_chinese_first_and_switches_to_english(api: TestClient, world: World) -> None:
    page = api.get("/login")
    assert page.status_code == 200
    assert '<html lang="zh-CN">' in page.text
    assert "登录" in page.text
    api.get("/lang/en?next=/login")
    english = api.get("/login")
    assert '<html lang="en">' in english.text and "Sign in" in english.text


def test_pages_send_security_headers(api: TestClient, world: World) -> None:
    headers = api.get("/login").headers
    assert "script-src 'self'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"
    assert headers["cache-control"] == "no-store"


def test_signing_in_lands_on_the_roles_start_page_and_is_audited(
    api: TestClient, world: World, db_engine: Engine
) -> None:
    response = login_post(api, "officer1", PASSWORD)
    assert response.status_code == 303
    cookie = response.headers["set-cookie"]
    assert "sunshine_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")
    home = api.get("/", follow_redirects=False)
    assert home.headers["location"] == "/queue"
    assert audit_actions(db_engine, "officer1") == ["signed_in:success"]


def test_only_local_paths_are_followed_after_sign_in(api: TestClient, world: World) -> None:
    response = login_post(api, "officer1", PASSWORD, next="//evil.example/phish")
    assert response.headers["location"] == "/"


def test_a_page_without_a_session_asks_to_sign_in(api: TestClient, world: World) -> None:
    response = api.get("/account", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/account"


def test_five_failures_lock_the_username_for_fifteen_minutes(
    api: TestClient, world: World, db_engine: Engine
) -> None:
    for _ in range(5):
        assert login_post(api, "merchant1", "wrong-Password1").status_code == 401
    locked = login_post(api, "merchant1", PASSWORD)
    assert locked.status_code == 429
    assert "15" in locked.text
    actions = audit_actions(db_engine, "merchant1")
    assert actions.count("sign_in_failed:failure") == 5
    assert "sign_in_locked:denied" in actions
    assert actions[-1] == "sign_in_failed:denied"


def test_a_sign_in_form_without_its_token_is_refused(api: TestClient, world: World, db_engine: Engine) -> None:
    api.get("/login")
    response = api.post("/login", data={"username": "officer1", "password": PASSWORD}, follow_redirects=False)
    assert response.status_code == 403
    assert "sunshine_session" not in response.headers.get("set-cookie", "")
    assert audit_actions(db_engine, "officer1") == ["csrf_refused:denied"]


def test_a_form_without_the_csrf_token_is_refused_and_audited(
    api: TestClient, world: World, db_engine: Engine
) -> None:
    sign_in(api, "officer1")
    response = api.post("/logout", data={}, follow_redirects=False)
    assert response.status_code == 403
    assert "csrf_refused:denied" in audit_actions(db_engine, "officer1")
    # still signed in: the forged sign-out did nothing
    assert api.get("/", follow_redirects=False).headers["location"] == "/queue"


def test_sign_out_ends_the_session(api: TestClient, world: World, db_engine: Engine) -> None:
    sign_in(api, "officer1")
    token = csrf_of(api.get("/account").text)
    old_cookie = api.cookies.get("sunshine_session")
    assert api.post("/logout", data={"csrf_token": token}, follow_redirects=False).status_code == 303
    api.cookies.set("sunshine_session", old_cookie)  # a copied cookie is worthless after sign-out
    assert api.get("/account", follow_redirects=False).headers["location"].startswith("/login")


def test_an_idle_session_expires_after_thirty_minutes(api: TestClient, world: World, db_engine: Engine) -> None:
    sign_in(api, "officer1")
    assert api.get("/account").status_code == 200
    with db_engine.begin() as connection:
        connection.execute(text("UPDATE web_session SET last_seen_at = last_seen_at - interval '31 minutes'"))
    response = api.get("/account", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/account&expired=1"
    assert "session_expired:success" in audit_actions(db_engine, "officer1")
    with Session(db_engine) as session:
        assert session.exec(select(WebSession)).one().end_reason == "idle"


def test_a_seeded_account_must_change_its_password_first(
    api: TestClient, world: World, db_engine: Engine
) -> None:
    with Session(db_engine) as session:
        user = session.exec(select(User).where(User.username == "officer1")).one()
        user.must_change_password = True
        session.add(user)
        session.commit()
    sign_in(api, "officer1")
    assert api.get("/account", follow_redirects=False).headers["location"] == "/password"
    form = api.get("/password")
    weak = api.post("/password", data={"csrf_token": csrf_of(form.text), "current_password": PASSWORD,
                                       "new_password": "short", "confirm_password": "short"})
    assert weak.status_code == 422 and "8" in weak.text
    done = api.post("/password", data={"csrf_token": csrf_of(form.text), "current_password": PASSWORD,
                                       "new_password": "Kitchen-Safe-2026", "confirm_password": "Kitchen-Safe-2026"},
                    follow_redirects=False)
    assert done.status_code == 303
    assert api.get("/account").status_code == 200
    assert "password_changed:success" in audit_actions(db_engine, "officer1")


def test_command_center_enrols_and_then_uses_totp_when_mfa_is_required(
    database_url: str, tmp_path, world: World, db_engine: Engine
) -> None:
    settings = api_settings_for(database_url, tmp_path, require_mfa=True)
    with TestClient(create_app(settings)) as client:
        sign_in(client, "command")
        assert client.get("/account", follow_redirects=False).headers["location"] == "/mfa/setup"
        setup = client.get("/mfa/setup")
        secret = re.search(r'class="secret">([A-Z2-7]+)<', setup.text).group(1)
        with Session(db_engine) as session:
            stored = session.exec(select(User).where(User.username == "command")).one().totp_secret
        assert stored and secret not in stored, "the seed is sealed at rest"
        assert "<svg" in setup.text
        assert secret in client.get("/mfa/setup").text, "the same seed until it is confirmed"
        wrong = client.post("/mfa/setup", data={"csrf_token": csrf_of(setup.text), "code": "000000"})
        assert wrong.status_code == 401
        code = totp.totp_at(secret, datetime.now(UTC).timestamp())
        ok = client.post("/mfa/setup", data={"csrf_token": csrf_of(setup.text), "code": code},
                         follow_redirects=False)
        assert ok.status_code == 303
        assert client.get("/account").status_code == 200

    with TestClient(create_app(settings)) as client:
        sign_in(client, "command")
        assert client.get("/account", follow_redirects=False).headers["location"] == "/mfa"
        form = client.get("/mfa")
        replayed = client.post("/mfa", data={"csrf_token": csrf_of(form.text), "code": code})
        assert replayed.status_code == 401, "a code already used must not be accepted again"
        next_code = totp.totp_at(secret, (datetime.now(UTC) + timedelta(seconds=30)).timestamp())
        assert client.post("/mfa", data={"csrf_token": csrf_of(form.text), "code": next_code},
                           follow_redirects=False).status_code == 303
        assert client.get("/account").status_code == 200
    assert "mfa_enrolled:success" in audit_actions(db_engine, "command")
    assert "mfa_failed:failure" in audit_actions(db_engine, "command")


def test_a_street_officer_needs_no_second_factor_even_when_mfa_is_required(
    database_url: str, tmp_path, world: World
) -> None:
    settings = api_settings_for(database_url, tmp_path, require_mfa=True)
    with TestClient(create_app(settings)) as client:
        sign_in(client, "officer1")
        assert client.get("/account").status_code == 200
