"""Sign-in lockout (等保2.0 登录失败处理): after repeated failures a username is refused for a while.

Failures are counted per *username as typed* (normalised), whether or not such a user exists: a name that
does not exist locks exactly like one that does, so the lockout itself never tells who has an account.
The counter lives in PostgreSQL, so every web replica sees it and a restart does not reset it.

Keyword-only functions on a Session; they flush but never commit, so the caller decides the transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.dialects.postgresql import insert
from sqlmodel import Field, Session, SQLModel, select

from domain.base import timestamp_field

DEFAULT_MAX_FAILURES = 5
DEFAULT_LOCKOUT = timedelta(minutes=15)
# Usernames are at most 64 characters (domain.users.service.USERNAME_PATTERN); a longer one cannot exist,
# and storing arbitrary long strings typed by strangers would only grow the table.
MAX_TRACKED_USERNAME_LENGTH = 64


class LoginLockout(SQLModel, table=True):
    """Failed sign-ins of one username since its last success (or since its last lock expired)."""

    __tablename__ = "login_lockout"

    username: str = Field(primary_key=True, max_length=MAX_TRACKED_USERNAME_LENGTH)
    failed_attempts: int = 0
    last_failed_at: datetime = timestamp_field()
    locked_until: datetime | None = timestamp_field(nullable=True)


@dataclass(frozen=True)
class LockoutPolicy:
    max_failures: int = DEFAULT_MAX_FAILURES
    lockout: timedelta = DEFAULT_LOCKOUT


def is_tracked(username: str) -> bool:
    return 0 < len(username) <= MAX_TRACKED_USERNAME_LENGTH


def locked_until(session: Session, *, username: str, now: datetime) -> datetime | None:
    """When the lock on ``username`` ends, or None when it may try to sign in now."""
    if not is_tracked(username):
        return None
    row = session.get(LoginLockout, username)
    if row is None or row.locked_until is None or row.locked_until <= now:
        return None
    return row.locked_until


def record_failed_login(
    session: Session, *, username: str, now: datetime, policy: LockoutPolicy = LockoutPolicy()
) -> datetime | None:
    """Count one failure; returns the end of the lock when this failure locks the username.

    Failures older than the lockout period, and those before an expired lock, no longer count. The row is
    locked while it is counted, so concurrent guesses cannot slip past the limit together.
    """
    if not is_tracked(username):
        return None
    # Create the row if missing without racing a concurrent first failure, then count under a row lock.
    session.exec(
        insert(LoginLockout)
        .values(username=username, failed_attempts=0, last_failed_at=now, locked_until=None)
        .on_conflict_do_nothing(index_elements=["username"])
    )
    # populate_existing: the row may already sit in the session from locked_until(), read before the lock.
    statement = (
        select(LoginLockout)
        .where(LoginLockout.username == username)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    row = session.exec(statement).one()
    lock_expired = row.locked_until is not None and row.locked_until <= now
    stale = row.last_failed_at <= now - policy.lockout
    if lock_expired or stale:
        row.failed_attempts = 0
        row.locked_until = None
    row.failed_attempts += 1
    row.last_failed_at = now
    if row.failed_attempts >= policy.max_failures and row.locked_until is None:
        row.locked_until = now + policy.lockout
    session.add(row)
    session.flush()
    return row.locked_until


def clear_failed_logins(session: Session, *, username: str) -> None:
    """A successful sign-in forgets earlier failures."""
    if not is_tracked(username):
        return
    row = session.get(LoginLockout, username)
    if row is not None:
        session.delete(row)
        session.flush()
