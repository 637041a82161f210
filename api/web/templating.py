"""Jinja2 for the pages: autoescape on, one translation layer, times shown in Beijing time."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from api.web.i18n import LOCALES, N_, Translator
from api.web.labels import label
from domain.users.models import Role

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
BEIJING = ZoneInfo("Asia/Shanghai")


def beijing(value: datetime | str | None, pattern: str = "%Y-%m-%d %H:%M") -> str:
    if value is None or value == "":
        return "—"
    instant: datetime
    if isinstance(value, str):  # ISO text from a JSON column
        try:
            instant = datetime.fromisoformat(value)
        except ValueError:
            return value
    else:
        instant = value
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    return instant.astimezone(BEIJING).strftime(pattern)


def iso_utc(value: datetime | None) -> str:
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def yuan(amount_fen: int | None) -> str:
    if amount_fen is None:
        return "—"
    return f"{amount_fen // 100}.{amount_fen % 100:02d}"


NAV_LINKS: dict[Role, list[tuple[str, str]]] = {
    Role.street_officer: [("/queue", N_("Case queue"))],
    Role.command_center: [("/overview", N_("District overview")), ("/queue", N_("All cases")),
                          ("/brigade", N_("Transfers"))],
    Role.brigade_officer: [("/brigade", N_("Transferred cases"))],
    Role.merchant: [("/m", N_("Alerts")), ("/m/history", N_("History")), ("/m/profile", N_("My shop"))],
    Role.auditor: [("/audit", N_("Cases")), ("/audit/log", N_("Audit log"))],
    Role.admin: [("/admin", N_("Users")), ("/admin/devices", N_("Devices"))],
}


def nav_links(page: Any) -> list[tuple[str, str]]:
    return NAV_LINKS.get(Role(page.user.role), [])


def _environment() -> Environment:
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(default=True, default_for_string=True),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["beijing"] = beijing
    environment.filters["iso_utc"] = iso_utc
    environment.filters["yuan"] = yuan
    environment.globals["LOCALES"] = LOCALES
    environment.globals["nav_links"] = nav_links
    environment.globals["label"] = label
    return environment


templates = _environment()


def render(
    request: Request,
    template: str,
    *,
    tr: Translator,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    **values: Any,
) -> HTMLResponse:
    """Render with the request's translations in the context (``_``, ``gettext``, ``ngettext``), so that one
    shared environment serves every language at once."""
    body = templates.get_template(template).render(
        request=request,
        _=tr.gettext,
        gettext=tr.gettext,
        ngettext=tr.ngettext,
        tr=tr,
        now=datetime.now(UTC),
        **values,
    )
    return HTMLResponse(body, status_code=status_code, headers=headers)
