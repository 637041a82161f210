"""Page tests: the API tests' seeded district, and browsers (TestClient) signed in through the real form."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import PASSWORD, World, api, api_settings, world  # noqa: F401 - fixtures

CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = CSRF_INPUT.search(html)
    assert match, "the page has no CSRF field"
    return match.group(1)


def sign_in(client: TestClient, username: str, password: str = PASSWORD, next_path: str = "") -> TestClient:
    page = client.get("/login")
    response = client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": csrf_of(page.text), "next": next_path},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return client


@pytest.fixture
def browser_for(api: TestClient, world: World) -> Callable[[str], TestClient]:  # noqa: F811
    """A separate cookie jar per person, all talking to the same app."""
    clients: list[TestClient] = []

    def open_as(username: str) -> TestClient:
        client = TestClient(api.app, base_url="http://testserver")
        clients.append(client)
        return sign_in(client, username)

    yield open_as
    for client in clients:
        client.close()
