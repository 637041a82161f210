"""Machines that post alerts: edge AI boxes and vendor integrations."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlmodel import Field, SQLModel

from domain.base import timestamp_field
from domain.merchants import models as _merchant_models  # noqa: F401  (FK target table must be registered)


class DeviceKind(StrEnum):
    edge_box = "edge_box"
    integration = "integration"


class Device(SQLModel, table=True):
    """A device key is ``sk_<key_id>_<secret>``; only the SHA-256 of the secret is stored.

    The secret has 256 bits of entropy, so a fast hash is safe here (unlike passwords, which use argon2)
    and keeps per-request authentication cheap.
    """

    __tablename__ = "device"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100)
    kind: str = Field(default=DeviceKind.edge_box.value, max_length=32)
    key_id: str = Field(max_length=32, unique=True, index=True)
    key_hash: str = Field(max_length=64)
    merchant_id: int | None = Field(default=None, foreign_key="merchant.id")  # None: district-wide
    created_at: datetime = timestamp_field(default_now=True)
    revoked_at: datetime | None = timestamp_field(nullable=True)
