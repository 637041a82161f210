"""Settings: embedded defaults in development; production refuses placeholders naming the setting."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from infra.settings import Environment, Settings

PRODUCTION_OK = {
    "SUNSHINE_ENV": "production",
    "SUNSHINE_SECRET_KEY": "x" * 40,
    "SUNSHINE_S3_ACCESS_KEY": "evidence-writer",
    "SUNSHINE_S3_SECRET_KEY": "a-real-secret-from-the-vault",
    "SUNSHINE_DATABASE_URL": "postgresql://sunshine:pw@db.internal:5432/sunshine",
    "SUNSHINE_TEMPORAL_ADDRESS": "temporal.internal:7233",
    "SUNSHINE_S3_ENDPOINT": "https://s3.internal:9000",
}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("SUNSHINE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir("/")  # no stray .env file


def test_development_defaults_use_embedded_components() -> None:
    settings = Settings()
    assert settings.env is Environment.development
    assert settings.uses_embedded_postgres and settings.uses_embedded_temporal and settings.uses_embedded_s3
    assert settings.effective_database_url == "postgresql+psycopg://postgres@127.0.0.1:55432/sunshine"
    assert settings.effective_temporal_address == "127.0.0.1:7233"
    assert settings.effective_s3_endpoint == "http://127.0.0.1:8333"
    assert settings.evidence_retention_days == 1095


def test_external_services_are_typed_and_normalised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUNSHINE_DATABASE_URL", "postgresql://u:p@db:5432/x")
    monkeypatch.setenv("SUNSHINE_S3_ENDPOINT", "https://s3.example.test/")
    settings = Settings()
    assert settings.effective_database_url == "postgresql+psycopg://u:p@db:5432/x"
    assert settings.effective_s3_endpoint == "https://s3.example.test"
    assert not settings.uses_embedded_postgres


def test_malformed_url_is_refused_naming_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUNSHINE_S3_ENDPOINT", "not a url")
    with pytest.raises(ValidationError, match="s3_endpoint"):
        Settings()


def test_production_with_real_values_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in PRODUCTION_OK.items():
        monkeypatch.setenv(name, value)
    assert Settings().env is Environment.production


@pytest.mark.parametrize(
    ("missing", "named"),
    [
        ("SUNSHINE_SECRET_KEY", "SUNSHINE_SECRET_KEY"),
        ("SUNSHINE_S3_SECRET_KEY", "SUNSHINE_S3_SECRET_KEY"),
        ("SUNSHINE_S3_ACCESS_KEY", "SUNSHINE_S3_ACCESS_KEY"),
        ("SUNSHINE_DATABASE_URL", "SUNSHINE_DATABASE_URL"),
        ("SUNSHINE_TEMPORAL_ADDRESS", "SUNSHINE_TEMPORAL_ADDRESS"),
        ("SUNSHINE_S3_ENDPOINT", "SUNSHINE_S3_ENDPOINT"),
    ],
)
def test_production_refuses_placeholders_and_missing_keys(
    monkeypatch: pytest.MonkeyPatch, missing: str, named: str
) -> None:
    for name, value in PRODUCTION_OK.items():
        if name != missing:
            monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=named):
        Settings()


def test_production_refuses_a_short_secret_key(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in PRODUCTION_OK.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SUNSHINE_SECRET_KEY", "short")
    with pytest.raises(ValidationError, match="at least 32"):
        Settings()


def test_secrets_do_not_appear_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in PRODUCTION_OK.items():
        monkeypatch.setenv(name, value)
    text = repr(Settings())
    assert "a-real-secret-from-the-vault" not in text
    assert "x" * 40 not in text
    assert ":pw@" not in text  # the database URL's password
