"""Every page router, in one list for the app to include."""

from __future__ import annotations

from fastapi import APIRouter

from api.web import (
    account,
    admin_pages,
    auditor_pages,
    auth_pages,
    brigade_pages,
    bundle_pages,
    case_pages,
    command_pages,
    evidence_pages,
    merchant_pages,
    queue_pages,
)

ROUTERS: list[APIRouter] = [
    auth_pages.router,
    account.router,
    queue_pages.router,
    case_pages.router,
    evidence_pages.router,
    merchant_pages.router,
    brigade_pages.router,
    command_pages.router,
    auditor_pages.router,
    admin_pages.router,
    bundle_pages.router,
]
