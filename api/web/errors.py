"""How refusals look in the browser: a redirect to sign in, or a readable error page — never a bare 500
or a JSON body. JSON routes under /api keep FastAPI's JSON errors."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.web.context import (
    SESSION_COOKIE,
    PageForbidden,
    RedirectTo,
    SignInRequired,
    audit_refusal,
    login_redirect,
    request_translator,
)
from api.web.i18n import N_
from api.web.templating import render

log = logging.getLogger("sunshine.web")

JSON_PREFIXES = ("/api/", "/healthz", "/docs", "/openapi.json", "/redoc")

STATUS_TITLES = {
    400: N_("The request is not valid"),
    403: N_("Not allowed"),
    404: N_("Not found"),
    405: N_("Not allowed"),
    409: N_("The action was refused"),
    413: N_("The file is too large"),
    415: N_("This kind of file is not accepted"),
    422: N_("Some fields need attention"),
    503: N_("A service is unavailable"),
}


def wants_json(request: Request) -> bool:
    return request.url.path.startswith(JSON_PREFIXES)


def error_page(
    request: Request, status_code: int, message: str, headers: dict[str, str] | None = None, page: object = None
) -> Response:
    tr = request_translator(request)
    return render(
        request,
        "error.html",
        tr=tr,
        status_code=status_code,
        headers=headers,
        title=tr.gettext(STATUS_TITLES.get(status_code, N_("Something went wrong"))),
        message=message,
        status=status_code,
        page=page,
    )


def install_error_pages(app: FastAPI) -> None:
    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, error: SignInRequired) -> Response:
        expired = error.ended is not None
        response = RedirectResponse(login_redirect(error.next_path, expired=expired), status_code=303)
        if request.cookies.get(SESSION_COOKIE):
            response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    @app.exception_handler(RedirectTo)
    async def _redirect(request: Request, error: RedirectTo) -> Response:
        return RedirectResponse(error.location, status_code=303)

    @app.exception_handler(PageForbidden)
    async def _forbidden(request: Request, error: PageForbidden) -> Response:
        if error.context is not None:
            audit_refusal(error.context, action=error.action, target=error.target or request.url.path,
                          reason=error.message)
        return error_page(request, 403, error.message, page=error.context)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, error: StarletteHTTPException) -> Response:
        if wants_json(request):
            return await http_exception_handler(request, error)
        tr = request_translator(request)
        message = error.detail if isinstance(error.detail, str) else tr.gettext("The request could not be served.")
        return error_page(request, error.status_code, message, headers=getattr(error, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> Response:
        if wants_json(request):
            return await request_validation_exception_handler(request, error)
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem.get('loc', ())[1:])}: {problem.get('msg', '')}"
            for problem in error.errors()
        )
        return error_page(request, 422, problems)
