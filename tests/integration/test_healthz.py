"""/healthz reports each dependency with status and latency, and answers 503 when one is down."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from infra.components.process import free_port
from infra.settings import Settings

pytestmark = pytest.mark.integration


def test_healthz_names_the_dependencies_that_are_down(database_url: str, tmp_path: Path) -> None:
    settings = Settings(
        var_dir=tmp_path / "var",  # the app makes its transparency key there
        database_url=database_url,  # type: ignore[arg-type]
        temporal_address=f"127.0.0.1:{free_port()}",  # nothing listens there
        s3_endpoint=f"http://127.0.0.1:{free_port()}",  # type: ignore[arg-type]
    )
    with TestClient(create_app(settings)) as client:
        response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "down"
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["database"]["latency_ms"] >= 0
    assert body["checks"]["temporal"]["status"] == "down"
    assert body["checks"]["object_store"]["status"] == "down"
    assert body["checks"]["object_store"]["error"]


def test_healthz_is_green_when_every_dependency_answers(database_url: str, seaweedfs, temporal_dev_server,
                                                        tmp_path: Path) -> None:
    from infra.clients import make_minio_client

    settings = Settings(
        var_dir=tmp_path / "var",
        database_url=database_url,  # type: ignore[arg-type]
        temporal_address=temporal_dev_server,
        s3_endpoint=seaweedfs.endpoint,
        s3_access_key=seaweedfs.access_key,
        s3_secret_key=seaweedfs.secret_key,
        evidence_bucket="healthz-bucket",
    )
    minio = make_minio_client(settings)
    if not minio.bucket_exists("healthz-bucket"):
        minio.make_bucket("healthz-bucket", object_lock=True)
    with TestClient(create_app(settings)) as client:
        response = client.get("/healthz")
    assert response.status_code == 200, response.text
    assert {name: check["status"] for name, check in response.json()["checks"].items()} == {
        "database": "ok", "temporal": "ok", "object_store": "ok",
    }
