"""The FastAPI application: JSON API under /api/v1 and, later, the pages for every audience."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from temporalio.client import Client

from api import health
from api.routes import alerts, auth, bundles, cases, directory, handoffs, inbox, transparency
from api.web import install_pages
from infra.clients import connect_temporal, make_minio_client
from infra.db import make_engine
from infra.evidence_store import EvidenceStore
from infra.intake import AlertIntake
from infra.settings import Settings, get_settings
from infra.transparency_key import ensure_signer_key, load_signer


def temporal_connector(settings: Settings) -> Callable[[], Awaitable[Client]]:
    """Connects lazily and reconnects after a failure, so the app starts even while Temporal is down."""
    client: Client | None = None
    lock = asyncio.Lock()

    async def get() -> Client:
        nonlocal client
        async with lock:
            if client is None:
                client = await connect_temporal(settings)
            return client

    return get


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.engine = make_engine(settings.effective_database_url)
        app.state.minio = make_minio_client(settings)
        app.state.temporal = temporal_connector(settings)
        app.state.evidence_store = EvidenceStore.from_settings(settings, app.state.engine)
        ensure_signer_key(settings)  # `sunshine up` made it already; a standalone API makes its own
        app.state.signer = load_signer(settings)
        # One intake per process: its per-(camera, type) locks must be shared by every request.
        app.state.alert_intake = AlertIntake(
            engine=app.state.engine,
            evidence_store=app.state.evidence_store,
            temporal_client_factory=app.state.temporal,
            task_queue=settings.temporal_task_queue,
        )
        yield
        app.state.alert_intake.close()
        app.state.engine.dispose()

    app = FastAPI(title="Sunshine 阳光食品工程智慧监管平台", version="0.1.0", lifespan=lifespan)
    app.include_router(health.router)
    for area in (auth, alerts, cases, directory, inbox, handoffs, transparency, bundles):
        app.include_router(area.router, prefix="/api/v1")
    install_pages(app, settings)
    return app
