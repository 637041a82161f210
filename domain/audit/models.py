"""The audit log (等保2.0 安全审计): who did what, when, from where and why; append-only in the database."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, Index
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from domain.base import timestamp_field


class AuditAction(StrEnum):
    signed_in = "signed_in"
    sign_in_failed = "sign_in_failed"
    sign_in_locked = "sign_in_locked"
    signed_out = "signed_out"
    session_expired = "session_expired"
    password_changed = "password_changed"  # noqa: S105 - an event name
    mfa_enrolled = "mfa_enrolled"
    mfa_failed = "mfa_failed"
    mfa_reset = "mfa_reset"
    permission_denied = "permission_denied"
    csrf_refused = "csrf_refused"
    evidence_viewed = "evidence_viewed"
    evidence_exported = "evidence_exported"
    history_verified = "history_verified"
    history_downloaded = "history_downloaded"
    case_action = "case_action"
    handoff_action = "handoff_action"
    user_created = "user_created"
    user_disabled = "user_disabled"
    user_enabled = "user_enabled"
    device_created = "device_created"


class AuditOutcome(StrEnum):
    success = "success"
    failure = "failure"
    denied = "denied"


class AuditEvent(SQLModel, table=True):
    """One security-relevant event. Rows are never updated or deleted (a trigger refuses it)."""

    __tablename__ = "audit_event"
    __table_args__ = (
        Index("ix_audit_event_at", "at"),
        Index("ix_audit_event_user_at", "user_id", "at"),
        Index("ix_audit_event_action_at", "action", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = timestamp_field(default_now=True)
    # No foreign key: the log must keep rows about accounts that never existed (failed sign-ins).
    user_id: int | None = None
    username: str = Field(default="", max_length=64)  # as typed, for failures
    role: str | None = Field(default=None, max_length=32)
    unit: str | None = Field(default=None, max_length=64)
    ip: str | None = Field(default=None, max_length=64)
    user_agent: str = Field(default="", max_length=300)
    action: str = Field(max_length=48)
    outcome: str = Field(max_length=16)
    target: str = Field(default="", max_length=200)  # what was touched: "case:…", "evidence:…", a path
    reason: str = Field(default="", max_length=500)  # 事由
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONB, nullable=False))


class WorkflowHistoryExport(SQLModel, table=True):
    """A closed workflow's Temporal history, exported to the locked bucket for auditors (it outlives Temporal's
    retention): where it lies, the head of its per-event SHA-256 chain, and the code that ran it."""

    __tablename__ = "workflow_history_export"

    workflow_id: str = Field(primary_key=True, max_length=200)  # an AlertCaseWorkflow's id is its case id
    run_id: str = Field(max_length=64)
    workflow_type: str = Field(max_length=100)
    case_id: str | None = Field(default=None, max_length=200, index=True)
    closed_at: datetime | None = timestamp_field(nullable=True)
    exported_at: datetime = timestamp_field(default_now=True)
    bucket: str = Field(max_length=63)
    history_key: str = Field(max_length=300)  # the history JSON
    history_version_id: str | None = Field(default=None, max_length=200)
    manifest_key: str = Field(max_length=300)  # the signed manifest (a C2SP signed note)
    manifest_version_id: str | None = Field(default=None, max_length=200)
    event_count: int
    chain_head: str = Field(max_length=64)  # hex SHA-256 of the last event's chain link
    history_sha256: str = Field(max_length=64)
    build_ids: list[str] = Field(default_factory=list, sa_column=Column(JSONB, nullable=False))
    code_version: str = Field(default="", max_length=100)
    # The latest check of the stored copy (chain, signature, replay): what the auditor's case page shows.
    verified_at: datetime | None = timestamp_field(nullable=True)
    verification: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONB, nullable=False))
