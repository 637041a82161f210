"""Registered detector models: a validated file, what it detects, and which alert type each class raises."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from domain.base import timestamp_field


class DetectorModel(SQLModel, table=True):
    __tablename__ = "detector_model"
    __table_args__ = (UniqueConstraint("name", "version", name="detector_model_name_version"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, index=True)
    version: str = Field(max_length=64)
    runtime: str = Field(max_length=16)  # the Detector backend's `type`: "onnx" or "torch"
    sha256: str = Field(max_length=64, index=True)
    path: str = Field(max_length=1000)  # where the content-addressed copy lies
    layout: str = Field(max_length=32)
    input_width: int
    input_height: int
    classes: list[str] = Field(default_factory=list, sa_column=Column(JSONB, nullable=False))
    # detector class → alert type; classes not in the map (person, …) only support the rules
    class_map: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSONB, nullable=False))
    # camera areas where its alerts apply (CameraArea values); None: every area
    areas: list[str] | None = Field(default=None, sa_column=Column(JSONB, nullable=True))
    licence: str = Field(default="unknown", max_length=200)
    registered_by: str = Field(default="", max_length=100)
    registered_at: datetime = timestamp_field(default_now=True)
    enabled: bool = True
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONB, nullable=False))
