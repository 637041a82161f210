"""GET /healthz: each dependency with its status and latency; 503 when one is down."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

CHECK_TIMEOUT_SECONDS = 3.0
BEIJING = timezone(timedelta(hours=8))

router = APIRouter()


@dataclass(frozen=True)
class CheckResult:
    status: str  # "ok" | "down"
    latency_ms: float
    error: str | None = None


async def timed_check(probe: Callable[[], Awaitable[None]]) -> CheckResult:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(probe(), timeout=CHECK_TIMEOUT_SECONDS)
    except Exception as exc:
        return CheckResult("down", _elapsed_ms(started), _describe(exc))
    return CheckResult("ok", _elapsed_ms(started))


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {CHECK_TIMEOUT_SECONDS:.0f} s"
    # First line only: driver errors can be long, and never include credentials.
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:200]


@router.get("/healthz", tags=["operations"])
async def healthz(request: Request) -> JSONResponse:
    state = request.app.state
    database, temporal, object_store = await asyncio.gather(
        timed_check(lambda: asyncio.to_thread(_probe_database, state.engine)),
        timed_check(lambda: _probe_temporal(request)),
        timed_check(lambda: asyncio.to_thread(_probe_object_store, state.minio, state.settings.evidence_bucket)),
    )
    checks = {"database": database, "temporal": temporal, "object_store": object_store}
    healthy = all(check.status == "ok" for check in checks.values())
    body: dict[str, Any] = {
        "status": "ok" if healthy else "down",
        "checks": {name: asdict(check) for name, check in checks.items()},
        "warnings": await asyncio.to_thread(_calendar_warnings, state.engine),
    }
    return JSONResponse(body, status_code=200 if healthy else 503)


def _probe_database(engine: Any) -> None:
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))


async def _probe_temporal(request: Request) -> None:
    from temporalio.api.workflowservice.v1 import GetSystemInfoRequest

    client = await request.app.state.temporal()
    await client.workflow_service.get_system_info(GetSystemInfoRequest(), timeout=timedelta(seconds=2))


def _probe_object_store(minio: Any, bucket: str) -> None:
    if not minio.bucket_exists(bucket):
        raise RuntimeError(f"evidence bucket {bucket!r} does not exist")


def _calendar_warnings(engine: Any) -> list[str]:
    """From 1 December: next year's official holiday data missing (deadlines would be provisional)."""
    from sqlmodel import Session

    from domain.calendar import service as calendar_service
    from domain.calendar.rules import next_year_status

    today = datetime.now(BEIJING).date()
    try:
        with Session(engine) as session:
            official = calendar_service.official_years(session)
    except Exception:
        official = []
    status = next_year_status(today, official)
    return [status.warning] if status.warning else []
