"""电子数据: the record of bytes held in the locked bucket, and its custody log."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Column
from sqlmodel import Field, SQLModel

from domain.base import timestamp_field


class CollectionMethod(StrEnum):
    """制作方法: how the evidence was collected."""

    ai_capture = "ai_capture"  # AI 自动抓拍
    platform_extraction = "platform_extraction"  # 平台在线提取
    upload = "upload"  # 当事人/执法人员上传
    onsite_copy = "onsite_copy"  # 现场拷贝
    screenshot = "screenshot"  # 截屏


class CustodyAction(StrEnum):
    collected = "collected"
    viewed = "viewed"
    downloaded = "downloaded"
    exported = "exported"
    transferred = "transferred"
    verified = "verified"


class Evidence(SQLModel, table=True):
    """One immutable object, content-addressed by SHA-256 (the same bytes are one record)."""

    __tablename__ = "evidence"

    id: uuid.UUID = Field(primary_key=True)
    bucket: str = Field(max_length=63)
    key: str = Field(max_length=300)
    version_id: str | None = Field(default=None, max_length=200)
    sha256: str = Field(max_length=64, unique=True, index=True)
    sm3: str = Field(max_length=64, index=True)
    size: int = Field(sa_type=BigInteger)
    content_type: str = Field(max_length=100)
    stored_at: datetime = timestamp_field()
    retention_mode: str = Field(default="COMPLIANCE", max_length=16)
    retain_until: datetime = timestamp_field()
    collection_method: str = Field(max_length=32)
    captured_at: datetime | None = timestamp_field(nullable=True)
    # Source and provenance: camera, device, model name/version/sha256, boxes, uploader…
    source: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = timestamp_field(default_now=True)


class CustodyEvent(SQLModel, table=True):
    """Every collection, view, download, export and transfer of evidence (公共安全视频条例 第十六条)."""

    __tablename__ = "custody_event"

    id: int | None = Field(default=None, primary_key=True, sa_type=BigInteger)
    evidence_id: uuid.UUID = Field(foreign_key="evidence.id", index=True)
    action: str = Field(max_length=16)
    at: datetime = timestamp_field(default_now=True)
    actor: str = Field(max_length=100)  # "user:<username>", "device:<key_id>", "system:<component>"
    actor_role: str | None = Field(default=None, max_length=32)
    unit: str | None = Field(default=None, max_length=100)  # 单位
    reason: str | None = Field(default=None, max_length=500)  # 事由
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # The hash chain (domain.evidence.custody_chain): the previous row's hash and this row's.
    prev_hash: str | None = Field(default=None, max_length=64)
    row_hash: str | None = Field(default=None, max_length=64, unique=True)
