"""Routes of the member web UI."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from coop.web.templating import render


async def home(request: Request) -> Response:
    return render(request, "error.html", {"status": 200, "code": "-", "message": "coop"})


def routes() -> list[BaseRoute]:
    return [
        Route("/", home),
        Mount("/static", StaticFiles(directory=str(Path(__file__).parent / "static")), name="static"),
    ]
