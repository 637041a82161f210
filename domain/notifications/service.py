"""Telling people what they must act on: the ``Notifier`` port, the in-app inbox, and the outbox for SMS.

Delivery is idempotent end to end. Every message carries a ``dedupe_key`` chosen by the caller (for a case step:
workflow id + event); a second delivery of the same key, by an activity retry or a workflow replay, writes
nothing. Rows are written in the caller's transaction (the caller commits), so a message lands in the inbox and
the outbox together or not at all.

Who receives a message is resolved when it is delivered, from the ``Recipients`` scopes: a merchant's users, a
street office's officers, the brigade, the command center, or named users. Disabled accounts never receive
anything. Administrators never receive case messages: they may not read case content (separation of duties).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, false, func, or_, update
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import Session, col, select

from domain.base import utcnow
from domain.notifications.models import Notification, OutboxMessage
from domain.users.models import Role, User

SMS = "sms"
DEDUPE_KEY_MAX = 280  # the column holds 300; the outbox key adds a per-user suffix
MAX_INBOX_PAGE = 200


@dataclass(frozen=True)
class Recipients:
    """Who should hear of it; the scopes add up, and each person is notified once."""

    merchant_id: int | None = None  # the merchant's users
    street_office_id: int | None = None  # the officers of that street office
    brigade: bool = False  # every brigade officer
    command_center: bool = False  # the district command center
    user_ids: list[int] = field(default_factory=list)  # named people, whatever their role


@dataclass(frozen=True)
class NotificationMessage:
    dedupe_key: str  # the same key is delivered once per recipient, however often it is sent
    kind: str  # e.g. "case_opened", "verification_overdue"
    title: str
    body: str
    case_id: str | None
    recipients: Recipients
    outbox_channels: tuple[str, ...] = (SMS,)  # external channels queued for later adapters

    def __post_init__(self) -> None:
        if not self.dedupe_key or len(self.dedupe_key) > DEDUPE_KEY_MAX:
            raise ValueError(f"dedupe_key must have 1–{DEDUPE_KEY_MAX} characters")


class Notifier(ABC):
    """The port: workflows' activities notify through it; tests use ``domain.notifications.fake.FakeNotifier``."""

    @abstractmethod
    def notify(self, message: NotificationMessage) -> int:
        """Delivers the message; returns how many people received it now (0 when all had it already)."""


class InboxNotifier(Notifier):
    """The in-app inbox, plus one outbox row per person and external channel for the adapters to send."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def notify(self, message: NotificationMessage) -> int:
        user_ids = resolve_recipients(self._session, message.recipients, for_case=message.case_id is not None)
        if not user_ids:
            return 0
        now = utcnow()
        inbox_rows = [
            {
                "user_id": user_id,
                "dedupe_key": message.dedupe_key,
                "case_id": message.case_id,
                "kind": message.kind[:40],
                "title": message.title[:200],
                "body": message.body[:2000],
                "created_at": now,
                "read_at": None,
            }
            for user_id in user_ids
        ]
        inserted = self._session.exec(
            insert(Notification)
            .values(inbox_rows)
            .on_conflict_do_nothing(constraint="notification_user_dedupe")
            .returning(col(Notification.user_id))
        ).all()
        outbox_rows = [
            {
                "channel": channel,
                "user_id": user_id,
                # The outbox is unique per (channel, key), so the key names the person too.
                "dedupe_key": f"{message.dedupe_key}#user:{user_id}",
                "payload": _payload(message, user_id),
                "created_at": now,
                "sent_at": None,
                "attempts": 0,
            }
            for channel in message.outbox_channels
            for user_id in user_ids
        ]
        if outbox_rows:
            self._session.exec(
                insert(OutboxMessage).values(outbox_rows).on_conflict_do_nothing(constraint="outbox_channel_dedupe")
            )
        return len(inserted)


def _payload(message: NotificationMessage, user_id: int) -> dict[str, Any]:
    return {
        "user_id": user_id,
        "kind": message.kind,
        "title": message.title,
        "body": message.body,
        "case_id": message.case_id,
        "dedupe_key": message.dedupe_key,
    }


def resolve_recipients(session: Session, recipients: Recipients, *, for_case: bool = True) -> list[int]:
    """Ids of the enabled users the scopes name, each once, in id order."""
    scopes: list[ColumnElement[bool]] = []
    if recipients.merchant_id is not None:
        scopes.append((col(User.role) == Role.merchant.value) & (col(User.merchant_id) == recipients.merchant_id))
    if recipients.street_office_id is not None:
        scopes.append(
            (col(User.role) == Role.street_officer.value) & (col(User.street_office_id) == recipients.street_office_id)
        )
    if recipients.brigade:
        scopes.append(col(User.role) == Role.brigade_officer.value)
    if recipients.command_center:
        scopes.append(col(User.role) == Role.command_center.value)
    if recipients.user_ids:
        named = col(User.id).in_(recipients.user_ids)
        scopes.append(named & (col(User.role) != Role.admin.value) if for_case else named)
    if not scopes:
        return []
    query = select(User.id).where(col(User.disabled).is_(false()), or_(*scopes)).order_by(col(User.id))
    return [user_id for user_id in session.exec(query) if user_id is not None]


def list_inbox(
    session: Session, *, user_id: int, unread_only: bool = False, limit: int = 50, before_id: int | None = None
) -> list[Notification]:
    """Newest first; pass the last id of a page as ``before_id`` for the next one."""
    query = select(Notification).where(Notification.user_id == user_id)
    if unread_only:
        query = query.where(col(Notification.read_at).is_(None))
    if before_id is not None:
        query = query.where(col(Notification.id) < before_id)
    limit = max(1, min(limit, MAX_INBOX_PAGE))
    return list(session.exec(query.order_by(col(Notification.id).desc()).limit(limit)))


def unread_count(session: Session, *, user_id: int) -> int:
    query = select(func.count()).where(Notification.user_id == user_id, col(Notification.read_at).is_(None))
    return int(session.exec(query).one())


def mark_read(session: Session, *, user_id: int, notification_ids: Sequence[int], now: datetime | None = None) -> int:
    """Marks the user's own unread notifications among ``notification_ids``; returns how many changed.

    Ids of other users' notifications are ignored, silently: saying which exist would leak them.
    """
    if not notification_ids:
        return 0
    statement = (
        update(Notification)
        .where(
            col(Notification.user_id) == user_id,
            col(Notification.id).in_(list(notification_ids)),
            col(Notification.read_at).is_(None),
        )
        .values(read_at=now or utcnow())
    )
    result = session.exec(statement)
    return int(result.rowcount)
