"""Creating and disabling user accounts."""

from __future__ import annotations

import re

from sqlmodel import Session, select

from domain.errors import Conflict, NotFound, ValidationFailed
from domain.merchants.models import Merchant, StreetOffice
from domain.merchants.rules import normalise_credit_code
from domain.users.models import ROLE_LABELS, Role, User
from domain.users.passwords import hash_password, password_problems

# Lower case so that "Admin" and "admin" can never be two people; no spaces or '@' so names survive URLs,
# log lines and shell scripts unquoted.
USERNAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{2,63}")
USERNAME_RULE = "3–64 characters: lower-case letters, digits, '.', '_' or '-', starting with a letter or digit"


def normalise_username(raw: str) -> str:
    return raw.strip().lower()


def username_problem(username: str) -> str | None:
    if USERNAME_PATTERN.fullmatch(username):
        return None
    return f"the username {username!r} is not valid ({USERNAME_RULE})"


def parse_role(raw: str | Role) -> Role:
    try:
        return Role(raw)
    except ValueError:
        raise ValidationFailed(f"unknown role {raw!r}; roles are: {', '.join(r.value for r in Role)}") from None


def find_user(session: Session, *, username: str) -> User | None:
    return session.exec(select(User).where(User.username == normalise_username(username))).first()


def create_user(
    session: Session,
    *,
    username: str,
    role: str | Role,
    password: str,
    street_office_code: str | None = None,
    merchant_credit_code: str | None = None,
    display_name: str = "",
    must_change_password: bool = False,
) -> User:
    """Add an account; a street officer is scoped to one street office, a merchant user to one merchant.

    The password is checked against the policy and stored only as an argon2id hash.
    """
    username = normalise_username(username)
    problem = username_problem(username)
    if problem:
        raise ValidationFailed(problem)
    parsed_role = parse_role(role)
    _check_scope(parsed_role, street_office_code=street_office_code, merchant_credit_code=merchant_credit_code)
    weaknesses = password_problems(password)
    if weaknesses:
        raise ValidationFailed("the password is too weak", weaknesses)
    if len(display_name) > 100:
        raise ValidationFailed("the display name is longer than 100 characters")
    if find_user(session, username=username) is not None:
        raise Conflict(f"a user named {username!r} already exists")

    user = User(
        username=username,
        display_name=display_name.strip(),
        role=parsed_role.value,
        password_hash=hash_password(password),
        must_change_password=must_change_password,
    )
    if street_office_code is not None:
        user.street_office_id = _street_office_id(session, street_office_code)
    if merchant_credit_code is not None:
        user.merchant_id = _merchant_id(session, merchant_credit_code)
    session.add(user)
    session.flush()
    return user


def disable_user(session: Session, *, username: str) -> User:
    """Stop an account from signing in; its history stays. Disabling twice is harmless."""
    user = find_user(session, username=username)
    if user is None:
        raise NotFound(f"no user named {normalise_username(username)!r}")
    user.disabled = True
    session.add(user)
    session.flush()
    return user


def enable_user(session: Session, *, username: str) -> User:
    """Let a disabled account sign in again (with its old password and second factor). Enabling twice is harmless."""
    user = find_user(session, username=username)
    if user is None:
        raise NotFound(f"no user named {normalise_username(username)!r}")
    user.disabled = False
    session.add(user)
    session.flush()
    return user


def _check_scope(role: Role, *, street_office_code: str | None, merchant_credit_code: str | None) -> None:
    label = f"{role.value} ({ROLE_LABELS[role]})"
    if role is Role.street_officer and street_office_code is None:
        raise ValidationFailed(f"a {label} user needs the code of their street office")
    if role is Role.merchant and merchant_credit_code is None:
        raise ValidationFailed(f"a {label} user needs the credit code of their merchant")
    if street_office_code is not None and role is not Role.street_officer:
        raise ValidationFailed(f"a {label} user is not scoped to a street office; only street officers are")
    if merchant_credit_code is not None and role is not Role.merchant:
        raise ValidationFailed(f"a {label} user is not scoped to a merchant; only merchant users are")


def _street_office_id(session: Session, code: str) -> int:
    office = session.exec(select(StreetOffice).where(StreetOffice.code == code.strip())).first()
    if office is None or office.id is None:
        raise NotFound(f"no street office with code {code.strip()!r}")
    return office.id


def _merchant_id(session: Session, credit_code: str) -> int:
    code = normalise_credit_code(credit_code)
    merchant = session.exec(select(Merchant).where(Merchant.credit_code == code)).first()
    if merchant is None or merchant.id is None:
        raise NotFound(f"no merchant with credit code {code!r}")
    return merchant.id
