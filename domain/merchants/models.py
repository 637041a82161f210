"""Jurisdiction and the supervised businesses: StreetOffice, Merchant, Certificate, Camera."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from uuid import UUID

from sqlalchemy import JSON, CheckConstraint, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from domain.base import timestamp_field
from domain.evidence import models as _evidence_models  # noqa: F401  (FK target table must be registered)


class RiskLevel(StrEnum):
    """Risk grade A (low) … D (high), 食品生产经营监督检查管理办法 第二十一条."""

    A = "A"
    B = "B"
    C = "C"
    D = "D"


class CertificateKind(StrEnum):
    business_licence = "business_licence"  # 营业执照
    food_business_licence = "food_business_licence"  # 食品经营许可证
    vendor_registration = "vendor_registration"  # 食品摊贩备案证明
    health_certificate = "health_certificate"  # 健康证明


class CameraArea(StrEnum):
    rough_processing = "rough_processing"  # 粗加工
    cooking = "cooking"  # 烹饪
    special_room = "special_room"  # 专间
    washing = "washing"  # 洗消
    storage = "storage"  # 仓储
    serving_prep = "serving_prep"  # 备餐


CAMERA_AREA_LABELS: dict[CameraArea, str] = {
    CameraArea.rough_processing: "粗加工",
    CameraArea.cooking: "烹饪",
    CameraArea.special_room: "专间",
    CameraArea.washing: "洗消",
    CameraArea.storage: "仓储",
    CameraArea.serving_prep: "备餐",
}


class StreetOffice(SQLModel, table=True):
    """街市场监管所: the jurisdiction unit; every merchant belongs to one."""

    __tablename__ = "street_office"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=32, unique=True, index=True)
    name: str = Field(max_length=100)


class Merchant(SQLModel, table=True):
    """食品经营者 / 商户."""

    __tablename__ = "merchant"
    __table_args__ = (
        CheckConstraint("char_length(credit_code) = 18", name="merchant_credit_code_length"),
        CheckConstraint("risk_level IN ('A','B','C','D')", name="merchant_risk_level_valid"),
        CheckConstraint("credit_level IN ('A','B','C','D')", name="merchant_credit_level_valid"),
    )

    id: int | None = Field(default=None, primary_key=True)
    credit_code: str = Field(max_length=18, unique=True, index=True)  # 统一社会信用代码
    food_licence_no: str | None = Field(default=None, max_length=32, unique=True)  # 食品经营许可证号
    name: str = Field(max_length=200)
    address: str = Field(max_length=300)
    street_office_id: int = Field(foreign_key="street_office.id", index=True)
    risk_level: str = Field(default=RiskLevel.B.value, max_length=1)
    credit_level: str = Field(default=RiskLevel.A.value, max_length=1)
    # [["10:00", "14:00"], ["17:00", "22:00"]] in Beijing time; intervals may cross midnight.
    business_hours: list[list[str]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    notice_acknowledged_at: datetime | None = timestamp_field(nullable=True)  # 办法 第十六条 告知
    created_at: datetime = timestamp_field(default_now=True)


class Certificate(SQLModel, table=True):
    """证照: licences and staff health certificates, with the evidence of the scan."""

    __tablename__ = "certificate"
    __table_args__ = (
        UniqueConstraint("merchant_id", "kind", "number", name="certificate_merchant_kind_number"),
        CheckConstraint(
            "kind <> 'health_certificate' OR holder_name IS NOT NULL", name="certificate_health_holder_required"
        ),
        CheckConstraint("valid_until IS NULL OR valid_until >= valid_from", name="certificate_validity_order"),
    )

    id: int | None = Field(default=None, primary_key=True)
    merchant_id: int = Field(foreign_key="merchant.id", index=True)
    kind: str = Field(max_length=32)
    number: str = Field(max_length=64)
    holder_name: str | None = Field(default=None, max_length=100)
    valid_from: date
    valid_until: date | None = Field(default=None, index=True)  # None: 长期 (no expiry)
    scan_evidence_id: UUID | None = Field(default=None, foreign_key="evidence.id")


class Camera(SQLModel, table=True):
    """视频采集设备 in a merchant's kitchen."""

    __tablename__ = "camera"

    id: int | None = Field(default=None, primary_key=True)
    merchant_id: int = Field(foreign_key="merchant.id", index=True)
    name: str = Field(max_length=100)
    area: str = Field(max_length=32)
    stream_url: str = Field(max_length=500)
    # None: the merchant's business hours apply.
    business_hours: list[list[str]] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    enabled: bool = True
    reference_frame_evidence_id: UUID | None = Field(default=None, foreign_key="evidence.id")
    created_at: datetime = timestamp_field(default_now=True)
