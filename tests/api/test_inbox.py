"""GET /inbox and POST /inbox/read: one's own notifications only, newest first, with the unread count."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from domain.notifications.models import Notification
from tests.api.conftest import World

pytestmark = pytest.mark.integration


def seed_notifications(engine: Engine, world: World) -> dict[str, list[int]]:
    ids: dict[str, list[int]] = {"merchant1": [], "officer1": []}
    with Session(engine, expire_on_commit=False) as session:
        for username in ids:
            for i in range(3):
                notification = Notification(
                    user_id=world.users[username].id,
                    dedupe_key=f"{username}-{i}",
                    case_id="case-m1",
                    kind="opened",
                    title=f"新预警 {i}",
                    body="请于24小时内核实",
                )
                session.add(notification)
                session.flush()
                assert notification.id is not None
                ids[username].append(notification.id)
        session.commit()
    return ids


def test_inbox_lists_only_ones_own_notifications_newest_first(
    api: TestClient, as_user, world: World, db_engine: Engine
) -> None:
    ids = seed_notifications(db_engine, world)
    body = api.get("/api/v1/inbox", headers=as_user("merchant1")).json()
    assert [item["id"] for item in body["items"]] == sorted(ids["merchant1"], reverse=True)
    assert body["unread_count"] == 3
    assert body["items"][0]["case_id"] == "case-m1"

    page = api.get("/api/v1/inbox", headers=as_user("merchant1"), params={"limit": 2}).json()
    assert len(page["items"]) == 2
    rest = api.get(
        "/api/v1/inbox", headers=as_user("merchant1"), params={"limit": 2, "before_id": page["next_before_id"]}
    ).json()
    assert [item["id"] for item in page["items"] + rest["items"]] == sorted(ids["merchant1"], reverse=True)

    assert api.get("/api/v1/inbox", headers=as_user("auditor")).json() == {
        "items": [],
        "unread_count": 0,
        "next_before_id": None,
    }


def test_marking_read_touches_only_ones_own(api: TestClient, as_user, world: World, db_engine: Engine) -> None:
    ids = seed_notifications(db_engine, world)
    # Someone else's ids are not counted, and not marked.
    mixed = [ids["merchant1"][0], *ids["officer1"]]
    response = api.post("/api/v1/inbox/read", headers=as_user("merchant1"), json={"ids": mixed})
    assert response.status_code == 200
    assert response.json() == {"marked": 1, "unread_count": 2}
    unread = api.get("/api/v1/inbox", headers=as_user("merchant1"), params={"unread_only": True}).json()
    assert {item["id"] for item in unread["items"]} == set(ids["merchant1"][1:])
    assert api.get("/api/v1/inbox", headers=as_user("officer1")).json()["unread_count"] == 3

    assert api.post("/api/v1/inbox/read", headers=as_user("merchant1"), json={"ids": []}).status_code == 422
    assert api.post("/api/v1/inbox/read", json={"ids": [1]}).status_code == 401
