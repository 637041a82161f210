"""The pages people use in a browser: server-rendered, zh-CN first, working without JavaScript."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.staticfiles import StaticFiles

from api.web.errors import install_error_pages, wants_json
from infra.settings import Settings

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"


def content_security_policy(settings: Settings) -> str:
    # Evidence is shown through presigned URLs of the object store, so its origin may serve images and video.
    evidence_origin = settings.effective_s3_endpoint.rstrip("/")
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; "
        f"img-src 'self' data: {evidence_origin}; media-src 'self' {evidence_origin}; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
    )


def install_pages(app: FastAPI, settings: Settings) -> None:
    from api.web import pages

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for router in pages.ROUTERS:
        app.include_router(router)
    install_error_pages(app)
    policy = content_security_policy(settings)

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if not wants_json(request) and not request.url.path.startswith("/static/"):
            response.headers.setdefault("Content-Security-Policy", policy)
            response.headers.setdefault("X-Frame-Options", "DENY")
            response.headers.setdefault("Cache-Control", "no-store")
        return response
