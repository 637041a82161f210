"""The caller's in-app inbox: notifications addressed to them, newest first, and marking them read."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from api.deps import CurrentUser, SessionDep
from domain.notifications.service import MAX_INBOX_PAGE, list_inbox, mark_read, unread_count

router = APIRouter(prefix="/inbox", tags=["inbox"])

MAX_IDS_PER_CALL = 500


class NotificationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    case_id: str | None
    kind: str
    title: str
    body: str
    created_at: datetime
    read_at: datetime | None


class InboxOut(BaseModel):
    items: list[NotificationOut]
    unread_count: int
    next_before_id: int | None = Field(description="pass as `before_id` for older items; null when none are left")


class MarkRead(BaseModel):
    ids: list[int] = Field(min_length=1, max_length=MAX_IDS_PER_CALL)


class MarkedRead(BaseModel):
    marked: int = Field(description="how many of the ids were unread notifications of the caller")
    unread_count: int


@router.get("", response_model=InboxOut)
def read_inbox(
    user: CurrentUser,
    session: SessionDep,
    unread_only: bool = False,
    limit: Annotated[int, Query(ge=1, le=MAX_INBOX_PAGE)] = 50,
    before_id: Annotated[int | None, Query(ge=1)] = None,
) -> InboxOut:
    assert user.id is not None
    notifications = list_inbox(session, user_id=user.id, unread_only=unread_only, limit=limit, before_id=before_id)
    items = [NotificationOut.model_validate(notification) for notification in notifications]
    return InboxOut(
        items=items,
        unread_count=unread_count(session, user_id=user.id),
        next_before_id=items[-1].id if len(items) == limit else None,
    )


@router.post("/read", response_model=MarkedRead)
def mark_notifications_read(body: MarkRead, user: CurrentUser, session: SessionDep) -> MarkedRead:
    """Ids of other users' notifications are silently not counted: one's inbox is all one can touch."""
    assert user.id is not None
    marked = mark_read(session, user_id=user.id, notification_ids=body.ids)
    session.commit()
    return MarkedRead(marked=marked, unread_count=unread_count(session, user_id=user.id))
