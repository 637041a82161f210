"""Alerts as received, and the read model of cases (projection written only by workflow activities)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Float, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from domain.base import timestamp_field
from domain.evidence import models as _evidence_models  # noqa: F401  (FK target tables must be registered)
from domain.merchants import models as _merchant_models  # noqa: F401


class Alert(SQLModel, table=True):
    """预警: one detector firing with its evidence. A lead (线索), never a verdict.

    ``(source, event_id)`` is the idempotency key of intake: a device's key id, or ``system:<component>``.
    The row is written before the workflow hears of the alert (``delivered_at`` still empty), so a failed
    start never loses the evidence and a retry with the same event id completes the intake.
    """

    __tablename__ = "alert"
    __table_args__ = (
        UniqueConstraint("source", "event_id", name="alert_source_event_id"),
        Index("alert_camera_type_captured", "camera_id", "alert_type", "captured_at"),
    )

    id: uuid.UUID = Field(primary_key=True)
    source: str = Field(max_length=100)
    event_id: str = Field(max_length=200)
    camera_id: int = Field(foreign_key="camera.id", index=True)
    merchant_id: int = Field(foreign_key="merchant.id", index=True)
    street_office_id: int = Field(foreign_key="street_office.id")
    alert_type: str = Field(max_length=32)
    captured_at: datetime = timestamp_field()
    received_at: datetime = timestamp_field(default_now=True)
    score: float = Field(sa_column=Column(Float, nullable=False))
    boxes: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    model: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    snapshot_evidence_id: uuid.UUID = Field(foreign_key="evidence.id")
    clip_evidence_id: uuid.UUID | None = Field(default=None, foreign_key="evidence.id")
    case_id: str | None = Field(default=None, max_length=200, index=True)
    merged: bool = False
    delivered_at: datetime | None = timestamp_field(nullable=True)


OPEN_STATUSES_SQL = "('awaiting_verification', 'awaiting_dispute_review', 'rectifying', 'awaiting_review')"


class AlertCase(SQLModel, table=True):
    """预警处置: the projection of one AlertCaseWorkflow (the workflow owns the state; this row mirrors it)."""

    __tablename__ = "alert_case"
    # The queue reads open cases soonest-due first and stops after a page: partial indexes in exactly that
    # order (per street, and district-wide) let it read one page's rows instead of sorting every open case.
    __table_args__ = (
        Index("alert_case_open_street_queue", "street_office_id", "next_due_at", "case_id",
              postgresql_where=text(f"status IN {OPEN_STATUSES_SQL}")),
        Index("alert_case_open_queue", "next_due_at", "case_id",
              postgresql_where=text(f"status IN {OPEN_STATUSES_SQL}")),
    )

    case_id: str = Field(primary_key=True, max_length=200)  # = the workflow id
    version: int = 0  # projection version: a write with a lower or equal version is ignored
    merchant_id: int = Field(foreign_key="merchant.id", index=True)
    street_office_id: int = Field(foreign_key="street_office.id", index=True)
    camera_id: int = Field(foreign_key="camera.id")
    alert_type: str = Field(max_length=32, index=True)
    category: str = Field(max_length=16)
    status: str = Field(max_length=32, index=True)
    outcome: str | None = Field(default=None, max_length=32)
    opened_at: datetime = timestamp_field()
    closed_at: datetime | None = timestamp_field(nullable=True)
    last_alert_at: datetime = timestamp_field()
    alert_count: int = 1
    # The next deadline to meet (for sorting the queue) and every deadline with its provenance.
    next_due_at: datetime | None = timestamp_field(nullable=True)
    deadlines: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    overdue: bool = Field(default=False, index=True)
    # KPI flags (办法 第二十一条): verified_in_time, rectified_in_time, reviewed_in_time, …
    flags: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    disposition: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    handoff_id: str | None = Field(default=None, max_length=200)
    summary: str = Field(default="", max_length=500)  # for text search: merchant name, camera, type label
    updated_at: datetime = timestamp_field(default_now=True)


class CaseEvent(SQLModel, table=True):
    """One line of a case timeline; ``(case_id, seq)`` makes projection writes idempotent."""

    __tablename__ = "case_event"

    case_id: str = Field(primary_key=True, max_length=200)
    seq: int = Field(primary_key=True)
    at: datetime = timestamp_field()
    kind: str = Field(max_length=40)
    actor: str = Field(max_length=100)
    summary: str = Field(max_length=500)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class EnforcementHandoff(SQLModel, table=True):
    """移交: projection of an EnforcementHandoffWorkflow; outlives the case that started it."""

    __tablename__ = "enforcement_handoff"

    handoff_id: str = Field(primary_key=True, max_length=200)  # = the workflow id
    version: int = 0
    case_id: str = Field(max_length=200, index=True)
    merchant_id: int = Field(foreign_key="merchant.id", index=True)
    street_office_id: int = Field(foreign_key="street_office.id")
    status: str = Field(max_length=32, index=True)
    reason: str = Field(max_length=1000)
    transferred_by: str = Field(max_length=100)
    transferred_at: datetime = timestamp_field()
    # 受理时限: 3 working days from the transfer; the brigade inbox sorts by it.
    acceptance_due_at: datetime | None = timestamp_field(nullable=True)
    overdue: bool = Field(default=False, index=True)
    accepted_by: str | None = Field(default=None, max_length=100)
    accepted_at: datetime | None = timestamp_field(nullable=True)
    decision: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    updated_at: datetime = timestamp_field(default_now=True)
