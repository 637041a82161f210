"""People who sign in: one role each, scoped to a street office or a merchant where the role needs it."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint
from sqlmodel import Field, SQLModel

from domain.base import timestamp_field
from domain.merchants import models as _merchant_models  # noqa: F401  (FK target tables must be registered)


class Role(StrEnum):
    command_center = "command_center"  # 区局指挥中心
    street_officer = "street_officer"  # 街市场监管所
    brigade_officer = "brigade_officer"  # 综合行政执法支队
    merchant = "merchant"  # 食品经营者
    auditor = "auditor"  # 审计
    admin = "admin"  # 系统管理员


ROLE_LABELS: dict[Role, str] = {
    Role.command_center: "区局指挥中心",
    Role.street_officer: "街市场监管所",
    Role.brigade_officer: "综合行政执法支队",
    Role.merchant: "食品经营者",
    Role.auditor: "审计",
    Role.admin: "系统管理员",
}


class User(SQLModel, table=True):
    __tablename__ = "app_user"
    __table_args__ = (
        CheckConstraint(
            "role IN ('command_center','street_officer','brigade_officer','merchant','auditor','admin')",
            name="app_user_role_valid",
        ),
        CheckConstraint(
            "(role = 'street_officer') = (street_office_id IS NOT NULL)", name="app_user_street_scope"
        ),
        CheckConstraint("(role = 'merchant') = (merchant_id IS NOT NULL)", name="app_user_merchant_scope"),
    )

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64, unique=True, index=True)
    display_name: str = Field(default="", max_length=100)
    role: str = Field(max_length=32)
    street_office_id: int | None = Field(default=None, foreign_key="street_office.id")
    merchant_id: int | None = Field(default=None, foreign_key="merchant.id")
    password_hash: str = Field(max_length=255)  # argon2id
    must_change_password: bool = False
    disabled: bool = False
    created_at: datetime = timestamp_field(default_now=True)
    password_changed_at: datetime | None = timestamp_field(nullable=True)
    # TOTP second factor (RFC 6238). The secret is set at enrolment and counts only once confirmed.
    totp_secret: str | None = Field(default=None, max_length=255)  # sealed (domain.users.secret_box)
    totp_confirmed_at: datetime | None = timestamp_field(nullable=True)
    # The last time step accepted, so that one code cannot be used twice.
    totp_last_step: int | None = None
    # 办法 第十六条 notice (alerts serve enforcement), acknowledged once by a merchant's account.
    enforcement_notice_acknowledged_at: datetime | None = timestamp_field(nullable=True)
