"""Merchants and cameras, as far as the caller may see them: a device (its merchant's; a district-scoped
device, all) or a person (merchant: own; street officer: own street; brigade: merchants with a hand-off;
command center, auditor and administrator: all, since merchants and cameras are configuration)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from sqlmodel import col, select

from api.deps import DirectoryScope, SessionDep
from domain.merchants.models import Camera, Merchant, StreetOffice

router = APIRouter(tags=["directory"])

MAX_PAGE_SIZE = 500


class MerchantOut(BaseModel):
    id: int
    name: str
    credit_code: str
    food_licence_no: str | None
    address: str
    street_office_id: int
    street_office_code: str
    street_office_name: str
    risk_level: str
    credit_level: str


class MerchantListOut(BaseModel):
    items: list[MerchantOut]
    next_after: int | None = Field(description="pass as `after` for the next page; null on the last page")


class CameraOut(BaseModel):
    id: int
    name: str
    area: str
    enabled: bool
    merchant_id: int
    merchant_name: str
    merchant_credit_code: str
    street_office_id: int
    street_office_code: str


class CameraListOut(BaseModel):
    items: list[CameraOut]
    next_after: int | None = Field(description="pass as `after` for the next page; null on the last page")


PageSize = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)]
After = Annotated[int | None, Query(ge=0, description="the last id of the previous page")]


@router.get("/merchants", response_model=MerchantListOut)
def list_merchants(
    session: SessionDep, scope: DirectoryScope, limit: PageSize = 100, after: After = None
) -> MerchantListOut:
    statement = (
        select(Merchant, StreetOffice)
        .join(StreetOffice, col(StreetOffice.id) == col(Merchant.street_office_id))
        .where(scope.merchant_condition())
    )
    if after is not None:
        statement = statement.where(col(Merchant.id) > after)
    rows = session.exec(statement.order_by(col(Merchant.id)).limit(limit + 1)).all()
    items = [
        MerchantOut(
            id=merchant.id or 0,
            name=merchant.name,
            credit_code=merchant.credit_code,
            food_licence_no=merchant.food_licence_no,
            address=merchant.address,
            street_office_id=merchant.street_office_id,
            street_office_code=office.code,
            street_office_name=office.name,
            risk_level=merchant.risk_level,
            credit_level=merchant.credit_level,
        )
        for merchant, office in rows[:limit]
    ]
    return MerchantListOut(items=items, next_after=items[-1].id if len(rows) > limit else None)


@router.get("/cameras", response_model=CameraListOut)
def list_cameras(
    session: SessionDep, scope: DirectoryScope, limit: PageSize = 100, after: After = None
) -> CameraListOut:
    # Stream URLs are left out: they often carry the camera's own credentials (rtsp://user:pass@…).
    statement = (
        select(Camera, Merchant, StreetOffice)
        .join(Merchant, col(Merchant.id) == col(Camera.merchant_id))
        .join(StreetOffice, col(StreetOffice.id) == col(Merchant.street_office_id))
        .where(scope.merchant_condition())
    )
    if after is not None:
        statement = statement.where(col(Camera.id) > after)
    rows = session.exec(statement.order_by(col(Camera.id)).limit(limit + 1)).all()
    items = [
        CameraOut(
            id=camera.id or 0,
            name=camera.name,
            area=camera.area,
            enabled=camera.enabled,
            merchant_id=camera.merchant_id,
            merchant_name=merchant.name,
            merchant_credit_code=merchant.credit_code,
            street_office_id=office.id or 0,
            street_office_code=office.code,
        )
        for camera, merchant, office in rows[:limit]
    ]
    return CameraListOut(items=items, next_after=items[-1].id if len(rows) > limit else None)
