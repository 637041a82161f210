"""Shared column helpers for the SQLModel tables."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime
from sqlmodel import Field


def utcnow() -> datetime:
    return datetime.now(UTC)


def timestamp_field(*, nullable: bool = False, default_now: bool = False) -> datetime:
    """A timezone-aware timestamp column (timestamptz); instants are stored in UTC."""
    kwargs: dict = {"sa_type": DateTime(timezone=True), "nullable": nullable}
    if default_now:
        kwargs["default_factory"] = utcnow
    elif nullable:
        kwargs["default"] = None
    return Field(**kwargs)
