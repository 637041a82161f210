"""Sign-in, tokens, lockout and the password-change gate (等保2.0: identification, login failure, timeout)."""

from __future__ import annotations

import base64
import json
import statistics
import time
from datetime import UTC, datetime, timedelta

import pytest
from argon2 import PasswordHasher, Type
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from api.auth import AuthPolicy, issue_token, signing_key
from domain.users.lockout import LoginLockout
from domain.users.models import User
from domain.users.passwords import verify_password
from infra.settings import Settings
from tests.api.conftest import PASSWORD, TEST_SECRET_KEY, World, bearer_for

pytestmark = pytest.mark.integration

NEW_PASSWORD = "Brand-new-Pa55"


def sign_in(api: TestClient, username: str, password: str) -> tuple[int, dict, dict]:
    response = api.post("/api/v1/auth/token", data={"username": username, "password": password})
    return response.status_code, response.json(), dict(response.headers)


def test_sign_in_gives_a_short_lived_bearer_token_that_opens_the_api(api: TestClient, world: World) -> None:
    status, body, _ = sign_in(api, "Officer1", PASSWORD)  # usernames are case-insensitive
    assert status == 200, body
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 30 * 60
    assert body["must_change_password"] is False
    me = api.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    assert me.json()["username"] == "officer1"
    assert me.json()["role"] == "street_officer"


def test_wrong_password_and_unknown_user_get_the_same_answer(api: TestClient, world: World) -> None:
    wrong = sign_in(api, "officer1", "not-the-password")
    unknown = sign_in(api, "nobody-here", "not-the-password")
    assert wrong[0] == unknown[0] == 401
    assert wrong[1] == unknown[1] == {"detail": "incorrect username or password"}
    assert wrong[2]["www-authenticate"] == unknown[2]["www-authenticate"] == "Bearer"


def test_unknown_user_takes_about_as_long_as_a_wrong_password(api: TestClient, world: World) -> None:
    """Both paths verify one argon2 hash and record one failure; only gross differences are caught here."""

    def timed(username: str) -> float:
        started = time.perf_counter()
        sign_in(api, username, "not-the-password")
        return time.perf_counter() - started

    # Different usernames each time, so that neither reaches the lockout.
    known = statistics.median(timed(name) for name in ("officer2", "brigade", "command", "auditor"))
    unknown = statistics.median(timed(f"ghost-{i}") for i in range(4))
    assert 0.5 < unknown / known < 2.0, (known, unknown)


@pytest.mark.parametrize("path", ["/api/v1/cases", "/api/v1/merchants", "/api/v1/cameras", "/api/v1/auth/me"])
def test_no_token_is_401_with_a_bearer_challenge(api: TestClient, world: World, path: str) -> None:
    response = api.get(path)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


def _tamper(token: str) -> str:
    prefix, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = claims["sub"] + 1  # somebody else
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{prefix}.{forged}.{signature}"


def test_bad_tampered_foreign_and_expired_tokens_are_401(api: TestClient, api_settings: Settings, world: World) -> None:
    user = world.users["command"]
    good = bearer_for(api_settings, user)["Authorization"].removeprefix("Bearer ")
    foreign_settings = api_settings.model_copy(update={"secret_key": type(api_settings.secret_key)("x" * 40)})
    candidates = {
        "garbage": "not-a-token",
        "tampered": _tamper(good),
        "signed with another key": bearer_for(foreign_settings, user)["Authorization"].removeprefix("Bearer "),
        "expired": bearer_for(api_settings, user, now=time.time() - 31 * 60)["Authorization"].removeprefix("Bearer "),
        "device key": world.device_keys["m1"],
    }
    for name, token in candidates.items():
        response = api.get("/api/v1/cases", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, name
        assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"', name
    assert api.get("/api/v1/cases", headers={"Authorization": f"Bearer {good}"}).status_code == 200


def test_disabling_a_user_invalidates_their_tokens_at_once(
    api: TestClient, as_user, world: World, db_engine: Engine
) -> None:
    headers = as_user("officer1")
    assert api.get("/api/v1/cases", headers=headers).status_code == 200
    with Session(db_engine) as session:
        user = session.get(User, world.users["officer1"].id)
        assert user is not None
        user.disabled = True
        session.add(user)
        session.commit()
    response = api.get("/api/v1/cases", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    # A disabled account cannot sign in, and is refused exactly like a wrong password.
    assert sign_in(api, "officer1", PASSWORD)[:2] == (401, {"detail": "incorrect username or password"})


def test_five_failures_lock_the_username_even_against_the_right_password(
    api: TestClient, world: World, db_engine: Engine
) -> None:
    for _ in range(5):
        assert sign_in(api, "merchant1", "wrong-password")[0] == 401
    status, body, headers = sign_in(api, "merchant1", PASSWORD)
    assert status == 429
    assert "too many failed sign-ins" in body["detail"]
    assert 0 < int(headers["retry-after"]) <= 15 * 60

    # A name that does not exist locks the same way, with the same words: the lock reveals nothing.
    for _ in range(5):
        sign_in(api, "no-such-user", "wrong-password")
    ghost = sign_in(api, "no-such-user", PASSWORD)
    assert (ghost[0], ghost[1]) == (status, body)

    # Once the 15 minutes are over, the right password works again and clears the count.
    with Session(db_engine) as session:
        row = session.get(LoginLockout, "merchant1")
        assert row is not None and row.failed_attempts == 5
        row.locked_until = datetime.now(UTC) - timedelta(seconds=1)
        session.add(row)
        session.commit()
    assert sign_in(api, "merchant1", PASSWORD)[0] == 200
    with Session(db_engine) as session:
        assert session.get(LoginLockout, "merchant1") is None


def test_failures_spread_over_more_than_the_lockout_period_do_not_add_up(
    api: TestClient, world: World, db_engine: Engine
) -> None:
    for _ in range(4):
        sign_in(api, "merchant2", "wrong-password")
    with Session(db_engine) as session:
        row = session.get(LoginLockout, "merchant2")
        assert row is not None
        row.last_failed_at = datetime.now(UTC) - timedelta(minutes=16)
        session.add(row)
        session.commit()
    assert sign_in(api, "merchant2", "wrong-password")[0] == 401  # counts as the first again
    assert sign_in(api, "merchant2", PASSWORD)[0] == 200


def test_must_change_password_gets_a_token_that_opens_only_the_password_change(
    api: TestClient, world: World, db_engine: Engine
) -> None:
    with Session(db_engine) as session:
        user = session.get(User, world.users["officer2"].id)
        assert user is not None
        user.must_change_password = True
        session.add(user)
        session.commit()
    status, body, _ = sign_in(api, "officer2", PASSWORD)
    assert status == 200 and body["must_change_password"] is True
    old = {"Authorization": f"Bearer {body['access_token']}"}

    for method, path in (
        ("GET", "/api/v1/cases"),
        ("GET", "/api/v1/merchants"),
        ("GET", "/api/v1/auth/me"),
        ("POST", "/api/v1/auth/refresh"),
        ("GET", "/api/v1/cases/case-m3"),
    ):
        response = api.request(method, path, headers=old)
        assert response.status_code == 403, path
        assert "password change required" in response.json()["detail"], path

    wrong = api.post(
        "/api/v1/auth/password", headers=old, json={"current_password": "nope", "new_password": NEW_PASSWORD}
    )
    assert wrong.status_code == 400
    weak = api.post("/api/v1/auth/password", headers=old, json={"current_password": PASSWORD, "new_password": "short"})
    assert weak.status_code == 422
    assert weak.json()["detail"]["problems"]
    same = api.post("/api/v1/auth/password", headers=old, json={"current_password": PASSWORD, "new_password": PASSWORD})
    assert same.status_code == 422
    assert "same as the current password" in str(same.json())

    changed = api.post(
        "/api/v1/auth/password", headers=old, json={"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    )
    assert changed.status_code == 200, changed.text
    new = {"Authorization": f"Bearer {changed.json()['access_token']}"}
    assert api.get("/api/v1/cases", headers=new).status_code == 200
    # Tokens from before the change are dead: the password fingerprint in them no longer matches.
    assert api.get("/api/v1/auth/me", headers=old).status_code == 401
    assert sign_in(api, "officer2", NEW_PASSWORD)[0] == 200
    assert sign_in(api, "officer2", PASSWORD)[0] == 401


def test_a_weak_stored_hash_is_upgraded_at_sign_in(api: TestClient, world: World, db_engine: Engine) -> None:
    weak_hash = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1, type=Type.ID).hash(PASSWORD)
    with Session(db_engine) as session:
        user = session.get(User, world.users["auditor"].id)
        assert user is not None
        user.password_hash = weak_hash
        session.add(user)
        session.commit()
    assert sign_in(api, "auditor", PASSWORD)[0] == 200
    with Session(db_engine) as session:
        user = session.get(User, world.users["auditor"].id)
        assert user is not None
        assert user.password_hash != weak_hash
        assert verify_password(user.password_hash, PASSWORD)


def test_refresh_renews_an_active_session_up_to_its_maximum_length(
    api: TestClient, api_settings: Settings, world: World
) -> None:
    user = world.users["command"]
    recent = bearer_for(api_settings, user, now=time.time() - 20 * 60)
    renewed = api.post("/api/v1/auth/refresh", headers=recent)
    assert renewed.status_code == 200
    assert api.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {renewed.json()['access_token']}"}).is_success

    # A token refreshed again and again still descends from a sign-in 13 hours ago: sign in again.
    policy = AuthPolicy.from_settings(api_settings)
    old_session = issue_token(
        signing_key(api_settings), user=user, policy=policy, signed_in_at=int(time.time()) - 13 * 3600
    )
    response = api.post("/api/v1/auth/refresh", headers={"Authorization": f"Bearer {old_session.access_token}"})
    assert response.status_code == 401


def test_tokens_do_not_carry_the_password_or_its_hash(api_settings: Settings, world: World) -> None:
    token = bearer_for(api_settings, world.users["command"])["Authorization"]
    payload = token.split(".")[1]
    decoded = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode()
    assert "argon2" not in decoded and PASSWORD not in decoded and TEST_SECRET_KEY not in decoded


def test_api_sign_ins_and_permission_denials_are_in_the_audit_log(
    api: TestClient, world: World, db_engine: Engine, api_settings: Settings
) -> None:
    from sqlmodel import select

    from domain.audit.models import AuditEvent

    assert sign_in(api, "officer1", "wrong-Password9")[0] == 401
    assert sign_in(api, "officer1", PASSWORD)[0] == 200
    denied = api.post("/api/v1/cases/case-m1/verify", json={"choice": "needs_time"},
                      headers=bearer_for(api_settings, world.users["officer1"]))
    assert denied.status_code == 403
    assert api.get("/api/v1/cases", headers=bearer_for(api_settings, world.users["admin"])).status_code == 403
    with Session(db_engine) as session:
        rows = session.exec(select(AuditEvent).order_by(AuditEvent.id)).all()
    assert [(row.username, row.action, row.outcome) for row in rows] == [
        ("officer1", "sign_in_failed", "failure"),
        ("officer1", "signed_in", "success"),
        ("officer1", "permission_denied", "denied"),
        ("admin", "permission_denied", "denied"),
    ]
    assert rows[2].target == "POST /api/v1/cases/case-m1/verify" and rows[0].detail == {"via": "api"}
