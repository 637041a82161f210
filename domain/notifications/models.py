"""The in-app inbox (per user) and the outbox that SMS / WeChat adapters drain later."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from domain.base import timestamp_field
from domain.users import models as _user_models  # noqa: F401  (FK target table must be registered)


class Notification(SQLModel, table=True):
    __tablename__ = "notification"
    __table_args__ = (UniqueConstraint("user_id", "dedupe_key", name="notification_user_dedupe"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=BigInteger)
    user_id: int = Field(foreign_key="app_user.id", index=True)
    # Makes delivery idempotent: activity retries and workflow replays never notify twice.
    dedupe_key: str = Field(max_length=300)
    case_id: str | None = Field(default=None, max_length=200, index=True)
    kind: str = Field(max_length=40)
    title: str = Field(max_length=200)
    body: str = Field(default="", max_length=2000)
    created_at: datetime = timestamp_field(default_now=True)
    read_at: datetime | None = timestamp_field(nullable=True)


class OutboxMessage(SQLModel, table=True):
    __tablename__ = "outbox_message"
    __table_args__ = (UniqueConstraint("channel", "dedupe_key", name="outbox_channel_dedupe"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=BigInteger)
    channel: str = Field(max_length=16)  # "sms" | "wechat"
    user_id: int = Field(foreign_key="app_user.id", index=True)
    dedupe_key: str = Field(max_length=300)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = timestamp_field(default_now=True)
    sent_at: datetime | None = timestamp_field(nullable=True)
    attempts: int = 0
