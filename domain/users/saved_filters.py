"""An officer's own saved queue filters: a name and the query string of the queue page."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, Session, SQLModel, col, select

from domain.base import timestamp_field
from domain.errors import ValidationFailed

MAX_FILTERS_PER_USER = 30
MAX_QUERY_LENGTH = 1000


class SavedFilter(SQLModel, table=True):
    __tablename__ = "saved_filter"
    __table_args__ = (UniqueConstraint("user_id", "name", name="saved_filter_user_name"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="app_user.id", index=True)
    name: str = Field(max_length=60)
    query: str = Field(max_length=MAX_QUERY_LENGTH)
    created_at: datetime = timestamp_field(default_now=True)


def list_saved_filters(session: Session, *, user_id: int) -> list[SavedFilter]:
    statement = select(SavedFilter).where(SavedFilter.user_id == user_id).order_by(col(SavedFilter.name))
    return list(session.exec(statement))


def save_filter(session: Session, *, user_id: int, name: str, query: str) -> SavedFilter:
    """Create or replace the user's filter called ``name``. Flushes, never commits."""
    name = name.strip()
    problems = []
    if not name or len(name) > 60:
        problems.append("the name must be 1–60 characters")
    if len(query) > MAX_QUERY_LENGTH:
        problems.append(f"the filter is longer than {MAX_QUERY_LENGTH} characters")
    if problems:
        raise ValidationFailed("the filter cannot be saved", problems)
    existing = session.exec(
        select(SavedFilter).where(SavedFilter.user_id == user_id, SavedFilter.name == name)
    ).first()
    if existing is None:
        if len(list_saved_filters(session, user_id=user_id)) >= MAX_FILTERS_PER_USER:
            raise ValidationFailed("the filter cannot be saved", [f"at most {MAX_FILTERS_PER_USER} saved filters"])
        existing = SavedFilter(user_id=user_id, name=name, query=query)
    existing.query = query
    session.add(existing)
    session.flush()
    return existing


def delete_filter(session: Session, *, user_id: int, filter_id: int) -> bool:
    record = session.get(SavedFilter, filter_id)
    if record is None or record.user_id != user_id:
        return False
    session.delete(record)
    session.flush()
    return True
