"""The signed-in person's own account: who they are, their scope, password and second factor."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from api.web.context import Page
from api.web.templating import render
from domain.users.models import ROLE_LABELS, Role

router = APIRouter(include_in_schema=False)


@router.get("/account")
def account(context: Page) -> Response:
    return render(context.request, "account.html", tr=context.tr, page=context,
                  role_label=ROLE_LABELS[Role(context.user.role)])
