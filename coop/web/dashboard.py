"""The start page ("Scores"). A placeholder until the scoring pages replace this module."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from coop.http.auth import require_member
from coop.web.templating import render


async def dashboard(request: Request) -> Response:
    await require_member(request)
    return render(request, "dashboard.html", {})


def routes() -> list[BaseRoute]:
    return [Route("/", dashboard, methods=["GET"])]
