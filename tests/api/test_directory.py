"""GET /merchants and /cameras: a device sees its merchant (a district device, all); people per scope;
the administrator sees them all (configuration), though no case content."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import World

pytestmark = pytest.mark.integration

ALL_MERCHANTS = {"92120103MA05TEST1A", "91120103MA05TEST2B", "91120103MA05TEST3C"}


def listed(api: TestClient, path: str, headers: dict[str, str], **params: object) -> list[dict]:
    response = api.get(path, headers=headers, params=params)
    assert response.status_code == 200, response.text
    items: list[dict] = response.json()["items"]
    return items


def merchant_codes(api: TestClient, headers: dict[str, str]) -> set[str]:
    return {item["credit_code"] for item in listed(api, "/api/v1/merchants", headers)}


def camera_merchant_codes(api: TestClient, headers: dict[str, str]) -> set[str]:
    return {item["merchant_credit_code"] for item in listed(api, "/api/v1/cameras", headers)}


def device(world: World, name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {world.device_keys[name]}"}


def test_a_device_sees_its_merchants_cameras_and_a_district_device_all(api: TestClient, world: World) -> None:
    cameras = listed(api, "/api/v1/cameras", device(world, "m1"))
    assert [(c["merchant_credit_code"], c["street_office_code"]) for c in cameras] == [
        ("92120103MA05TEST1A", "youyilu")
    ]
    assert cameras[0]["id"] == world.cameras["m1"].id
    assert "stream_url" not in cameras[0]  # may carry the camera's own credentials
    assert merchant_codes(api, device(world, "m1")) == {"92120103MA05TEST1A"}
    assert camera_merchant_codes(api, device(world, "district")) == ALL_MERCHANTS

    bad = api.get("/api/v1/cameras", headers={"Authorization": "Bearer sk_aaaaaaaaaaaa_" + "x" * 43})
    assert bad.status_code == 401
    assert bad.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    # A device key opens the directory only, never case content.
    assert api.get("/api/v1/cases", headers=device(world, "district")).status_code == 401


@pytest.mark.parametrize(
    ("username", "expected"),
    [
        ("merchant1", {"92120103MA05TEST1A"}),
        ("officer1", {"92120103MA05TEST1A", "91120103MA05TEST2B"}),
        ("officer2", {"91120103MA05TEST3C"}),
        ("brigade", {"91120103MA05TEST3C"}),  # merchants with a case handed to the brigade
        ("command", ALL_MERCHANTS),
        ("auditor", ALL_MERCHANTS),
        ("admin", ALL_MERCHANTS),
    ],
)
def test_people_see_merchants_and_cameras_of_their_scope(
    api: TestClient, as_user, username: str, expected: set[str]
) -> None:
    headers = as_user(username)
    assert merchant_codes(api, headers) == expected
    assert camera_merchant_codes(api, headers) == expected


def test_items_carry_ids_codes_and_pages_follow_next_after(api: TestClient, as_user, world: World) -> None:
    headers = as_user("admin")
    first = api.get("/api/v1/merchants", headers=headers, params={"limit": 2}).json()
    assert [item["id"] for item in first["items"]] == sorted(m.id for m in world.merchants.values())[:2]
    assert first["items"][0]["street_office_code"] == "youyilu"
    second = api.get("/api/v1/merchants", headers=headers, params={"limit": 2, "after": first["next_after"]}).json()
    assert len(second["items"]) == 1 and second["next_after"] is None
    assert {i["credit_code"] for i in first["items"] + second["items"]} == ALL_MERCHANTS
