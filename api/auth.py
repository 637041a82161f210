"""People sign in with a password (OAuth2 password flow) and then carry a short-lived signed bearer token.

Token: ``st1.<payload>.<signature>``, base64url, signed with HMAC-SHA256 under a key derived from
``settings.secret_key``. The payload holds the user id, issue, expiry and sign-in times, and a fingerprint
of the user's password hash: changing the password (or an administrator resetting it) invalidates every
token issued before. Disabling is checked against the database on every request, so a disabled user's
tokens stop working at once. Tokens live 30 minutes (等保 idle timeout); ``refresh`` renews an active
session up to an absolute limit.

Sign-in answers the same way, in about the same time, whether or not the username exists: an unknown name
is verified against a dummy argon2 hash and counts towards a lockout exactly like a known one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlmodel import Session

from domain.errors import DomainError, ValidationFailed
from domain.users import lockout
from domain.users.models import User
from domain.users.passwords import (
    MAX_PASSWORD_LENGTH,
    hash_password,
    needs_rehash,
    password_problems,
    verify_password,
)
from domain.users.service import find_user, normalise_username
from infra.settings import Settings

log = logging.getLogger("sunshine.auth")

TOKEN_PREFIX = "st1"  # noqa: S105 - a format marker, not a secret
TOKEN_TYPE = "bearer"  # noqa: S105 - the OAuth2 token type name
# Purpose label mixed into the signing key: the secret key may sign other things later (cookies, links),
# and a signature made for one purpose must never verify for another.
_TOKEN_KEY_PURPOSE = b"sunshine/access-token/v1"


@dataclass(frozen=True)
class AuthPolicy:
    """Token lifetime and lockout; each is read from a setting when the settings define it."""

    access_token_ttl: timedelta
    session_max_age: timedelta
    lockout: lockout.LockoutPolicy

    @classmethod
    def from_settings(cls, settings: Settings) -> AuthPolicy:
        return cls(
            access_token_ttl=timedelta(minutes=settings.access_token_minutes),
            session_max_age=timedelta(hours=settings.session_max_hours),
            lockout=lockout.LockoutPolicy(
                max_failures=settings.login_max_failures,
                lockout=timedelta(minutes=settings.login_lockout_minutes),
            ),
        )


# Errors, each with a message fit to show; the routes map them to HTTP statuses.


class InvalidCredentials(DomainError):
    """Wrong username or password; deliberately silent about which."""

    def __init__(self) -> None:
        super().__init__("incorrect username or password")


class SignInLocked(DomainError):
    """Too many failures for this username; the same for names that exist and names that do not."""

    def __init__(self, until: datetime, now: datetime) -> None:
        self.retry_after_seconds = max(1, int((until - now).total_seconds() + 0.999))
        minutes = (self.retry_after_seconds + 59) // 60
        super().__init__(f"too many failed sign-ins for this username; try again in {minutes} minute(s)")


class InvalidToken(DomainError):
    """A token that is malformed, forged, expired or no longer valid for its user."""


class WrongCurrentPassword(DomainError):
    def __init__(self) -> None:
        super().__init__("the current password is not correct")


# Tokens


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int  # seconds


@dataclass(frozen=True)
class TokenClaims:
    user_id: int
    issued_at: int
    expires_at: int
    signed_in_at: int  # the password sign-in this token descends from (refresh keeps it)
    password_fingerprint: str


def signing_key(settings: Settings) -> bytes:
    return _derive_key(settings.secret_key.get_secret_value())


@lru_cache(maxsize=8)
def _derive_key(secret: str) -> bytes:
    return hmac.new(secret.encode("utf-8"), _TOKEN_KEY_PURPOSE, hashlib.sha256).digest()


def password_fingerprint(key: bytes, password_hash: str) -> str:
    """Short MAC of the stored hash: changes whenever the password does, reveals nothing about it."""
    digest = hmac.new(key, b"password:" + password_hash.encode("utf-8"), hashlib.sha256).digest()
    return _b64encode(digest[:12])


def issue_token(
    key: bytes, *, user: User, policy: AuthPolicy, now: float | None = None, signed_in_at: int | None = None
) -> IssuedToken:
    assert user.id is not None
    issued_at = int(time.time() if now is None else now)
    ttl = int(policy.access_token_ttl.total_seconds())
    payload = {
        "sub": user.id,
        "iat": issued_at,
        "exp": issued_at + ttl,
        "sia": issued_at if signed_in_at is None else signed_in_at,
        "pwd": password_fingerprint(key, user.password_hash),
    }
    body = f"{TOKEN_PREFIX}.{_b64encode(json.dumps(payload, separators=(',', ':')).encode())}"
    return IssuedToken(access_token=f"{body}.{_sign(key, body)}", expires_in=ttl)


def read_token(key: bytes, token: str, *, now: float | None = None) -> TokenClaims:
    """The claims of a genuine, unexpired token; raises InvalidToken otherwise (the user is not checked here)."""
    prefix, _, rest = token.partition(".")
    encoded_payload, _, signature = rest.partition(".")
    if prefix != TOKEN_PREFIX or not encoded_payload or not signature:
        raise InvalidToken("the bearer token is malformed")
    # Signature first: nothing from an unsigned payload is parsed or believed.
    if not hmac.compare_digest(_sign(key, f"{prefix}.{encoded_payload}"), signature):
        raise InvalidToken("the bearer token's signature is not valid")
    try:
        payload: dict[str, Any] = json.loads(_b64decode(encoded_payload))
        claims = TokenClaims(
            user_id=int(payload["sub"]),
            issued_at=int(payload["iat"]),
            expires_at=int(payload["exp"]),
            signed_in_at=int(payload["sia"]),
            password_fingerprint=str(payload["pwd"]),
        )
    except (ValueError, KeyError, TypeError) as error:
        raise InvalidToken("the bearer token is malformed") from error
    if (time.time() if now is None else now) >= claims.expires_at:
        raise InvalidToken("the bearer token has expired; sign in again")
    return claims


def user_for_token(session: Session, key: bytes, token: str, *, now: float | None = None) -> User:
    """The user a token stands for, re-checked against the database: enabled, and the same password."""
    claims = read_token(key, token, now=now)
    user = session.get(User, claims.user_id)
    # One message for every case: a token is simply no longer valid, whatever happened to its user.
    if (
        user is None
        or user.disabled
        or not hmac.compare_digest(password_fingerprint(key, user.password_hash), claims.password_fingerprint)
    ):
        raise InvalidToken("the bearer token is no longer valid; sign in again")
    return user


def refresh_token(key: bytes, *, user: User, token: str, policy: AuthPolicy, now: float | None = None) -> IssuedToken:
    """A fresh token for an active session, until the session's absolute limit since the password sign-in."""
    claims = read_token(key, token, now=now)
    current = time.time() if now is None else now
    if current - claims.signed_in_at >= policy.session_max_age.total_seconds():
        raise InvalidToken("the session has reached its maximum length; sign in again")
    return issue_token(key, user=user, policy=policy, now=current, signed_in_at=claims.signed_in_at)


def _sign(key: bytes, body: str) -> str:
    return _b64encode(hmac.new(key, body.encode("ascii"), hashlib.sha256).digest())


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as error:
        raise ValueError("not base64url") from error


# Signing in


@lru_cache(maxsize=1)
def _dummy_password_hash() -> str:
    """Verified against when the username is unknown, so that both paths cost one argon2 verification."""
    return hash_password("sunshine: no such user, this hash only spends time")


def authenticate(session: Session, *, username: str, password: str, policy: AuthPolicy) -> User:
    """The user whose password this is; commits the lockout bookkeeping either way.

    Raises SignInLocked while the username is locked (even for the right password), else InvalidCredentials
    for an unknown user, a wrong password or a disabled account, indistinguishably.
    """
    username = normalise_username(username)
    now = datetime.now(UTC)
    locked = lockout.locked_until(session, username=username, now=now)
    if locked is not None:
        raise SignInLocked(locked, now)

    user = find_user(session, username=username) if lockout.is_tracked(username) else None
    # An over-long password is refused without hashing it: argon2 over megabytes would be a cheap DoS.
    acceptable_length = len(password) <= MAX_PASSWORD_LENGTH
    stored_hash = user.password_hash if user is not None else _dummy_password_hash()
    password_matches = acceptable_length and verify_password(stored_hash, password)

    if user is None or not password_matches or user.disabled:
        locked = lockout.record_failed_login(session, username=username, now=now, policy=policy.lockout)
        session.commit()
        if locked is not None:
            log.warning("sign-in locked for username %r until %s", username, locked.isoformat())
        raise InvalidCredentials()

    lockout.clear_failed_logins(session, username=username)
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
        session.add(user)
    session.commit()
    log.info("user %s signed in", user.id)
    return user


def change_password(
    session: Session, *, user: User, current_password: str, new_password: str, policy: AuthPolicy
) -> User:
    """Replace the password after checking the current one (which counts towards the lockout) and the policy.

    Tokens issued before stop working (their password fingerprint no longer matches).
    """
    now = datetime.now(UTC)
    locked = lockout.locked_until(session, username=user.username, now=now)
    if locked is not None:
        raise SignInLocked(locked, now)
    if len(current_password) > MAX_PASSWORD_LENGTH or not verify_password(user.password_hash, current_password):
        # Counted like a failed sign-in: a stolen token must not become a way to guess the password.
        lockout.record_failed_login(session, username=user.username, now=now, policy=policy.lockout)
        session.commit()
        raise WrongCurrentPassword()

    problems = password_problems(new_password)
    if new_password == current_password:
        problems.append("it is the same as the current password")
    if user.username in new_password.lower():
        problems.append("it contains the username")
    if problems:
        raise ValidationFailed("the new password is not acceptable", problems)

    user.password_hash = hash_password(new_password)
    user.must_change_password = False
    session.add(user)
    lockout.clear_failed_logins(session, username=user.username)
    session.commit()
    log.info("user %s changed their password", user.id)
    return user
